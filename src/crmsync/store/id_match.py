"""Matching a column against a list of ids: the one home for ``IN (...)`` over many ids.

An ``IN (...)`` list of thousands of placeholders is rendered by SQLAlchemy, and parsed and
planned by the database, again for every statement: most of a push round's time on
PostgreSQL and a tenth of applying a page on SQLite. :func:`among` binds the whole list as
one parameter instead, so the statement's text is the same for any number of ids and is
compiled and cached once:

* on SQLite a JSON array read through ``json_each`` (the index on the column still serves
  the lookup);
* on PostgreSQL ``= ANY`` of an array;
* elsewhere SQLAlchemy's own expanding ``IN``, cut into :data:`~crmsync.store.inserts.CHUNK`
  ids per statement by :func:`id_conditions`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, String, any_, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from crmsync.store.inserts import chunks

ONE_PARAMETER = frozenset({"sqlite", "postgresql"})
"""Backends on which a whole id list is bound as one parameter."""


def among(
    conn: Connection, column: ColumnElement[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """``column IN (values)``, with ``values`` (text or whole numbers) bound as one parameter
    where the backend allows (see the module's note)."""
    name = conn.dialect.name
    if name == "sqlite":
        listed = bindparam(None, orjson.dumps(list(values)).decode(), type_=String())
        return column.in_(select(literal_column("value")).select_from(func.json_each(listed)))
    if name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def id_conditions(
    conn: Connection, column: ColumnElement[Any], ids: Sequence[object]
) -> Iterator[ColumnElement[bool]]:
    """One condition per statement needed to match ``column`` against every id in ``ids``
    (none when ``ids`` is empty); run one statement per condition and combine the rows."""
    if not ids:
        return
    if conn.dialect.name in ONE_PARAMETER:
        yield among(conn, column, ids)
        return
    for part in chunks(ids):
        yield column.in_(part)
