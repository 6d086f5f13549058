"""Companies, opportunities, opportunity roles, sales persons and teams (spec marketo-rest §7).

These are Dynamics-owned, one-way objects (B2): the REST API reads them (``describe``,
``query``); ``upsert`` is how the sync engine, the demo loader and (while sync is disabled) the
REST API write them, keyed by their dedupe fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, bindparam, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from crmsync.errors import InvalidValueError, UnknownFieldError
from crmsync.marketing.fields import FieldCatalog, FieldDef, coerce_value, load_catalog
from crmsync.marketing.outcomes import (
    FIELD_NOT_FOUND,
    INVALID_DATA,
    LEAD_NOT_FOUND,
    OBJECT_NOT_FOUND,
    RecordOutcome,
    skipped,
)
from crmsync.marketing.persons import MAX_BATCH_SIZE, decode_position, encode_position
from crmsync.marketing.values import storable_ids, unstorable_reason, utc_now_text
from crmsync.store.inserts import insert_returning_ids
from crmsync.store.locks import lock_keys, take_write_lock
from crmsync.store.tables import (
    companies,
    opportunities,
    opportunity_roles,
    persons,
    sales_persons,
    teams,
)

DUPLICATE_IN_INPUT = "1036"
OBJECT_EXISTS = "1017"
_OBJECT_ACTIONS = frozenset({"createOrUpdate", "createOnly", "updateOnly"})


@dataclass(frozen=True, slots=True)
class ObjectKind:
    """How one object type is stored and described."""

    key: str
    table: Table
    display_name: str
    id_field: str
    dedupe_fields: tuple[str, ...]
    searchable_fields: tuple[tuple[str, ...], ...]
    default_fields: tuple[str, ...] | None  # None: every populated field


OBJECT_KINDS: dict[str, ObjectKind] = {
    "company": ObjectKind(
        "company",
        companies,
        "Company",
        "id",
        ("externalCompanyId",),
        (("externalCompanyId",), ("id",), ("company",)),
        ("id", "externalCompanyId", "updatedAt", "createdAt"),
    ),
    "opportunity": ObjectKind(
        "opportunity",
        opportunities,
        "Opportunity",
        "marketoGUID",
        ("externalOpportunityId",),
        (("externalOpportunityId",), ("marketoGUID",)),
        ("marketoGUID", "externalOpportunityId", "updatedAt", "createdAt"),
    ),
    "opportunityRole": ObjectKind(
        "opportunityRole",
        opportunity_roles,
        "Opportunity Role",
        "marketoGUID",
        ("externalOpportunityId", "leadId", "role"),
        (
            ("externalOpportunityId", "leadId", "role"),
            ("marketoGUID",),
            ("leadId",),
            ("externalOpportunityId",),
        ),
        ("marketoGUID", "externalOpportunityId", "leadId", "role", "updatedAt", "createdAt"),
    ),
    "salesperson": ObjectKind(
        "salesperson",
        sales_persons,
        "SalesPerson",
        "id",
        ("externalSalesPersonId",),
        (("email",), ("id",), ("externalSalesPersonId",)),
        None,
    ),
    "team": ObjectKind(
        "team",
        teams,
        "Team",
        "id",
        ("externalTeamId",),
        (("externalTeamId",), ("id",)),
        ("id", "externalTeamId", "name", "updatedAt", "createdAt"),
    ),
}

_ALIASES = {
    "companies": "company",
    "opportunities": "opportunity",
    "opportunities/roles": "opportunityRole",
    "opportunityroles": "opportunityRole",
    "opportunityrole": "opportunityRole",
    "roles": "opportunityRole",
    "salespersons": "salesperson",
    "teams": "team",
}
# object -> (its external id field on persons, the person column that links to it)
_PERSON_LINKS = {
    "company": ("externalCompanyId", "company_id"),
    "salesperson": ("externalSalesPersonId", "sales_person_id"),
}
_SYSTEM = frozenset({"id", "marketoGUID", "createdAt", "updatedAt"})


def describe_field(field: FieldDef, *, crm_managed: bool) -> dict[str, object]:
    """One field as Marketo's describe calls list it (spec marketo-rest §4.2, §7.1)."""
    entry: dict[str, object] = {
        "name": field.rest_name,
        "displayName": field.display_name,
        "dataType": field.data_type,
    }
    if field.length is not None:
        entry["length"] = field.length
    entry["updateable"] = not field.read_only
    entry["crmManaged"] = crm_managed
    return entry


