"""Many rows into one table in one ``executemany``: the store's bulk inserts.

:func:`insert_many` writes rows; :func:`insert_returning_ids` writes new records and gives
back their ids in row order; :func:`chunks` cuts id lists into slices (matching a column
against an id list is :mod:`crmsync.store.id_match`).

The initial sync inserts hundreds of thousands of persons, links, baselines and activities
(B16); SQLAlchemy's per-row parameter handling and SQLite's per-column cost dominate there.
On SQLite :func:`insert_many` therefore talks to the driver itself:

* parameters are built a column at a time (:func:`operator.itemgetter` and :func:`map`),
  each column passed through its bind processor (JSON, UTC date-times, booleans), exactly
  the values SQLAlchemy would send;
* a column that is empty in every row, with no default in the schema, is left out of the
  statement: SQLite stores NULL for it all the same, and binding an empty value still costs
  nearly as much as binding a real one (a person has over sixty columns, most of them empty);
* a value shared by every row (one time stamp for a page, a default) is processed once;
* each column's bind processor is the dialect's own (a UTC date-time becomes SQLite's text
  here, once, not in the driver's adapter for every row), and the column list of a table and
  set of keys is worked out once per process.

On PostgreSQL, from :data:`COPY_MIN_ROWS` rows (an initial sync's pages), the same columns go
in through ``COPY ... FROM STDIN`` (psycopg's copy): a page of persons as one stream instead
of multi-row ``INSERT`` statements whose thousands of placeholders the driver parses again for
every statement. JSON values are serialised with the engine's serialiser; a driver error is
raised as SQLAlchemy's (``IntegrityError`` for a duplicate, as an ``INSERT`` would). New ids
(:func:`insert_returning_ids`) are taken from the table's sequence first, so the rows are
copied with their ids. Fewer rows (a REST API call) go as SQLAlchemy's batched ``INSERT``.

Other backends, and tables with defaults computed in Python, go through SQLAlchemy's own
``executemany``. Everything runs in the caller's transaction.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

from sqlalchemy import JSON, Column, Table, func, insert, select, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError

CHUNK = 2000
"""Ids per ``IN (...)`` list: well inside every backend's bind-parameter limit."""


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``table``; every row has the keys of the first, or a subset of
    them (a missing key takes the column's default, as in a plain insert)."""
    if not rows:
        return
    dialect = conn.dialect
    if not _bulk_path(conn, table, rows):
        conn.execute(insert(table), list(rows))
        return
    names, columns = _bound_columns(conn, table, rows)
    if not names:  # every column empty: nothing to gain, let SQLAlchemy write the defaults
        conn.execute(insert(table), list(rows))
        return
    # Schema identifiers, quoted by the dialect, and placeholders: every value is bound.
    preparer = dialect.identifier_preparer
    quoted = ", ".join(map(preparer.quote, names))
    if dialect.name == "postgresql":
        _copy(conn, f"COPY {preparer.format_table(table)} ({quoted}) FROM STDIN", columns)
        return
    sql = (
        f"INSERT INTO {preparer.format_table(table)} "  # noqa: S608
        f"({quoted}) VALUES ({', '.join('?' * len(names))})"
    )
    conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))


COPY_MIN_ROWS = 500
"""Rows from which PostgreSQL inserts go through ``COPY`` (an initial sync's pages); fewer (a
REST API call) go as one batched ``INSERT``, whose parse costs little at that size."""


