"""SQLite storage of the emulator: one table per Dataverse table, a global row version, tombstones.

Every write takes a new value of one global, monotonically increasing row version; the row keeps
it in ``versionnumber`` (the basis of its weak ETag, spec §5) and deletions leave a tombstone
with the version of the delete, so change tracking (spec §4) is "rows and tombstones with a
version above the token's", served by an index. Reads stream through cursors with LIMIT; nothing
loads a whole table.

Values are stored as: strings as TEXT ``COLLATE NOCASE`` (Dataverse compares strings without
case), choices/booleans/integers as INTEGER, money/decimal/double as REAL, date-times as
ISO-8601 UTC text with second precision (sorts correctly), lookups as the GUID text plus, for
lookups with several target tables, ``<column>__target`` holding the target's logical name.

One connection is shared under a re-entrant lock; a request holds the lock for its whole
duration, so transactions never interleave (a batch change set is a SAVEPOINT).
"""

# SQL identifiers here come from validated metadata (SAFE_NAME) and are quoted by q();
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from crmsync.emulator.metadata import (
    SAFE_NAME,
    AttributeDef,
    Catalog,
    EntityDef,
    KeyDef,
    attribute_from_json,
    attribute_to_json,
)
from crmsync.emulator.schema import BASE_CURRENCY_ID, custom_entity

_SQL_TYPES = {
    "String": "TEXT COLLATE NOCASE",
    "Memo": "TEXT COLLATE NOCASE",
    "EntityName": "TEXT",
    "Uniqueidentifier": "TEXT",
    "Integer": "INTEGER",
    "BigInt": "INTEGER",
    "Picklist": "INTEGER",
    "State": "INTEGER",
    "Status": "INTEGER",
    "Boolean": "INTEGER",
    "Decimal": "REAL",
    "Double": "REAL",
    "Money": "REAL",
    "DateTime": "TEXT",
    "Lookup": "TEXT",
    "Customer": "TEXT",
    "Owner": "TEXT",
}
PERSON_TABLES = frozenset({"lead", "contact", "systemuser"})


def q(name: str) -> str:
    """Quote an SQL identifier (names are validated against SAFE_NAME before they get here)."""
    return '"' + name.replace('"', '""') + '"'


def iso(moment: datetime) -> str:
    """A UTC datetime as stored and sent on the wire (``2016-09-28T22:57:53Z``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def target_column(attribute: AttributeDef) -> str:
    """The column storing the target table of a multi-table lookup."""
    return f"{attribute.logical_name}__target"


def full_name(first: object, last: object) -> str | None:
    """Dataverse's default full-name format: "First Last" (either part may be missing)."""
    parts = [str(p) for p in (first, last) if p not in (None, "")]
    return " ".join(parts) or None