def object_kind(object_type: str) -> ObjectKind:
    """The :class:`ObjectKind` for a name or REST path segment (``companies``, ...)."""
    key = object_type.strip()
    found = OBJECT_KINDS.get(key) or OBJECT_KINDS.get(_ALIASES.get(key.lower(), key.lower()))
    if found is None:
        raise InvalidValueError(f"unknown object type {object_type!r}", code="610")
    return found


_Parsed = RecordOutcome | tuple[tuple[object, ...], dict[str, object]]


def _check_role_references(conn: Connection, parsed: list[_Parsed]) -> list[_Parsed]:
    """Skip the roles whose opportunity (1013) or lead (1004) does not exist (spec §7.1)."""
    wanted = [item[1] for item in parsed if not isinstance(item, RecordOutcome)]
    if not wanted:
        return parsed
    external_ids = sorted({str(values["externalOpportunityId"]) for values in wanted})
    lead_ids = storable_ids(int(str(values["leadId"])) for values in wanted)
    key = opportunities.c.externalOpportunityId
    found_opportunities = {row[0] for row in conn.execute(select(key).where(key.in_(external_ids)))}
    found_leads: set[int] = set()
    if lead_ids:
        found_leads = {
            int(row[0])
            for row in conn.execute(select(persons.c.id).where(persons.c.id.in_(lead_ids)))
        }
    checked: list[_Parsed] = []
    for item in parsed:
        if not isinstance(item, RecordOutcome):
            values = item[1]
            opportunity = values["externalOpportunityId"]
            if opportunity not in found_opportunities:
                item = skipped(OBJECT_NOT_FOUND, f"Opportunity '{opportunity}' not found")
            elif int(str(values["leadId"])) not in found_leads:
                item = skipped(LEAD_NOT_FOUND, f"Lead '{values['leadId']}' not found")
        checked.append(item)
    return checked