def _bulk_path(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether ``rows`` go in through the driver (SQLite's statement, PostgreSQL's ``COPY``)
    rather than SQLAlchemy's ``executemany``."""
    name = conn.dialect.name
    if name != "sqlite" and (name != "postgresql" or len(rows) < COPY_MIN_ROWS):
        return False
    return not any(_computed_default(c) for c in table.columns)


def _bound_columns(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[list[str], list[list[Any]]]:
    """The SQL names of the columns worth sending and, per column, every row's value as the
    driver takes it."""
    names: list[str] = []
    columns: list[list[Any]] = []
    for key, sql_name, default, process, server_default in _statement_columns(
        table, tuple(rows[0]), conn.dialect
    ):
        try:
            column = list(map(operator.itemgetter(key), rows))
        except KeyError:
            column = [row.get(key, default) for row in rows]
        if process is not None:
            first = column[0]
            if all(map(operator.is_, column, repeat(first))):
                # one object in every row (a page's time stamp, a default): process it once
                column = [process(first)] * len(column)
            else:
                column = list(map(process, column))
        if not server_default and column.count(None) == len(column):
            continue
        names.append(sql_name)
        columns.append(column)
    return names, columns


_StatementColumn = tuple[str, str, Any, Callable[[Any], Any] | None, bool]


@functools.lru_cache(maxsize=256)
def _statement_columns(
    table: Table, keys: tuple[str, ...], dialect: Dialect
) -> tuple[_StatementColumn, ...]:
    """What an insert of rows with ``keys`` into ``table`` sends, worked out once per table
    and set of keys: per column (the rows' keys and every column with a default in Python,
    in the table's order) its key, SQL name, default, bind processor and whether the server
    has a default for it."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
    found: list[_StatementColumn] = []
    for key in compiled.positiontup or compiled.params:
        column = table.c[key]
        default = column.default
        value = default.arg if default is not None else None  # type: ignore[attr-defined]
        # a column's key may differ from its SQL name
        found.append(
            (
                key,
                column.name,
                value,
                _processor(column, dialect),
                column.server_default is not None,
            )
        )
    return tuple(found)


def _processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """What turns a column's Python value into the driver's; on PostgreSQL a JSON value
    becomes its text (``COPY`` has no JSON adapter), ``None`` staying SQL NULL as in an
    ``INSERT``. The type's dialect form gives the processor a plain ``INSERT`` uses (SQLite's
    date-time text, for one)."""
    if dialect.name == "postgresql" and isinstance(column.type, JSON):
        dumps: Callable[[Any], str] = getattr(dialect, "_json_serializer", None) or json.dumps
        return lambda value: None if value is None else dumps(value)
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _copy(conn: Connection, sql: str, columns: list[list[Any]]) -> None:
    """Stream the rows made of ``columns`` through psycopg's ``COPY``, in the caller's
    transaction; a driver error is raised as SQLAlchemy's own."""
    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            sql, None, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from exc


def _computed_default(column: Column[Any]) -> bool:
    default = column.default
    return default is not None and not getattr(default, "is_scalar", False)


def insert_returning_ids(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert new records with one ``executemany`` per set of keys; return their ids in row
    order.

    PostgreSQL returns them from batched ``INSERT ... RETURNING`` statements. SQLite cannot
    order ``RETURNING`` rows (SQLAlchemy would insert one row at a time), so the rows go in
    through :func:`insert_many` and their ids are derived: SQLite numbers each new row above
    every existing one, and the caller's transaction is the only writer from its first insert,
    so the new rows are exactly the ids above the newest one before the insert. That is
    checked (:func:`new_id_run`), and the transaction fails rather than mislabel a row.
    """
    if not rows:
        return []
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in rows:  # rows built alike have their keys in one order: no sorting needed
        groups.setdefault(tuple(row), []).append(row)
    ordered = [row for group in groups.values() for row in group]
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        # ids from the table's own sequence, then the rows copied in with them
        ids = [
            int(new_id)
            for new_id in conn.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"table": conn.dialect.identifier_preparer.format_table(table), "n": len(rows)},
            ).scalars()
        ]
        start = 0
        for group in groups.values():
            with_ids = [
                {**row, "id": new_id} for row, new_id in zip(group, ids[start:], strict=False)
            ]
            insert_many(conn, table, with_ids)
            start += len(group)
    elif conn.dialect.name != "sqlite":
        returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = [
            int(new_id)
            for group in groups.values()
            for new_id in conn.execute(returning, [dict(row) for row in group]).scalars()
        ]
    else:
        newest_before = conn.execute(select(func.max(table.c.id))).scalar()
        for group in groups.values():
            insert_many(conn, table, group)
        run = new_id_run(conn, table, newest_before, len(rows))
        if run is None:
            raise RuntimeError(f"cannot determine the ids of {len(rows)} new {table.name} rows")
        ids = list(run)
    # the rows went in group by group: the ids follow that order
    by_row = dict(zip(map(id, ordered), ids, strict=True))
    return [by_row[id(row)] for row in rows]


def new_id_run(
    conn: Connection, table: Table, newest_before: int | None, count: int
) -> range | None:
    """The ids of the ``count`` rows just inserted on SQLite: the rows above
    ``newest_before``, when they are exactly ``count`` rows numbered without a gap; else
    ``None``.

    The run need not start right after ``newest_before``: a table that never reuses ids
    (``AUTOINCREMENT``) skips ids freed at its top.
    """
    above = conn.execute(
        select(func.count(), func.min(table.c.id), func.max(table.c.id)).where(
            table.c.id > (newest_before or 0)
        )
    ).one()
    found, first, last = above
    if found != count or first is None or last - first + 1 != count:
        return None
    return range(int(first), int(last) + 1)
