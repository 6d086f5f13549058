"""One statement run for many rows through the driver's ``executemany``: the store's bulk
updates (the counterpart of :mod:`crmsync.store.inserts`).

SQLAlchemy's own ``executemany`` builds every row's parameters one by one (a dictionary per
row, each value looked up and processed through its type); for a page of thousands of rows
that costs more than the update itself. :func:`execute_many` compiles the statement once,
processes each parameter a column at a time through its bind processor (the same values
SQLAlchemy would send), and hands the driver the rows as it wants them: tuples in placeholder
order (SQLite) or dictionaries (psycopg). It runs in the caller's transaction.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import UpdateBase


def execute_many(
    conn: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run ``statement`` once per row of ``rows`` in one driver ``executemany``: each row has
    a value per ``bindparam`` of the statement and per column to set (all rows the same keys,
    as for ``conn.execute(statement, rows)``); bound literals keep their own value."""
    if not rows:
        return
    dialect = conn.dialect
    # keys that name columns of the table and are not in the statement's SET become SET
    # columns, as with ``conn.execute(statement, rows)``
    compiled = statement.compile(dialect=dialect, column_keys=list(rows[0]))
    first = compiled.construct_params(dict(rows[0]))
    order: Sequence[str] = compiled.positiontup or list(first)
    columns: list[list[Any]] = []
    for name in order:
        bind = compiled.binds[name]
        if bind.key in rows[0]:
            column = list(map(operator.itemgetter(bind.key), rows))
        else:
            column = [first[name]] * len(rows)  # a literal of the statement
        process = bind.type.bind_processor(dialect)
        if process is not None:
            column = list(map(process, column))
        columns.append(column)
    if compiled.positiontup:
        params: list[Any] = list(zip(*columns, strict=True))
    else:
        params = [dict(zip(order, values, strict=True)) for values in zip(*columns, strict=True)]
    conn.exec_driver_sql(compiled.string, params)
