"""Marketo's *Sync Leads* (``POST /rest/v1/leads.json``): one call's records upserted in bulk
with change capture. Not the Dynamics sync: that is :mod:`crmsync.sync`.

:class:`SyncLeads` parses and coerces each record, loads the persons the call can touch with
one query, decides create / update / skip per record in order (a record may update a person
created earlier in the same call), then writes persons, activities (New Lead 12, Change Data
Value 13, :mod:`~crmsync.marketing.activity_log`) and outbox entries
(:mod:`~crmsync.store.outbox`) with one ``executemany`` each, in the caller's transaction
(B18).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from crmsync.errors import InvalidValueError
from crmsync.marketing.activity_log import (
    ActivityEntry,
    change_data_value,
    new_lead,
    write_activities,
)
from crmsync.marketing.activity_types import NEW_LEAD
from crmsync.marketing.campaigns.triggers import record_trigger_events
from crmsync.marketing.fields import FieldCatalog, FieldDef, coerce_value
from crmsync.marketing.outcomes import (
    FIELD_NOT_FOUND,
    INVALID_DATA,
    INVALID_VALUE,
    LEAD_EXISTS,
    LEAD_NOT_FOUND,
    MULTIPLE_MATCHES,
    RecordOutcome,
    skipped,
)
from crmsync.marketing.person_company import (
    SHARED_FIELDS,
    company_change_activities,
    person_column,
    persons_with_company,
)
from crmsync.marketing.values import MAX_ID
from crmsync.store import outbox
from crmsync.store.field_specs import PERSON_FIELDS
from crmsync.store.inserts import insert_returning_ids
from crmsync.store.locks import lock_keys
from crmsync.store.tables import companies, persons, sales_persons

ACTIONS = frozenset({"createOnly", "updateOnly", "createOrUpdate", "createDuplicate"})
_STANDARD = tuple(spec.rest_name for spec in PERSON_FIELDS if spec.rest_name != "id")
_AUTOMATIC = frozenset({"createdAt", "updatedAt"})
_DEFAULTS: dict[str, object] = {
    spec.rest_name: (False if spec.data_type == "boolean" else None) for spec in PERSON_FIELDS
}
_DEFAULTS["leadPartitionId"] = 1
_DEFAULTS.pop("id")
_CUSTOM = "custom"
_COMPANY_ID = "company_id"  # in a loaded state: the person's company, whose fields it shows
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


class _Batch:
    """The in-memory working set of one sync call: states, keys, and what to write."""

    def __init__(self, lookup: FieldDef, catalog: FieldCatalog, source: str, now: str) -> None:
        self.lookup = lookup
        self.catalog = catalog
        self.source = source
        self.now = now
        self.states: dict[int, State] = {}
        self.by_key: dict[object, list[int]] = {}
        self.new_ids: list[int] = []  # temporary negative ids, in creation order
        self.dirty: dict[int, set[str]] = {}  # existing person id -> changed columns
        self.activities: list[ActivityEntry] = []
        self.changed_names: dict[int, list[str]] = {}
        # company id -> company field -> (old, new): marketing edits of shared company fields
        self.company_edits: dict[int, dict[str, tuple[object, object]]] = {}
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


class SyncLeads:
    """One Sync Leads call: the lookup field, its key column, the source and the time."""

    def __init__(
        self,
        lookup: FieldDef,
        key_column: ColumnElement[Any],
        source: str,
        now: str,
        write_outbox: bool = True,
        campaign_id: int | None = None,
    ) -> None:
        self.lookup = lookup
        self.key_column = key_column
        self.source = source
        self.now = now
        self.write_outbox = write_outbox
        self.campaign_id = campaign_id  # a campaign's step: its activities carry the id

    def apply(
        self,
        conn: Connection,
        catalog: FieldCatalog,
        records: Sequence[Mapping[str, object]],
        action: str,
        allow_system_fields: bool,
    ) -> list[RecordOutcome]:
        """Apply ``records`` in the caller's transaction; one outcome per record, in order."""
        batch = _Batch(self.lookup, catalog, self.source, self.now)
        batch.write_outbox = self.write_outbox
        parsed = [self._parse(catalog, record, allow_system_fields) for record in records]
        self._load_existing(conn, batch, parsed, self.key_column, action)
        outcomes = [
            item if isinstance(item, RecordOutcome) else self._apply(batch, action, *item)
            for item in parsed
        ]
        real_ids = self._write(conn, batch)
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
                return skipped(INVALID_VALUE, exc.message)
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
            lock_keys(conn, f"person:{lookup.rest_name}", keys)
        condition = conditions[0] if len(conditions) == 1 else conditions[0] | conditions[1]
        names = [name for name in _STANDARD if name in needed]
        columns: list[ColumnElement[Any]] = [persons.c.id, persons.c.company_id]
        columns += [person_column(name).label(name) for name in names]
        if need_custom:
            columns.append(persons.c.custom)
        query = select(*columns).where(condition).order_by(persons.c.id)
        if any(name in SHARED_FIELDS for name in names):
            query = query.select_from(persons_with_company())
        for row in conn.execute(query.with_for_update(of=persons)).mappings():
            state: State = {name: row[name] for name in names}
            state[_COMPANY_ID] = row["company_id"]
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
        batch.activities.append(
            new_lead(
                temp_id, source=batch.source, lead_source=state.get("leadSource"), when=batch.now
            )
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
        company_id = state.get(_COMPANY_ID)
        if company_id is not None and batch.write_outbox:
            # R40: the shared company changes, locally; nothing of it goes to Dynamics
            edits = batch.company_edits.setdefault(int(company_id), {})
            for name, old, new, is_custom in changes:
                if not is_custom and name in SHARED_FIELDS:
                    key = SHARED_FIELDS[name]
                    edits[key] = (edits[key][0] if key in edits else old, new)
                    state[name] = new
            changes = [c for c in changes if c[3] or c[0] not in SHARED_FIELDS]
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
            batch.activities.append(
                change_data_value(
                    person_id,
                    name,
                    old,
                    new,
                    field=batch.catalog.get(name),
                    reason=batch.source,
                    source=batch.source,
                    when=batch.now,
                )
            )
        state["updatedAt"] = batch.now
        if dirty is not None:
            dirty.add("updatedAt")
        new_key = batch.key_of(state)
        if new_key != old_key:
            batch.unregister(person_id, old_key)
            batch.register(person_id, state)
        return RecordOutcome("updated", person_id)

    def _write(self, conn: Connection, batch: _Batch) -> dict[int, int]:
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
            inserted = insert_returning_ids(conn, persons, rows)
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
        if self.write_outbox:
            outbox.enqueue(
                conn,
                [real_ids[temp_id] for temp_id in batch.new_ids],
                operation="create",
                source=batch.source,
                changed_fields={
                    real_ids[t]: names for t, names in batch.changed_names.items() if t < 0
                },
            )
            outbox.enqueue(
                conn,
                list(batch.dirty),
                operation="update",
                source=batch.source,
                changed_fields=batch.changed_names,
            )
        entries = [_with_real_id(entry, real_ids) for entry in batch.activities]
        entries += self._write_company_edits(conn, batch)
        if self.campaign_id is not None:
            entries = [replace(entry, campaign_id=self.campaign_id) for entry in entries]
        # activities last in the transaction (see crmsync.marketing.activity_log)
        write_activities(conn, entries)
        record_trigger_events(conn, entries)
        return real_ids

    @staticmethod
    def _write_company_edits(conn: Connection, batch: _Batch) -> list[ActivityEntry]:
        """Write the call's edits of shared company fields to their companies (R40); return
        the Change Data Value activities of every person of those companies."""
        changed = {
            company_id: {name: pair for name, pair in fields.items() if pair[0] != pair[1]}
            for company_id, fields in batch.company_edits.items()
        }
        for company_id, fields in changed.items():
            if fields:
                values = {name: new for name, (_old, new) in fields.items()}
                conn.execute(
                    update(companies)
                    .where(companies.c.id == company_id)
                    .values(**values, updatedAt=batch.now)
                )
        return company_change_activities(
            conn, changed, reason=batch.source, source=batch.source, when=batch.now
        )

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


def _with_real_id(entry: ActivityEntry, real_ids: Mapping[int, int]) -> ActivityEntry:
    """``entry`` of a person created in this call, with its new id in place of the
    temporary one (a New Lead names the person's id as its primary value)."""
    if entry.person_id >= 0:
        return entry
    person_id = real_ids[entry.person_id]
    primary_id = person_id if entry.type_id == NEW_LEAD else entry.primary_value_id
    return replace(entry, person_id=person_id, primary_value_id=primary_id)
