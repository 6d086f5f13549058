"""The store's key/value table (``sync_settings``): small JSON values by key, starting with
the global sync switch.

``sync_enabled`` is false until an admin enables sync (B44); while it is true the REST API
refuses company/opportunity/sales-person writes with 1018 (spec marketo-rest §7.2).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from crmsync.store.tables import sync_settings

SYNC_ENABLED = "sync_enabled"

JsonValue = str | int | float | bool | None | list[object] | dict[str, object]


def get_setting(conn: Connection, key: str, default: JsonValue = None) -> JsonValue:
    """Return the stored value of ``key``, or ``default`` when it was never set."""
    row = conn.execute(select(sync_settings.c.value).where(sync_settings.c.key == key)).first()
    if row is None:
        return default
    value: JsonValue = row[0]
    return value


def set_setting(conn: Connection, key: str, value: JsonValue) -> None:
    """Store ``value`` under ``key`` (insert or replace) in the caller's transaction."""
    # The dialect's insert loads only when writing (``crmsync sync status`` only reads).
    now = datetime.now(UTC)
    row = {"key": key, "value": value, "updated_at": now}
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        pg = postgresql_insert(sync_settings).values(**row)
        statement: Any = pg.on_conflict_do_update(
            index_elements=[sync_settings.c.key],
            set_={"value": pg.excluded.value, "updated_at": pg.excluded.updated_at},
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(sync_settings).values(**row)
        statement = lite.on_conflict_do_update(
            index_elements=[sync_settings.c.key],
            set_={"value": lite.excluded.value, "updated_at": lite.excluded.updated_at},
        )
    # one statement, so that two writers storing a new key at once cannot both try to insert it
    conn.execute(statement)


def get_sync_enabled(conn: Connection) -> bool:
    """True while the background Dynamics sync is enabled."""
    return get_setting(conn, SYNC_ENABLED, False) is True


def set_sync_enabled(conn: Connection, enabled: bool) -> None:
    """Turn the background Dynamics sync on or off."""
    set_setting(conn, SYNC_ENABLED, bool(enabled))
