"""Persons: bulk create/update/delete with change capture, and fast reads.

Every accepted change is written in **one transaction** together with its activities (New
Lead 12, Change Data Value 13, Delete Lead 37) and its sync outbox entry (B18); a skipped
record writes nothing, and an update that changes nothing writes nothing. Each call costs one
lookup query plus one ``executemany`` per table, whatever the number of records.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, bindparam, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from crmsync.errors import InvalidValueError, UnknownFieldError
from crmsync.marketing.activities import insert_activities
from crmsync.marketing.activity_types import CHANGE_DATA_VALUE, DELETE_LEAD, NEW_LEAD
from crmsync.marketing.fields import FieldCatalog, FieldDef, coerce_value, load_catalog
from crmsync.marketing.outcomes import (
    FIELD_NOT_FOUND,
    FIELD_NOT_SUPPORTED,
    INVALID_DATA,
    LEAD_EXISTS,
    LEAD_NOT_FOUND,
    MULTIPLE_MATCHES,
    Reason,
    RecordOutcome,
    skipped,
)
from crmsync.marketing.values import MAX_ID, storable_ids, utc_now_text
from crmsync.store.db import take_write_lock
from crmsync.store.field_specs import PERSON_FIELDS
from crmsync.store.tables import companies, persons, sales_persons, sync_outbox

__all__ = [
    "ACTIONS",
    "DEFAULT_FIELDS",
    "PersonService",
    "Reason",
    "RecordOutcome",
    "normalise_email",
]

ACTIONS = frozenset({"createOnly", "updateOnly", "createOrUpdate", "createDuplicate"})
DEFAULT_FIELDS: tuple[str, ...] = ("id", "email", "firstName", "lastName", "updatedAt", "createdAt")
MAX_BATCH_SIZE = 300
MAX_MATCHES = 1000  # more matches than this: 1003 "Too many results" (spec marketo-rest §4.4)
# Standard fields usable as a lookup / filter key besides custom string, email and integer
# fields (spec marketo-rest §4.4); other standard fields give 1011.
KEY_FIELDS = frozenset(
    {"id", "email", "crmLeadId", "crmContactId", "externalCompanyId", "externalSalesPersonId"}
)
FILTER_ONLY_FIELDS = frozenset({"leadPartitionId"})
_KEY_TYPES = frozenset({"string", "email", "integer"})
_STANDARD = tuple(spec.rest_name for spec in PERSON_FIELDS if spec.rest_name != "id")
_AUTOMATIC = frozenset({"createdAt", "updatedAt"})
_DEFAULTS: dict[str, object] = {
    spec.rest_name: (False if spec.data_type == "boolean" else None) for spec in PERSON_FIELDS
}
_DEFAULTS["leadPartitionId"] = 1
_DEFAULTS.pop("id")
_CUSTOM = "custom"
_INSERT_ALWAYS = ("email", "createdAt", "updatedAt")
# external id field -> (person column linking the record, the linked table)
_LINKS = {
    "externalCompanyId": ("company_id", companies),
    "externalSalesPersonId": ("sales_person_id", sales_persons),
}

State = dict[str, Any]


def normalise_email(value: object) -> str | None:
    """The case-insensitive lookup key of an e-mail address."""
    if value is None:
        return None
    key = str(value).strip().lower()
    return key or None


def encode_position(last_id: int) -> str:
    """A position-based ``nextPageToken`` (spec marketo-rest §1.2): resume after ``last_id``."""
    return base64.urlsafe_b64encode(f"p:{last_id}".encode()).decode("ascii").rstrip("=")


def decode_position(token: str) -> int:
    """The id a position token resumes after; raise :class:`InvalidValueError` (1003)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not text.startswith("p:"):
            raise ValueError(text)
        return int(text[2:])
    except (binascii.Error, ValueError, UnicodeError):
        raise InvalidValueError(f"Invalid nextPageToken '{token[:60]}'", code="1003") from None


