"""How many sync errors are open, per entity, direction and Dynamics code (B39).

``sync_error_counts`` holds one row per (entity, direction, code) with open errors; it is
changed in the same transaction as the errors it counts (only :mod:`crmsync.sync.failures`
opens, re-codes and closes errors), so the errors page, the overview and the failure digest
read a handful of rows instead of counting every open error. A missing code is stored as
``""``, the same group as an empty code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from crmsync.store.tables import sync_error_counts, sync_errors

CountKey = tuple[str, str, str]
"""(entity, direction, code) of a group of open errors; code is ``""`` when there is none."""


def count_key(entity: str, direction: str, code: str | None) -> CountKey:
    """The group an open error of ``entity``, ``direction`` and ``code`` is counted in."""
    return (entity, direction, code or "")


def shift_error_counts(conn: Connection, changes: Mapping[CountKey, int]) -> None:
    """Add each change (negative to subtract) to its group, in the caller's transaction.

    Each group is changed by one atomic insert-or-add, in key order, so that two writers
    changing the same groups at once neither lose a change nor deadlock; groups left at zero
    are removed."""
    shifts = sorted((key, change) for key, change in changes.items() if change)
    if not shifts:
        return
    table = sync_error_counts
    for (entity, direction, code), change in shifts:
        row = {"entity": entity, "direction": direction, "error_code": code, "open_count": change}
        conn.execute(_insert_or_add(conn, row))
    if any(change < 0 for _, change in shifts):
        conn.execute(delete(table).where(table.c.open_count <= 0))


def _insert_or_add(conn: Connection, row: dict[str, object]) -> Any:
    table = sync_error_counts
    keys = [table.c.entity, table.c.direction, table.c.error_code]
    # the dialect's insert loads only when writing, as in ``store/key_values.py``
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        pg = postgresql_insert(table).values(**row)
        return pg.on_conflict_do_update(
            index_elements=keys, set_={"open_count": table.c.open_count + pg.excluded.open_count}
        )
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    lite = sqlite_insert(table).values(**row)
    return lite.on_conflict_do_update(
        index_elements=keys, set_={"open_count": table.c.open_count + lite.excluded.open_count}
    )


def rebuild_error_counts(conn: Connection) -> None:
    """Count the open errors afresh (for errors stored without :mod:`crmsync.sync.failures`,
    such as a benchmark's bulk fill); one full read of ``sync_errors``."""
    code = func.coalesce(sync_errors.c.error_code, "")
    groups = (
        select(sync_errors.c.entity, sync_errors.c.direction, code, func.count())
        .where(sync_errors.c.resolved_at.is_(None))
        .group_by(sync_errors.c.entity, sync_errors.c.direction, code)
    )
    conn.execute(delete(sync_error_counts))
    conn.execute(
        insert(sync_error_counts).from_select(
            ["entity", "direction", "error_code", "open_count"], groups
        )
    )


def open_error_groups(conn: Connection) -> Counter[CountKey]:
    """Open errors per (entity, direction, code)."""
    table = sync_error_counts
    rows = conn.execute(
        select(table.c.entity, table.c.direction, table.c.error_code, table.c.open_count).where(
            table.c.open_count > 0
        )
    )
    return Counter(
        {(str(entity), str(way), str(code)): int(count) for entity, way, code, count in rows}
    )


def open_error_total(conn: Connection, entity: str | None = None) -> int:
    """How many errors are open (of ``entity`` when given)."""
    query = select(func.coalesce(func.sum(sync_error_counts.c.open_count), 0))
    if entity is not None:
        query = query.where(sync_error_counts.c.entity == entity)
    return int(conn.execute(query).scalar_one())
