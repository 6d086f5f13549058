"""Conditions matching a column against a list of ids, in as few statements as the backend
allows.

On PostgreSQL the whole list is one array parameter (``column = ANY(%s)``): one short
statement whatever the number of ids, whose text the driver and SQLAlchemy parse and cache
once. An ``IN (...)`` list of thousands of placeholders is rendered, parsed and planned again
for every statement, which is most of a push round's time on PostgreSQL. Other backends get
``IN (...)`` lists of at most :data:`~crmsync.store.inserts.CHUNK` ids each (SQLite binds
them in-process, at little cost).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from crmsync.store.inserts import chunks


def id_conditions(
    conn: Connection, column: ColumnElement[Any], ids: Sequence[object]
) -> Iterator[ColumnElement[bool]]:
    """One condition per statement needed to match ``column`` against every id in ``ids``
    (none when ``ids`` is empty); run one statement per condition and combine the rows."""
    if not ids:
        return
    if conn.dialect.name == "postgresql":
        values = bindparam(None, value=list(ids), type_=ARRAY(column.type))
        yield column == any_(values)
        return
    for part in chunks(ids):
        yield column.in_(part)