def insert_rows_returning_ids(
    conn: Connection, table: Table, rows: list[dict[str, object]]
) -> list[int]:
    """Insert ``rows`` with one ``executemany`` and return their new ids in row order.

    PostgreSQL returns them from one batched ``INSERT ... RETURNING``. SQLite cannot order
    ``RETURNING`` rows, so SQLAlchemy would insert one row at a time; instead the rows are
    inserted in bulk and their ids derived: SQLite gives each new row ``max(rowid) + 1`` and this
    transaction holds the write lock from its first insert, so the rows are the last ``n`` ids.
    The count is checked, and the transaction fails rather than mislabel a row.
    """
    if conn.dialect.name != "sqlite":
        returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [int(i) for i in conn.execute(returning, rows).scalars()]
    conn.execute(insert(table), rows)
    last = int(conn.execute(select(func.max(table.c.id))).scalar_one())
    first = last - len(rows) + 1
    placed = conn.execute(
        select(func.count()).select_from(table).where(table.c.id.between(first, last))
    ).scalar_one()
    if placed != len(rows) or last >= MAX_ID:
        raise RuntimeError(f"cannot determine the ids of {len(rows)} new {table.name} rows")
    return list(range(first, last + 1))


def _lock_keys(conn: Connection, namespace: str, keys: set[object]) -> None:
    """PostgreSQL: serialise calls that look up the same keys (so two concurrent upserts of
    one new e-mail create one person), locking in hash order so that calls never deadlock."""
    conn.execute(
        text(
            "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h "
            "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS ordered"
        ),
        {"keys": [f"{namespace}:{key}" for key in keys]},
    )


class _Batch:
    """The in-memory working set of one sync call: states, keys, and what to write."""

    def __init__(self, lookup: FieldDef, source: str, now: str) -> None:
        self.lookup = lookup
        self.source = source
        self.now = now
        self.states: dict[int, State] = {}
        self.by_key: dict[object, list[int]] = {}
        self.new_ids: list[int] = []  # temporary negative ids, in creation order
        self.dirty: dict[int, set[str]] = {}  # existing person id -> changed columns
        self.activities: list[dict[str, Any]] = []
        self.changed_names: dict[int, list[str]] = {}
        self.write_outbox = True

    def key_of(self, state: State) -> object:
        value = self.lookup_value(state)
        return normalise_email(value) if self.lookup.data_type == "email" else value

    def lookup_value(self, state: State) -> object:
        if self.lookup.is_custom:
            return state[_CUSTOM].get(self.lookup.rest_name)
        return state.get(self.lookup.rest_name)

    def register(self, person_id: int, state: State) -> None:
        key = self.key_of(state)
        if key is not None:
            self.by_key.setdefault(key, []).append(person_id)

    def unregister(self, person_id: int, key: object) -> None:
        ids = self.by_key.get(key)
        if ids and person_id in ids:
            ids.remove(person_id)

    def activity(
        self,
        person_id: int,
        type_id: int,
        primary_id: int | None,
        primary: str | None,
        attributes: dict[str, object],
        field_name: str | None = None,
    ) -> None:
        self.activities.append(
            {
                "person_id": person_id,
                "type_id": type_id,
                "activity_date": self.now,
                "primary_value_id": primary_id,
                "primary_value": primary,
                "field_name": field_name,
                "attributes": attributes,
                "campaign_id": None,
            }
        )


