"""Bulk inserts of a page's new rows for the initial sync (B16), tuned for SQLite.

:func:`executemany_rows` builds the driver's ``executemany`` parameters a column at a time;
:func:`insert_rows` inserts new local records and gives back their ids in order, taking them
as the consecutive run SQLite assigned when that is verified, else reading them back by the
Dynamics id column. Everything runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.engine import Connection

from crmsync.store.inserts import insert_many
from crmsync.sync.state import chunks


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key: str | None
) -> list[int]:
    """Insert ``rows`` and return their new ids, in order.

    One plain ``executemany`` per set of columns, then the ids: on SQLite the consecutive run
    after the newest id before the insert (checked, see :func:`consecutive_ids`), otherwise
    one query per chunk reading them back by the Dynamics id column: much faster than
    ``RETURNING`` row by row. New rows always get the highest ids, so the newest row per
    Dynamics id is the one just inserted.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    keys = [row.get(key) for row in rows] if key else []
    if key is None or any(k is None for k in keys) or len(set(keys)) != len(keys):
        ids: list[int] = []
        for row in rows:
            inserted = conn.execute(insert(table).returning(table.c.id), row).scalar_one()
            ids.append(int(inserted))
        return ids
    newest_before = conn.execute(select(func.max(table.c.id))).scalar()
    for group in groups.values():
        insert_many(conn, table, group)
    consecutive = consecutive_ids(conn, table, newest_before, len(rows))
    if consecutive is not None:
        # The rows went in group by group: the ids follow that order.
        by_row = dict(
            zip((id(row) for g in groups.values() for row in g), consecutive, strict=True)
        )
        return [by_row[id(row)] for row in rows]
    found: dict[object, int] = {}
    for part in chunks(keys):
        for local_id, value in conn.execute(
            select(table.c.id, table.c[key]).where(table.c[key].in_(part))
        ):
            found[value] = max(found.get(value, 0), int(local_id))
    return [found[k] for k in keys]


def consecutive_ids(
    conn: Connection, table: Table, newest_before: int | None, count: int
) -> range | None:
    """The ids of the ``count`` rows just inserted, when SQLite numbered them right after the
    newest id before the insert (it does unless ids were freed at the top); else ``None``.

    Checked, not assumed: the rows above ``newest_before`` must be exactly ``count`` rows
    numbered without a gap. Only on SQLite, where this transaction is the only writer.
    """
    if conn.dialect.name != "sqlite":
        return None
    start = (newest_before or 0) + 1
    above = conn.execute(
        select(func.count(), func.min(table.c.id), func.max(table.c.id)).where(table.c.id >= start)
    ).one()
    if tuple(above) != (count, start, start + count - 1):
        return None
    return range(start, start + count)