class ObjectService:
    """Describe, query and upsert the one-way CRM objects."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _catalog(self, conn: Connection, kind: ObjectKind) -> FieldCatalog:
        return load_catalog(conn, kind.key)

    def describe(self, object_type: str) -> dict[str, object]:
        """The object's metadata in Marketo's describe shape (spec §7.1)."""
        kind = object_kind(object_type)
        with self._engine.connect() as conn:
            catalog = self._catalog(conn, kind)
        fields = [
            describe_field(f, crm_managed=not f.is_custom and f.rest_name not in _SYSTEM)
            for f in catalog.fields
        ]
        return {
            "name": kind.key,
            "displayName": kind.display_name,
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
            "idField": kind.id_field,
            "dedupeFields": list(kind.dedupe_fields),
            "searchableFields": [list(s) for s in kind.searchable_fields],
            "fields": fields,
        }

    @staticmethod
    def _column(kind: ObjectKind, field: FieldDef) -> ColumnElement[Any]:
        if field.is_custom:
            element: ColumnElement[Any] = kind.table.c.custom[field.rest_name].as_string()
            return element
        return kind.table.c[field.rest_name]

    def query(
        self,
        object_type: str,
        filter_field: str,
        values: Sequence[object],
        fields: Sequence[str] | None = None,
        batch_size: int = 300,
        next_page_token: str | None = None,
    ) -> tuple[list[dict[str, object]], str | None]:
        """Records whose ``filter_field`` (a single searchable field) is one of ``values``.

        Items carry ``seq`` (position in the page) and the requested fields. Raises
        :class:`UnknownFieldError` (1006) and :class:`InvalidValueError` (1003).
        """
        kind = object_kind(object_type)
        size = max(1, min(int(batch_size), MAX_BATCH_SIZE))
        after = decode_position(next_page_token) if next_page_token else 0
        with self._engine.connect() as conn:
            catalog = self._catalog(conn, kind)
            searchable = {s[0].lower(): s[0] for s in kind.searchable_fields if len(s) == 1}
            name = searchable.get(filter_field.strip().lower())
            if name is None:
                raise InvalidValueError(
                    f"Invalid filterType '{filter_field}' for {kind.display_name}",
                    code=INVALID_DATA,
                )
            filter_def = catalog.require(name)
            keys: list[object] = []
            for raw in values:
                if raw is None or str(raw).strip() == "":
                    continue
                if unstorable_reason(str(raw)) is not None:  # never stored: matches nothing
                    continue
                try:
                    keys.append(coerce_value(filter_def, raw))
                except InvalidValueError as exc:
                    raise InvalidValueError(exc.message, code=INVALID_DATA) from None
            wanted = self._wanted(catalog, kind, fields)
            if not keys:
                return [], None
            table = kind.table
            columns = [table.c.id.label("__row_id")] + [
                self._column(kind, f).label(f.rest_name) for f in wanted
            ]
            query = (
                select(*columns)
                .where(self._column(kind, filter_def).in_(keys), table.c.id > after)
                .order_by(table.c.id)
                .limit(size + 1)
            )
            rows = list(conn.execute(query).mappings())
        items: list[dict[str, object]] = []
        for seq, row in enumerate(rows[:size]):
            item: dict[str, object] = {"seq": seq}
            for f in wanted:
                value = row[f.rest_name]
                if value is not None or fields:
                    item[f.rest_name] = value
            items.append(item)
        token = encode_position(rows[size - 1]["__row_id"]) if len(rows) > size else None
        return items, token

    @staticmethod
    def _wanted(
        catalog: FieldCatalog, kind: ObjectKind, fields: Sequence[str] | None
    ) -> list[FieldDef]:
        if not fields:
            if kind.default_fields is None:
                return list(catalog.fields)
            return [catalog.require(name) for name in kind.default_fields]
        wanted: list[FieldDef] = []
        for name in fields:
            name = name.strip()
            if not name:
                continue
            found = catalog.get(name)
            if found is None:
                raise UnknownFieldError(
                    f"Field '{name}' not found", entity=kind.key, code=FIELD_NOT_FOUND
                )
            if found not in wanted:
                wanted.append(found)
        return wanted

    def upsert(
        self,
        object_type: str,
        records: Sequence[Mapping[str, object]],
        *,
        action: str = "createOrUpdate",
    ) -> list[RecordOutcome]:
        """Create and/or update records by their dedupe fields; one outcome per record, in order.

        ``action`` is ``createOrUpdate``, ``createOnly`` (an existing record → 1017) or
        ``updateOnly`` (a missing one → 1013), as in spec marketo-rest §7.1. System fields
        (``crmIsDeleted`` included) may be written: this is the CRM side's writer. Unknown field
        → 1006, bad value or missing dedupe value → 1003, the same key twice in one call → 1036.
        """
        if action not in _OBJECT_ACTIONS:
            raise InvalidValueError(
                f"Invalid action '{action}'; use one of {', '.join(sorted(_OBJECT_ACTIONS))}",
                code=INVALID_DATA,
            )
        kind = object_kind(object_type)
        now = utc_now_text()
        table = kind.table
        with self._engine.begin() as conn:
            take_write_lock(conn)
            catalog = self._catalog(conn, kind)
            parsed = [self._parse(catalog, kind, record) for record in records]
            if kind.key == "opportunityRole":
                parsed = _check_role_references(conn, parsed)
            seen: set[tuple[object, ...]] = set()
            for position, item in enumerate(parsed):
                if not isinstance(item, RecordOutcome):
                    if item[0] in seen:
                        parsed[position] = skipped(
                            DUPLICATE_IN_INPUT, "Duplicate object found in input"
                        )
                    else:
                        seen.add(item[0])
            key_columns = [table.c[name] for name in kind.dedupe_fields]
            existing: dict[tuple[object, ...], int] = {}
            existing_custom: dict[int, dict[str, object]] = {}
            has_custom = "custom" in table.c
            if seen:
                if conn.dialect.name == "postgresql":
                    # Two calls upserting one new key would both insert it (and one fail on
                    # the unique key); two updating one record would merge ``custom`` from a
                    # stale read. Calls sharing a key run one after the other instead.
                    lock_keys(conn, f"object:{kind.key}", set(seen))
                extra = [table.c.custom] if has_custom else []
                rows = conn.execute(
                    select(table.c.id, *extra, *key_columns)
                    .where(tuple_(*key_columns).in_(list(seen)))
                    .with_for_update()
                )
                for row in rows:
                    existing[tuple(row[1 + len(extra) :])] = row[0]
                    if has_custom:
                        existing_custom[row[0]] = dict(row[1] or {})
            creates: list[dict[str, object]] = []
            updates: dict[frozenset[str], list[dict[str, object]]] = {}
            outcomes: list[RecordOutcome] = []
            pending: list[int] = []
            for item in parsed:
                if isinstance(item, RecordOutcome):
                    outcomes.append(item)
                    continue
                key, values = item
                if key in existing and action == "createOnly":
                    outcomes.append(skipped(OBJECT_EXISTS, "Object already exists"))
                elif key not in existing and action == "updateOnly":
                    outcomes.append(skipped(OBJECT_NOT_FOUND, "Record not found"))
                elif key in existing:
                    row_id = existing[key]
                    given = values.get("custom")
                    if isinstance(given, dict):
                        merged = {**existing_custom.get(row_id, {}), **given}
                        values["custom"] = {k: v for k, v in merged.items() if v is not None}
                    params = {**values, "updatedAt": now, "_row_id": row_id}
                    updates.setdefault(frozenset(params), []).append(params)
                    outcomes.append(RecordOutcome("updated", existing[key]))
                else:
                    new_row = {**values, "createdAt": now, "updatedAt": now}
                    if "marketoGUID" in table.c:
                        new_row["marketoGUID"] = str(uuid.uuid4())
                    creates.append(new_row)
                    pending.append(len(outcomes))
                    outcomes.append(RecordOutcome("created", None))
            for group in updates.values():
                conn.execute(update(table).where(table.c.id == bindparam("_row_id")), group)
            if creates:
                columns = sorted({name for created in creates for name in created})
                full = [{name: created.get(name) for name in columns} for created in creates]
                for created in full:
                    if created.get("crmIsDeleted") is None:
                        created["crmIsDeleted"] = False
                ids = insert_returning_ids(conn, table, full)
                for position, new_id in zip(pending, ids, strict=True):
                    outcomes[position] = RecordOutcome("created", new_id)
                self._link_persons(conn, kind, creates, ids)
        return outcomes

    @staticmethod
    def _link_persons(
        conn: Connection, kind: ObjectKind, creates: list[dict[str, object]], ids: Sequence[int]
    ) -> None:
        """Link persons that named a new company / sales person before it arrived."""
        link = _PERSON_LINKS.get(kind.key)
        if link is None:
            return
        external, column = link
        params = [
            {"_external": created[external], "_linked_id": new_id}
            for created, new_id in zip(creates, ids, strict=True)
        ]
        conn.execute(
            update(persons)
            .where(persons.c[external] == bindparam("_external"), persons.c[column].is_(None))
            .values({column: bindparam("_linked_id")}),
            params,
        )

    @staticmethod
    def _parse(catalog: FieldCatalog, kind: ObjectKind, record: Mapping[str, object]) -> _Parsed:
        if not isinstance(record, Mapping):
            return skipped(INVALID_DATA, "Invalid data: a record must be a JSON object")
        values: dict[str, object] = {}
        custom: dict[str, object] = {}
        for name, raw in record.items():
            field = catalog.get(str(name))
            if field is None:
                return skipped(FIELD_NOT_FOUND, f"Field '{name}' not found")
            if field.rest_name in _SYSTEM:
                return skipped(INVALID_DATA, f"Field '{field.rest_name}' is read-only")
            try:
                value = coerce_value(field, raw)
            except InvalidValueError as exc:
                return skipped(INVALID_DATA, exc.message)
            if field.is_custom:
                custom[field.rest_name] = value
            else:
                values[field.rest_name] = value
        if custom:
            values["custom"] = custom
        key = tuple(values.get(name) for name in kind.dedupe_fields)
        if any(part is None or part == "" for part in key):
            return skipped(
                INVALID_DATA, f"Invalid data: {', '.join(kind.dedupe_fields)} must be given"
            )
        return key, values