class PersonService:
    """Create, update, read and delete persons (the REST API's leads)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- reads ----------------------------------------------------------------------------

    def resolve_fields(self, catalog: FieldCatalog, fields: Sequence[str] | None) -> list[FieldDef]:
        """The catalog fields named in ``fields`` (default :data:`DEFAULT_FIELDS`), deduplicated;
        raise :class:`UnknownFieldError` (1006) for an unknown name."""
        names = fields if fields else DEFAULT_FIELDS
        resolved: list[FieldDef] = []
        seen: set[str] = set()
        for name in names:
            name = name.strip()
            if not name:
                continue
            found = catalog.get(name)
            if found is None:
                raise UnknownFieldError(f"Field '{name}' not found", entity="person", code="1006")
            if found.rest_name not in seen:
                seen.add(found.rest_name)
                resolved.append(found)
        return resolved

    def read_rows(
        self,
        conn: Connection,
        wanted: list[FieldDef],
        condition: ColumnElement[bool],
        limit: int | None = None,
    ) -> list[dict[str, object]]:
        """Persons matching ``condition`` in id order, as dicts of ``wanted`` plus ``id``."""
        columns: list[ColumnElement[Any]] = [persons.c.id]
        columns += [
            persons.c[f.rest_name].label(f.rest_name)
            for f in wanted
            if not f.is_custom and f.rest_name != "id"
        ]
        custom_wanted = [f.rest_name for f in wanted if f.is_custom]
        if custom_wanted:
            columns.append(persons.c.custom)
        query = select(*columns).where(condition).order_by(persons.c.id)
        if limit is not None:
            query = query.limit(limit)
        result: list[dict[str, object]] = []
        for row in conn.execute(query).mappings():
            custom = (row["custom"] or {}) if custom_wanted else {}
            item: dict[str, object] = {}
            for f in wanted:
                name = f.rest_name
                item[name] = custom.get(name) if f.is_custom else row[name]
            item["id"] = row["id"]
            result.append(item)
        return result

    def get_by_ids(
        self, ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> list[dict[str, object]]:
        """Persons by id, in the order asked, unknown ids left out. Each dict has ``id`` plus
        the requested fields (default: id, email, firstName, lastName, updatedAt, createdAt);
        null values are present as ``None``. Raises :class:`UnknownFieldError`."""
        with self._engine.connect() as conn:
            wanted = self.resolve_fields(load_catalog(conn), fields)
            wanted_ids = storable_ids(int(i) for i in ids)
            if not wanted_ids:
                return []
            found = self.read_rows(conn, wanted, persons.c.id.in_(wanted_ids))
        by_id = {item["id"]: item for item in found}
        return [by_id[i] for i in wanted_ids if i in by_id]

    def _key_column(self, field: FieldDef, purpose: str) -> ColumnElement[Any]:
        allowed = KEY_FIELDS | (FILTER_ONLY_FIELDS if purpose == "filter" else frozenset())
        if field.is_custom:
            if field.data_type not in _KEY_TYPES:
                raise InvalidValueError(
                    f"Field '{field.rest_name}' not supported",
                    entity="person",
                    code=FIELD_NOT_SUPPORTED,
                )
            element = persons.c.custom[field.rest_name]
            typed: ColumnElement[Any] = (
                element.as_integer() if field.data_type == "integer" else element.as_string()
            )
            return typed
        if field.rest_name not in allowed:
            raise InvalidValueError(
                f"Field '{field.rest_name}' not supported",
                entity="person",
                code=FIELD_NOT_SUPPORTED,
            )
        if field.rest_name == "email":
            return persons.c.email_key
        return persons.c[field.rest_name]

    @staticmethod
    def _key_value(field: FieldDef, raw: object) -> object:
        """The lookup key for a filter value; ``None`` when no stored row can match it."""
        text = str(raw)
        if "\x00" in text:
            return None
        if field.data_type == "email":
            return normalise_email(text)
        if field.data_type == "integer":
            try:
                number = int(text.strip())
            except ValueError:
                raise InvalidValueError(
                    f"Invalid value '{raw}' for '{field.rest_name}'", code=INVALID_DATA
                ) from None
            return number if -MAX_ID <= number <= MAX_ID else None
        return text

    def find(
        self,
        filter_field: str,
        values: Sequence[str],
        fields: Sequence[str] | None = None,
        batch_size: int = 300,
        next_page_token: str | None = None,
    ) -> tuple[list[dict[str, object]], str | None]:
        """Persons whose ``filter_field`` equals one of ``values`` (email: any case), by id.

        Returns the page and a ``nextPageToken`` when more remain. Raises
        :class:`UnknownFieldError` (1006) or :class:`InvalidValueError` (1011 unsupported
        filter, 1003 bad value or token, or more than 1,000 matches).
        """
        size = max(1, min(int(batch_size), MAX_BATCH_SIZE))
        after = decode_position(next_page_token) if next_page_token else 0
        with self._engine.connect() as conn:
            catalog = load_catalog(conn)
            field = catalog.get(filter_field.strip())
            if field is None:
                raise UnknownFieldError(
                    f"Field '{filter_field}' not found", entity="person", code="1006"
                )
            column = self._key_column(field, "filter")
            keys = list(
                dict.fromkeys(
                    k
                    for k in (self._key_value(field, v) for v in values if str(v).strip())
                    if k is not None
                )
            )
            wanted = self.resolve_fields(catalog, fields)
            if not keys:
                return [], None
            condition = column.in_(keys) & (persons.c.id > after)
            found = self.read_rows(conn, wanted, condition, limit=size + 1)
            if len(found) > size and next_page_token is None:
                matching = select(persons.c.id).where(column.in_(keys)).limit(MAX_MATCHES + 1)
                total = conn.execute(
                    select(func.count()).select_from(matching.subquery())
                ).scalar_one()
                if total > MAX_MATCHES:
                    raise InvalidValueError(
                        "Too many results match the filter", entity="person", code=INVALID_DATA
                    )
        if len(found) > size:
            found = found[:size]
            last = found[-1]["id"]
            assert isinstance(last, int)
            return found, encode_position(last)
        return found, None

    # ---- writes ---------------------------------------------------------------------------

    def sync(
        self,
        records: Sequence[Mapping[str, object]],
        *,
        action: str = "createOrUpdate",
        lookup_field: str = "email",
        source: str = "Web service API",
        allow_system_fields: bool = False,
        write_outbox: bool = True,
    ) -> list[RecordOutcome]:
        """Create and/or update persons (spec marketo-rest §4.5); one outcome per record.

        ``allow_system_fields`` lets the sync engine write the read-only CRM fields (B7);
        ``write_outbox=False`` is for changes that come *from* Dynamics, which must not be sent
        back (echo suppression, B19); their activities are still written.
        Raises :class:`InvalidValueError` for an unknown action, :class:`UnknownFieldError`
        (1006) / :class:`InvalidValueError` (1011) for a bad lookup field.
        """
        if action not in ACTIONS:
            raise InvalidValueError(
                f"Invalid action '{action}'; use one of {', '.join(sorted(ACTIONS))}",
                code=INVALID_DATA,
            )
        now = utc_now_text()
        with self._engine.begin() as conn:
            take_write_lock(conn)
            catalog = load_catalog(conn)
            lookup = catalog.get(lookup_field.strip())
            if lookup is None:
                raise UnknownFieldError(
                    f"Field '{lookup_field}' not found", entity="person", code="1006"
                )
            key_column = self._key_column(lookup, "lookup")
            batch = _Batch(lookup, source, now)
            batch.write_outbox = write_outbox
            parsed = [self._parse(catalog, record, allow_system_fields) for record in records]
            self._load_existing(conn, batch, parsed, key_column, action)
            outcomes = [
                item if isinstance(item, RecordOutcome) else self._apply(batch, action, *item)
                for item in parsed
            ]
            real_ids = self._write(conn, batch, catalog)
        return [
            RecordOutcome(o.status, real_ids.get(o.id, o.id), o.reasons)
            if o.id is not None and o.id < 0
            else o
            for o in outcomes
        ]

    @staticmethod
    def _parse(
        catalog: FieldCatalog, record: Mapping[str, object], allow_system: bool
    ) -> RecordOutcome | tuple[int | None, dict[str, object], dict[str, object]]:
        if not isinstance(record, Mapping):
            return skipped(INVALID_DATA, "Invalid data: a record must be a JSON object")
        person_id: int | None = None
        values: dict[str, object] = {}
        custom: dict[str, object] = {}
        for key, raw in record.items():
            field = catalog.get(str(key))
            if field is None:
                return skipped(FIELD_NOT_FOUND, f"Field '{key}' not found")
            if field.rest_name == "id":
                if isinstance(raw, bool) or not isinstance(raw, int | str):
                    return skipped(INVALID_DATA, f"Invalid value '{raw}' for field 'id'")
                try:
                    person_id = int(raw)
                except ValueError:
                    return skipped(INVALID_DATA, f"Invalid value '{raw}' for field 'id'")
                if not 0 < person_id <= MAX_ID:
                    return skipped(INVALID_DATA, f"Invalid value '{raw}' for field 'id'")
                continue
            if field.read_only and (field.rest_name in _AUTOMATIC or not allow_system):
                return skipped(INVALID_DATA, f"Field '{field.rest_name}' is read-only")
            try:
                value = coerce_value(field, raw)
            except InvalidValueError as exc:
                return skipped(INVALID_DATA, exc.message)
            if field.is_custom:
                custom[field.rest_name] = value
            else:
                values[field.rest_name] = value
        return person_id, values, custom

    def _load_existing(
        self,
        conn: Connection,
        batch: _Batch,
        parsed: list[RecordOutcome | tuple[int | None, dict[str, object], dict[str, object]]],
        key_column: ColumnElement[Any],
        action: str,
    ) -> None:
        ids: set[int] = set()
        keys: set[object] = set()
        lookup = batch.lookup
        # Load only the columns this call can compare or change.
        needed: set[str] = {"email"}
        if not lookup.is_custom and lookup.rest_name != "id":
            needed.add(lookup.rest_name)
        need_custom = lookup.is_custom
        for item in parsed:
            if isinstance(item, RecordOutcome):
                continue
            person_id, values, custom = item
            needed.update(values)
            need_custom = need_custom or bool(custom)
            if person_id is not None:
                ids.add(person_id)
            elif action != "createDuplicate" and lookup.rest_name != "id":
                raw = (
                    custom.get(lookup.rest_name)
                    if lookup.is_custom
                    else values.get(lookup.rest_name)
                )
                key = normalise_email(raw) if lookup.data_type == "email" else raw
                if key is not None:
                    keys.add(key)
        conditions: list[ColumnElement[bool]] = []
        if ids:
            conditions.append(persons.c.id.in_(sorted(ids)))
        if keys:
            conditions.append(key_column.in_(sorted(keys, key=str)))
        if not conditions:
            return
        if keys and conn.dialect.name == "postgresql":
            _lock_keys(conn, f"person:{lookup.rest_name}", keys)
        condition = conditions[0] if len(conditions) == 1 else conditions[0] | conditions[1]
        names = [name for name in _STANDARD if name in needed]
        columns: list[ColumnElement[Any]] = [persons.c.id]
        columns += [persons.c[name].label(name) for name in names]
        if need_custom:
            columns.append(persons.c.custom)
        query = select(*columns).where(condition).order_by(persons.c.id).with_for_update()
        for row in conn.execute(query).mappings():
            state: State = {name: row[name] for name in names}
            state[_CUSTOM] = dict(row["custom"] or {}) if need_custom else {}
            batch.states[row["id"]] = state
            batch.register(row["id"], state)

    def _apply(
        self,
        batch: _Batch,
        action: str,
        person_id: int | None,
        values: dict[str, object],
        custom: dict[str, object],
    ) -> RecordOutcome:
        lookup = batch.lookup
        if person_id is not None:
            if action in {"createOnly", "createDuplicate"}:
                return skipped(INVALID_DATA, "Invalid data: 'id' is allowed only to update")
            if person_id not in batch.states:
                return skipped(LEAD_NOT_FOUND, "Lead not found", person_id)
            return self._update(batch, person_id, values, custom)
        if lookup.rest_name == "id":
            if action == "createDuplicate" or action == "createOnly":
                return self._create(batch, values, custom)
            return skipped(INVALID_DATA, "Invalid data: lookup field 'id' is missing")
        raw = custom.get(lookup.rest_name) if lookup.is_custom else values.get(lookup.rest_name)
        key = normalise_email(raw) if lookup.data_type == "email" else raw
        matches = batch.by_key.get(key, []) if key is not None else []
        if action == "createDuplicate":
            return self._create(batch, values, custom)
        if action == "createOnly":
            if matches:
                return skipped(LEAD_EXISTS, "Lead already exists", matches[0])
            return self._create(batch, values, custom)
        if len(matches) > 1:
            return skipped(MULTIPLE_MATCHES, "Multiple leads match the lookup criteria")
        if not matches:
            if action == "updateOnly":
                if key is None:
                    return skipped(
                        INVALID_DATA, f"Invalid data: lookup field '{lookup.rest_name}' is missing"
                    )
                return skipped(LEAD_NOT_FOUND, "Lead not found")
            return self._create(batch, values, custom)
        return self._update(batch, matches[0], values, custom)

    def _create(
        self, batch: _Batch, values: dict[str, object], custom: dict[str, object]
    ) -> RecordOutcome:
        temp_id = -(len(batch.new_ids) + 1)
        state: State = dict(_DEFAULTS)
        state.update(values)
        state["createdAt"] = batch.now
        state["updatedAt"] = batch.now
        state[_CUSTOM] = {k: v for k, v in custom.items() if v is not None}
        batch.states[temp_id] = state
        batch.new_ids.append(temp_id)
        batch.register(temp_id, state)
        batch.activity(
            temp_id,
            NEW_LEAD,
            None,
            batch.source,
            {
                "Created Date": batch.now[:10],
                "Source Type": batch.source,
                "Lead Source": state.get("leadSource"),
            },
        )
        batch.changed_names[temp_id] = [
            *(k for k, v in values.items() if v is not None),
            *state[_CUSTOM],
        ]
        return RecordOutcome("created", temp_id)

    def _update(
        self,
        batch: _Batch,
        person_id: int,
        values: dict[str, object],
        custom: dict[str, object],
    ) -> RecordOutcome:
        state = batch.states[person_id]
        old_key = batch.key_of(state)
        lookup_email = "email" if batch.lookup.rest_name == "email" else None
        changes: list[tuple[str, object, object, bool]] = []
        for name, value in values.items():
            old = state.get(name)
            if old == value:
                continue
            if name == lookup_email and normalise_email(old) == normalise_email(value):
                continue  # the record was found by this address: keep its stored spelling
            changes.append((name, old, value, False))
        current_custom: dict[str, object] = state[_CUSTOM]
        for name, value in custom.items():
            if current_custom.get(name) != value:
                changes.append((name, current_custom.get(name), value, True))
        if not changes:
            return RecordOutcome("updated", person_id)
        dirty = batch.dirty.setdefault(person_id, set()) if person_id > 0 else None
        names = batch.changed_names.setdefault(person_id, [])
        for name, old, new, is_custom in changes:
            if is_custom:
                if new is None:
                    current_custom.pop(name, None)
                else:
                    current_custom[name] = new
                if dirty is not None:
                    dirty.add(_CUSTOM)
            else:
                state[name] = new
                if dirty is not None:
                    dirty.add(name)
            if name not in names:
                names.append(name)
            batch.activity(
                person_id,
                CHANGE_DATA_VALUE,
                None,
                name,
                {
                    "New Value": new,
                    "Old Value": old,
                    "Reason": batch.source,
                    "Source": batch.source,
                },
                field_name=name,
            )
        state["updatedAt"] = batch.now
        if dirty is not None:
            dirty.add("updatedAt")
        new_key = batch.key_of(state)
        if new_key != old_key:
            batch.unregister(person_id, old_key)
            batch.register(person_id, state)
        return RecordOutcome("updated", person_id)

    def _write(self, conn: Connection, batch: _Batch, catalog: FieldCatalog) -> dict[int, int]:
        real_ids: dict[int, int] = {}
        if batch.new_ids:
            # Only the columns this batch sets; the others take their column defaults
            # (false for booleans), which keeps executemany's parameter sets small.
            used = set(_INSERT_ALWAYS)
            for temp_id in batch.new_ids:
                used.update(batch.changed_names.get(temp_id, ()))
            standard = [name for name in _STANDARD if name in used]
            links = self._links(conn, batch, used)
            rows = []
            for temp_id in batch.new_ids:
                state = batch.states[temp_id]
                row = {name: state[name] for name in standard}
                for ext, (column, found) in links.items():
                    row[column] = found.get(state[ext])
                row["email_key"] = normalise_email(state["email"])
                row[_CUSTOM] = state[_CUSTOM] or None
                rows.append(row)
            inserted = insert_rows_returning_ids(conn, persons, rows)
            real_ids = dict(zip(batch.new_ids, inserted, strict=True))
        groups: dict[frozenset[str], list[dict[str, object]]] = {}
        changed_columns: set[str] = set()
        for columns in batch.dirty.values():
            changed_columns |= columns
        links = self._links(conn, batch, changed_columns, existing=True)
        for person_id, columns in batch.dirty.items():
            state = batch.states[person_id]
            params: dict[str, object] = {"_person_id": person_id}
            for name in columns:
                params[name] = state[name] or None if name == _CUSTOM else state[name]
            if "email" in columns:
                params["email_key"] = normalise_email(state["email"])
            for ext, (column, found) in links.items():
                if ext in columns:
                    params[column] = found.get(state[ext])
            groups.setdefault(frozenset(params), []).append(params)
        for group_rows in groups.values():
            conn.execute(update(persons).where(persons.c.id == bindparam("_person_id")), group_rows)
        if batch.activities:
            for row in batch.activities:
                pid = row["person_id"]
                if pid < 0:
                    row["person_id"] = real_ids[pid]
                if row["type_id"] == NEW_LEAD:
                    row["primary_value_id"] = row["person_id"]
                elif row["type_id"] == CHANGE_DATA_VALUE:
                    field = catalog.get(row["field_name"])
                    if field is not None:
                        row["primary_value_id"] = field.field_id
                        row["primary_value"] = field.display_name
            insert_activities(conn, batch.activities)
        outbox = []
        created_at = datetime.now(UTC)
        for temp_id in batch.new_ids:
            outbox.append(
                {
                    "person_id": real_ids[temp_id],
                    "operation": "create",
                    "changed_fields": batch.changed_names.get(temp_id, []),
                    "created_at": created_at,
                    "source": batch.source,
                }
            )
        for person_id in batch.dirty:
            outbox.append(
                {
                    "person_id": person_id,
                    "operation": "update",
                    "changed_fields": batch.changed_names.get(person_id, []),
                    "created_at": created_at,
                    "source": batch.source,
                }
            )
        if outbox and batch.write_outbox:
            conn.execute(insert(sync_outbox), outbox)
        return real_ids

    @staticmethod
    def _links(
        conn: Connection, batch: _Batch, columns: set[str], *, existing: bool = False
    ) -> dict[str, tuple[str, dict[object, int]]]:
        """For each external link field the batch sets: its id column and the ids found."""
        result: dict[str, tuple[str, dict[object, int]]] = {}
        person_ids = list(batch.dirty) if existing else batch.new_ids
        for ext, (column, table) in _LINKS.items():
            if ext not in columns:
                continue
            wanted = {batch.states[p][ext] for p in person_ids} - {None, ""}
            found: dict[object, int] = {}
            if wanted:
                key = table.c[ext]
                rows = conn.execute(
                    select(key, table.c.id).where(key.in_(sorted(map(str, wanted))))
                )
                found = {row[0]: int(row[1]) for row in rows}
            result[ext] = (column, found)
        return result

    def delete(self, ids: Sequence[int], *, source: str = "Web service API") -> list[RecordOutcome]:
        """Delete persons here only, never in Dynamics (B27, B35); unknown ids give 1004.

        Each deletion writes a Delete Lead activity (37, kept for deleted leads) and a
        ``delete`` outbox entry so the sync engine learns the link is gone, in one transaction.
        """
        wanted = [int(i) for i in ids]
        now = utc_now_text()
        outcomes: list[RecordOutcome] = []
        with self._engine.begin() as conn:
            take_write_lock(conn)
            found = (
                {
                    row.id: row
                    for row in conn.execute(
                        select(
                            persons.c.id, persons.c.firstName, persons.c.lastName, persons.c.email
                        )
                        .where(persons.c.id.in_(storable_ids(wanted)))
                        .with_for_update()
                    )
                }
                if wanted
                else {}
            )
            deleted: list[int] = []
            for person_id in wanted:
                if person_id in found and person_id not in deleted:
                    deleted.append(person_id)
                    outcomes.append(RecordOutcome("deleted", person_id))
                else:
                    outcomes.append(skipped(LEAD_NOT_FOUND, "Lead not found", person_id))
            if not deleted:
                return outcomes
            conn.execute(delete(persons).where(persons.c.id.in_(deleted)))
            activity_rows = []
            for person_id in deleted:
                row = found[person_id]
                name = " ".join(p for p in (row.firstName, row.lastName) if p) or row.email or ""
                activity_rows.append(
                    {
                        "person_id": person_id,
                        "type_id": DELETE_LEAD,
                        "activity_date": now,
                        "primary_value_id": person_id,
                        "primary_value": name,
                        "field_name": None,
                        "attributes": {"Source": source},
                        "campaign_id": None,
                    }
                )
            insert_activities(conn, activity_rows)
            created_at = datetime.now(UTC)
            conn.execute(
                insert(sync_outbox),
                [
                    {
                        "person_id": person_id,
                        "operation": "delete",
                        "changed_fields": [],
                        "created_at": created_at,
                        "source": source,
                    }
                    for person_id in deleted
                ],
            )
        return outcomes