class Storage:
    """Rows of every table of one emulator instance, in one SQLite database."""

    def __init__(self, db_path: str, catalog: Catalog, clock: Callable[[], datetime]) -> None:
        self.catalog = catalog
        self.clock = clock
        self.lock = threading.RLock()
        self._depth = 0
        self._default_cache: dict[tuple[str, int], list[tuple[str, int]]] = {}
        # SQL text by (kind, table, columns); schema changes clear it (dropped columns).
        self._sql: dict[tuple[str, str, tuple[str, ...]], str] = {}
        self.conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self.conn.execute(
            "PRAGMA journal_mode=WAL" if db_path != ":memory:" else "PRAGMA temp_store=MEMORY"
        )
        # A test double: durability across power loss is not a goal, speed is.
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA cache_size=-65536")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS _tombstones (entity TEXT NOT NULL, id TEXT NOT NULL, "
            "version INTEGER NOT NULL, deletedon TEXT NOT NULL)"
        )
        self.conn.execute(
            "CREATE INDEX IF NOT EXISTS ix_tombstones_version ON _tombstones(entity, version)"
        )
        self.conn.execute("CREATE INDEX IF NOT EXISTS ix_tombstones_id ON _tombstones(entity, id)")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS _custom_metadata (kind TEXT NOT NULL, entity TEXT NOT NULL,"
            " name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, entity, name))"
        )
        self._load_custom_metadata()
        for entity in list(catalog):
            self._ensure_table(entity)
        self._version = self._max_version()
        self._ensure_base_currency()

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction, or a SAVEPOINT when one is already open; rolled back on error."""
        with self.lock:
            depth = self._depth
            name = f"sp{depth}"
            self.conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if depth == 0:
                    self.conn.execute("ROLLBACK")
                else:
                    self.conn.execute(f"ROLLBACK TO {name}")
                    self.conn.execute(f"RELEASE {name}")
                raise
            self._depth -= 1
            self.conn.execute("COMMIT" if depth == 0 else f"RELEASE {name}")

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A transaction when none is open; inside one, nothing extra (the caller's covers it)."""
        if self._depth:
            yield
            return
        with self.transaction():
            yield

    def next_version(self) -> int:
        """A new global row version (never reused, even after a rollback)."""
        with self.lock:
            self._version += 1
            return self._version

    def current_version(self) -> int:
        """The highest row version handed out so far."""
        return self._version

    def _max_version(self) -> int:
        highest = self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM _tombstones").fetchone()[
            0
        ]
        for entity in self.catalog:
            row = self.conn.execute(f"SELECT MAX(versionnumber) FROM {q(entity.table)}").fetchone()
            highest = max(highest, row[0] or 0)
        return int(highest)

    def _ensure_base_currency(self) -> None:
        """The organization's base currency (US Dollar), as every org has one."""
        currencies = self.catalog.get("transactioncurrency")
        if currencies is None or self.exists(currencies, BASE_CURRENCY_ID):
            return
        row: dict[str, Any] = {
            "transactioncurrencyid": BASE_CURRENCY_ID,
            "currencyname": "US Dollar",
            "isocurrencycode": "USD",
            "currencysymbol": "$",
            "exchangerate": 1.0,
        }
        with self.transaction():
            self.insert(currencies, self.stamp_new(currencies, row, ""))

    # -- schema -------------------------------------------------------------------------

    @staticmethod
    def column_defs(attribute: AttributeDef) -> list[tuple[str, str]]:
        """The SQL columns (name, type) holding one attribute."""
        columns = [(attribute.logical_name, _SQL_TYPES.get(attribute.attribute_type, "TEXT"))]
        if attribute.is_lookup and attribute.is_polymorphic:
            columns.append((target_column(attribute), "TEXT"))
        return columns

    def _ensure_table(self, entity: EntityDef) -> None:
        defs = []
        for attribute in entity.attributes.values():
            for name, sql_type in self.column_defs(attribute):
                if name == entity.primary_id:
                    defs.append(f"{q(name)} TEXT PRIMARY KEY")
                else:
                    defs.append(f"{q(name)} {sql_type}")
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {q(entity.table)} ({', '.join(defs)})")
        existing = {row[1] for row in self.conn.execute(f"PRAGMA table_info({q(entity.table)})")}
        for attribute in entity.attributes.values():
            for name, sql_type in self.column_defs(attribute):
                if name not in existing:
                    self.conn.execute(
                        f"ALTER TABLE {q(entity.table)} ADD COLUMN {q(name)} {sql_type}"
                    )
        self.conn.execute(
            f"CREATE INDEX IF NOT EXISTS {q('ix_' + entity.logical_name + '_version')} "
            f"ON {q(entity.table)}(versionnumber)"
        )
        # Polling by modifiedon (the documented alternative to change tracking) pages in
        # (modifiedon, key) order; the index keeps that a range scan on large tables.
        self.conn.execute(
            f"CREATE INDEX IF NOT EXISTS {q('ix_' + entity.logical_name + '_modifiedon')} "
            f"ON {q(entity.table)}(modifiedon, {q(entity.primary_id)})"
        )
        if entity.logical_name == "listmember":
            for column in ("listid", "entityid"):
                self.conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {q('ix_listmember_' + column)} "
                    f"ON {q(entity.table)}({q(column)})"
                )
        if "emailaddress1" in entity.attributes:
            self.conn.execute(
                f"CREATE INDEX IF NOT EXISTS {q('ix_' + entity.logical_name + '_email')} "
                f"ON {q(entity.table)}(emailaddress1)"
            )

    def _load_custom_metadata(self) -> None:
        rows = self.conn.execute(
            "SELECT kind, entity, body FROM _custom_metadata ORDER BY CASE kind "
            "WHEN 'entity' THEN 0 WHEN 'attribute' THEN 1 WHEN 'removed' THEN 2 ELSE 3 END, rowid"
        ).fetchall()
        for kind, entity_name, body in rows:
            data = json.loads(body)
            if kind == "entity":
                self.catalog.put(custom_entity(data))
                continue
            entity = self.catalog.get(entity_name)
            if entity is None:
                continue
            if kind == "attribute":
                self.catalog.put(entity.with_attribute(attribute_from_json(data)))
            elif kind == "removed":
                self.catalog.put(entity.without_attribute(str(data["name"])))
            elif kind == "tracking":
                self.catalog.put(replace(entity, change_tracking=True))
            elif kind == "key":
                self.catalog.put(replace(entity, keys=(*entity.keys, KeyDef.from_json(data))))

    def enable_change_tracking(self, entity: EntityDef) -> EntityDef:
        """Switch change tracking on for a table (it cannot be switched off again)."""
        enabled = replace(entity, change_tracking=True)
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO _custom_metadata(kind, entity, name, body) "
                "VALUES ('tracking', ?, 'ChangeTrackingEnabled', '{}')",
                (entity.logical_name,),
            )
            self.catalog.put(enabled)
        return enabled

    def create_entity(self, header: Mapping[str, Any], primary: AttributeDef) -> EntityDef:
        """Create a custom table (with its primary-name column) and persist its definition."""
        entity = custom_entity(header).with_attribute(primary)
        with self.transaction():
            self.conn.execute(
                "INSERT INTO _custom_metadata(kind, entity, name, body) VALUES ('entity', ?, ?, ?)",
                (entity.logical_name, entity.logical_name, json.dumps(dict(header))),
            )
            self._save_attribute(entity.logical_name, entity.attributes[primary.logical_name])
            self.catalog.put(entity)
            self._ensure_table(entity)
        return entity

    def drop_entity(self, entity: EntityDef) -> None:
        """Delete a custom table, its rows, tombstones and definition."""
        self._sql.clear()
        with self.transaction():
            self.conn.execute(f"DROP TABLE IF EXISTS {q(entity.table)}")
            self.conn.execute("DELETE FROM _tombstones WHERE entity = ?", (entity.logical_name,))
            self.conn.execute(
                "DELETE FROM _custom_metadata WHERE entity = ?", (entity.logical_name,)
            )
            self.catalog.remove(entity.logical_name)

    def add_attribute(self, entity_name: str, attribute: AttributeDef) -> AttributeDef:
        """Add a custom column to a table (ALTER TABLE) and persist its definition."""
        if not SAFE_NAME.match(attribute.logical_name):
            raise ValueError(f"unsafe column name {attribute.logical_name!r}")
        entity = self.catalog.require(entity_name).with_attribute(attribute)
        with self.transaction():
            finished = entity.attributes[attribute.logical_name]
            self._save_attribute(entity_name, finished)
            self.catalog.put(entity)
            self._ensure_table(entity)
        return finished

    def remove_attribute(self, entity_name: str, attribute_name: str) -> None:
        """Drop a custom column and its definition."""
        self._sql.clear()
        entity = self.catalog.require(entity_name)
        attribute = entity.attributes[attribute_name]
        with self.transaction():
            for name, _ in self.column_defs(attribute):
                self.conn.execute(f"ALTER TABLE {q(entity.table)} DROP COLUMN {q(name)}")
            self.conn.execute(
                "DELETE FROM _custom_metadata WHERE kind = 'attribute' AND entity = ? AND name = ?",
                (entity_name, attribute_name),
            )
            self.conn.execute(
                "INSERT OR REPLACE INTO _custom_metadata(kind, entity, name, body) "
                "VALUES ('removed', ?, ?, ?)",
                (entity_name, attribute_name, json.dumps({"name": attribute_name})),
            )
            self.catalog.put(entity.without_attribute(attribute_name))

    def add_key(self, entity_name: str, key: KeyDef) -> None:
        """Define an alternate key (with an index on its columns) and persist it."""
        entity = self.catalog.require(entity_name)
        columns = ", ".join(q(a) for a in key.attributes)
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO _custom_metadata(kind, entity, name, body) "
                "VALUES ('key', ?, ?, ?)",
                (entity_name, key.logical_name, json.dumps(key.as_json())),
            )
            self.conn.execute(
                f"CREATE INDEX IF NOT EXISTS {q('ak_' + entity_name + '_' + key.logical_name)} "
                f"ON {q(entity.table)}({columns})"
            )
            self.catalog.put(replace(entity, keys=(*entity.keys, key)))

    def remove_key(self, entity_name: str, key_name: str) -> None:
        """Forget an alternate key and drop its index."""
        entity = self.catalog.require(entity_name)
        with self.transaction():
            self.conn.execute(
                "DELETE FROM _custom_metadata WHERE kind = 'key' AND entity = ? AND name = ?",
                (entity_name, key_name),
            )
            self.conn.execute(f"DROP INDEX IF EXISTS {q('ak_' + entity_name + '_' + key_name)}")
            kept = tuple(k for k in entity.keys if k.logical_name != key_name)
            self.catalog.put(replace(entity, keys=kept))

    def _save_attribute(self, entity_name: str, attribute: AttributeDef) -> None:
        self.conn.execute(
            "DELETE FROM _custom_metadata WHERE kind = 'removed' AND entity = ? AND name = ?",
            (entity_name, attribute.logical_name),
        )
        self.conn.execute(
            "INSERT OR REPLACE INTO _custom_metadata(kind, entity, name, body) "
            "VALUES ('attribute', ?, ?, ?)",
            (entity_name, attribute.logical_name, json.dumps(attribute_to_json(attribute))),
        )

    # -- rows ---------------------------------------------------------------------------

    def fetch(
        self, entity: EntityDef, record_id: str, columns: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """One row as stored (column name -> SQLite value), or None; all or some columns."""
        key = ("fetch", entity.table, tuple(columns) if columns is not None else ())
        sql = self._sql.get(key)
        if sql is None:
            wanted = "*" if columns is None else ", ".join(q(c) for c in columns)
            sql = f"SELECT {wanted} FROM {q(entity.table)} WHERE {q(entity.primary_id)} = ?"
            self._sql[key] = sql
        with self.lock:
            cursor = self.conn.execute(sql, (record_id.lower(),))
            row = cursor.fetchone()
            if row is None:
                return None
            return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def exists(self, entity: EntityDef, record_id: str) -> bool:
        """Whether the row exists."""
        with self.lock:
            return (
                self.conn.execute(
                    f"SELECT 1 FROM {q(entity.table)} WHERE {q(entity.primary_id)} = ?",
                    (record_id.lower(),),
                ).fetchone()
                is not None
            )

    def insert(self, entity: EntityDef, row: Mapping[str, Any]) -> None:
        """Insert a complete row (stamps already applied) and clear a stale tombstone."""
        names = list(row)
        with self.lock:
            self.conn.execute(
                f"INSERT INTO {q(entity.table)} ({', '.join(q(n) for n in names)}) "
                f"VALUES ({', '.join('?' for _ in names)})",
                [row[n] for n in names],
            )
            self.conn.execute(
                "DELETE FROM _tombstones WHERE entity = ? AND id = ?",
                (entity.logical_name, row[entity.primary_id]),
            )

    def update(self, entity: EntityDef, record_id: str, changes: Mapping[str, Any]) -> None:
        """Set columns of one row."""
        names = tuple(changes)
        key = ("update", entity.table, names)
        sql = self._sql.get(key)
        if sql is None:
            sql = (
                f"UPDATE {q(entity.table)} SET {', '.join(q(n) + ' = ?' for n in names)} "
                f"WHERE {q(entity.primary_id)} = ?"
            )
            self._sql[key] = sql
        with self.lock:
            self.conn.execute(sql, [*(changes[n] for n in names), record_id])

    def delete(self, entity: EntityDef, record_id: str) -> bool:
        """Delete one row and record its tombstone; False when it did not exist."""
        with self.lock:
            cursor = self.conn.execute(
                f"DELETE FROM {q(entity.table)} WHERE {q(entity.primary_id)} = ?", (record_id,)
            )
            if cursor.rowcount == 0:
                return False
            self.conn.execute(
                "INSERT INTO _tombstones(entity, id, version, deletedon) VALUES (?, ?, ?, ?)",
                (entity.logical_name, record_id, self.next_version(), iso(self.clock())),
            )
            return True

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run a parameterised statement (callers hold :attr:`lock` while iterating)."""
        return self.conn.execute(sql, params)

    def _defaults(self, entity: EntityDef) -> list[tuple[str, int]]:
        """(column, default) of the choice and Boolean columns with a default (cached)."""
        key = (entity.logical_name, self.catalog.version)
        cached = self._default_cache.get(key)
        if cached is None:
            cached = [
                (a.logical_name, int(a.default_value))
                for a in entity.attributes.values()
                if a.default_value is not None and a.attribute_type in ("Picklist", "Boolean")
            ]
            self._default_cache = {k: v for k, v in self._default_cache.items() if k[0] != key[0]}
            self._default_cache[key] = cached
        return cached

    def stamp_new(
        self, entity: EntityDef, row: dict[str, Any], acting_user: str, now: str | None = None
    ) -> dict[str, Any]:
        """Apply the platform's defaults and audit stamps to a row being created."""
        now = now or iso(self.clock())
        if not row.get(entity.primary_id):
            row[entity.primary_id] = str(uuid.uuid4())
        row["createdon"] = row["modifiedon"] = now
        row["createdby"] = row["modifiedby"] = acting_user or None
        row["versionnumber"] = self.next_version()
        owner = entity.attributes.get("ownerid")
        if owner is not None and not row.get("ownerid"):
            row["ownerid"] = acting_user
            row[target_column(owner)] = "systemuser"
        state = entity.attributes.get("statecode")
        status = entity.attributes.get("statuscode")
        if state is not None and row.get("statecode") is None:
            if status is not None and row.get("statuscode") is not None:
                chosen = status.option(int(row["statuscode"]))
                row["statecode"] = chosen.state if chosen else state.options[0].value
            else:
                row["statecode"] = state.options[0].value
        if status is not None and state is not None and row.get("statuscode") is None:
            state_option = state.option(int(row["statecode"]))
            row["statuscode"] = state_option.default_status if state_option else None
        if entity.logical_name in PERSON_TABLES and (row.get("firstname") or row.get("lastname")):
            row["fullname"] = full_name(row.get("firstname"), row.get("lastname"))
        for name, default in self._defaults(entity):
            if name not in row:
                row[name] = default
        if not row.get("transactioncurrencyid") and "transactioncurrencyid" in entity.attributes:
            money = self._money_columns(entity)
            if any(row.get(name) is not None for name in money):
                row["transactioncurrencyid"] = BASE_CURRENCY_ID
        return row

    def _money_columns(self, entity: EntityDef) -> list[str]:
        return [n for n, a in entity.attributes.items() if a.attribute_type == "Money"]

    # -- bulk and convenience (used by the seeder and tests) -----------------------------

    def insert_many(
        self, entity: str, rows: Sequence[Mapping[str, object]], *, acting_user: str
    ) -> list[str]:
        """Insert many rows in one transaction with ``executemany``; returns their ids.

        Values are logical-name keyed Python values: str, int, float, bool, aware datetime,
        and for lookups a GUID string (first target table), a ``(target, guid)`` pair or an
        object with ``entity`` and ``id``. Rows are stamped like API creates (createdon,
        modifiedon, createdby, modifiedby, versionnumber, ownerid, state/status) and become
        visible to change tracking, but are not validated: the seeder is trusted.
        """
        definition = self.catalog.require(entity)
        now = iso(self.clock())
        user = acting_user.lower()
        prepared = [
            self.stamp_new(definition, _convert(definition, row), user, now) for row in rows
        ]
        if not prepared:
            return []
        names = sorted({name for row in prepared for name in row})
        sql = (
            f"INSERT INTO {q(definition.table)} ({', '.join(q(n) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        with self.transaction():
            self.conn.executemany(sql, ([row.get(n) for n in names] for row in prepared))
        return [str(row[definition.primary_id]) for row in prepared]

    def count(self, entity: str) -> int:
        """Number of rows in a table."""
        definition = self.catalog.require(entity)
        with self.lock:
            return int(
                self.conn.execute(f"SELECT COUNT(*) FROM {q(definition.table)}").fetchone()[0]
            )

    def get(self, entity: str, record_id: str) -> dict[str, Any] | None:
        """One row by logical names (booleans as bool, lookups as GUID strings), or None."""
        definition = self.catalog.require(entity)
        raw = self.fetch(definition, record_id)
        if raw is None:
            return None
        result: dict[str, Any] = {}
        for name, attribute in definition.attributes.items():
            value = raw.get(name)
            if attribute.attribute_type == "Boolean" and value is not None:
                value = bool(value)
            result[name] = value
        return result

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()


def _convert(entity: EntityDef, row: Mapping[str, object]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for name, value in row.items():
        attribute = entity.attributes.get(name)
        if attribute is None:
            raise KeyError(f"{entity.logical_name} has no column {name!r}")
        if attribute.is_lookup:
            target, record_id = _lookup_parts(attribute, value)
            converted[name] = record_id
            if attribute.is_polymorphic:
                converted[target_column(attribute)] = target if record_id else None
        elif isinstance(value, bool):
            converted[name] = int(value)
        elif isinstance(value, datetime):
            converted[name] = iso(value)
        elif attribute.attribute_type == "Uniqueidentifier" and isinstance(value, str):
            converted[name] = value.lower()
        else:
            converted[name] = value
    return converted


def _lookup_parts(attribute: AttributeDef, value: object) -> tuple[str, str | None]:
    if value is None:
        return attribute.targets[0], None
    if isinstance(value, tuple):
        return str(value[0]), str(value[1]).lower()
    if isinstance(value, str):
        return attribute.targets[0], value.lower()
    target = getattr(value, "entity", attribute.targets[0])
    return str(target), str(getattr(value, "id", value)).lower()
