"""Custom entities read from Dynamics, as Marketo custom objects (B45; Marketo REST
``customobjects``): list, describe and query by their dedupe or link fields.

They are owned by Dynamics and read-only here. Each is named by its Dynamics logical name
(no length limit of crmsync's own). Fields: ``marketoGUID`` (the Dynamics id, the id field),
the Dynamics primary id column (the dedupe field, the same value), ``leadId`` or ``companyId``
(the person or company the record is linked to), the selected Dynamics columns,
``deletedInDynamics`` (a record deleted in Dynamics stays, flagged) and the two timestamps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.elements import ColumnElement

from crmsync.errors import InvalidValueError, RecordNotFoundError, UnknownFieldError
from crmsync.marketing.outcomes import FIELD_NOT_FOUND, INVALID_DATA, OBJECT_NOT_FOUND
from crmsync.marketing.persons import MAX_BATCH_SIZE, decode_position, encode_position
from crmsync.store.tables import custom_entities, custom_object_rows

ID_FIELD = "marketoGUID"
DELETED_FIELD = "deletedInDynamics"


@dataclass(frozen=True, slots=True)
class CustomObjectType:
    """One custom entity as the REST API describes it."""

    name: str
    display_name: str
    primary_id: str
    link_field: str  # leadId | companyId
    first_lookup: str  # the lookup that starts its path (a searchable link field)
    fields: tuple[Mapping[str, str], ...]
    created_at: datetime
    updated_at: datetime
    enabled: bool

    @property
    def searchable(self) -> tuple[str, ...]:
        """The fields a query may filter on."""
        return (self.primary_id, ID_FIELD, self.link_field, self.first_lookup)

    def field_names(self) -> tuple[str, ...]:
        """Every field of a record, in describe order."""
        own = [f["name"] for f in self.fields]
        return tuple(
            dict.fromkeys(
                [
                    ID_FIELD,
                    self.primary_id,
                    self.link_field,
                    *own,
                    DELETED_FIELD,
                    "createdAt",
                    "updatedAt",
                ]
            )
        )

    def summary(self) -> dict[str, Any]:
        """The object as ``customobjects.json`` lists it."""
        root = "Company" if self.link_field == "companyId" else "Lead"
        return {
            "name": self.name,
            "displayName": self.display_name,
            "description": f"Dynamics table {self.name}, read one way from Dynamics",
            "createdAt": _stamp(self.created_at),
            "updatedAt": _stamp(self.updated_at),
            "idField": ID_FIELD,
            "dedupeFields": [self.primary_id],
            "searchableFields": [[name] for name in self.searchable],
            "relationships": [
                {
                    "field": self.link_field,
                    "type": "parent",
                    "relatedTo": {"name": root, "field": "id"},
                }
            ],
        }

    def describe(self) -> dict[str, Any]:
        """The object as ``customobjects/{name}/describe.json`` shows it: every field is
        read-only and managed by the CRM."""
        kinds = {f["name"]: f for f in self.fields}
        fixed = {
            ID_FIELD: ("Marketo GUID (Dynamics id)", "string"),
            self.primary_id: ("Dynamics id", "string"),
            self.link_field: ("Lead" if self.link_field == "leadId" else "Company", "integer"),
            DELETED_FIELD: ("Deleted in Dynamics", "boolean"),
            "createdAt": ("Created At", "datetime"),
            "updatedAt": ("Updated At", "datetime"),
        }
        described = []
        for name in self.field_names():
            own = kinds.get(name)
            display, data_type = (
                (own["displayName"], own["dataType"]) if own and name not in fixed else fixed[name]
            )
            described.append(
                {
                    "name": name,
                    "displayName": display,
                    "dataType": data_type,
                    "updateable": False,
                    "crmManaged": True,
                }
            )
        return {**self.summary(), "fields": described}


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def object_types(conn: Connection, names: Sequence[str] = ()) -> list[CustomObjectType]:
    """Every custom entity that was enabled (disabled ones keep their records), by name;
    only those in ``names`` when given."""
    query = select(custom_entities).order_by(custom_entities.c.name)
    if names:
        query = query.where(custom_entities.c.name.in_([n.strip().lower() for n in names]))
    return [_type(row._mapping) for row in conn.execute(query)]


def object_type(conn: Connection, name: str) -> CustomObjectType:
    """The custom object ``name``; 1013 when there is none."""
    found = object_types(conn, [name])
    if not found:
        raise RecordNotFoundError(f"Object not found: {name}", code=OBJECT_NOT_FOUND)
    return found[0]


def _type(row: RowMapping) -> CustomObjectType:
    path = row["path"]
    return CustomObjectType(
        name=str(row["name"]),
        display_name=str(row["display_name"]),
        primary_id=str(row["primary_id"]),
        link_field="companyId" if path[-1]["target"] == "account" else "leadId",
        first_lookup=str(path[0]["attribute"]),
        fields=tuple(dict(f) for f in row["fields"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        enabled=bool(row["enabled"]),
    )


def query_records(
    conn: Connection,
    kind: CustomObjectType,
    filter_field: str,
    values: Sequence[object],
    fields: Sequence[str] | None = None,
    batch_size: int = MAX_BATCH_SIZE,
    next_page_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Records whose ``filter_field`` (a searchable field) is one of ``values``, in id order,
    ``batch_size`` at a time; the token to the next page when there is one."""
    searchable = {name.lower(): name for name in kind.searchable}
    name = searchable.get(filter_field.strip().lower())
    if name is None:
        raise InvalidValueError(
            f"Invalid filterType '{filter_field}' for {kind.name}", code=INVALID_DATA
        )
    shown = _shown(kind, fields)
    keys = [str(v).strip() for v in values if v is not None and str(v).strip()]
    if not keys:
        return [], None
    rows = custom_object_rows.c
    column: ColumnElement[Any]
    if name in (ID_FIELD, kind.primary_id):
        column, keys = rows.crm_id, [k.lower() for k in keys]
    elif name == kind.link_field:
        numbers = [int(k) for k in keys if k.isdigit()]
        if not numbers:
            return [], None
        column = rows.company_id if name == "companyId" else rows.person_id
        keys = numbers  # type: ignore[assignment]
    else:
        column = cast(rows["values"][name].as_string(), String)
        keys = [k.lower() for k in keys]
    size = max(1, min(int(batch_size), MAX_BATCH_SIZE))
    after = decode_position(next_page_token) if next_page_token else 0
    found = (
        conn.execute(
            select(custom_object_rows)
            .where(rows.entity == kind.name, column.in_(keys), rows.id > after)
            .order_by(rows.id)
            .limit(size + 1)
        )
        .mappings()
        .all()
    )
    more = len(found) > size
    page = found[:size]
    items = [{"seq": seq, **_record(kind, row, shown)} for seq, row in enumerate(page)]
    token = encode_position(int(page[-1]["id"])) if more else None
    return items, token


def _shown(kind: CustomObjectType, fields: Sequence[str] | None) -> tuple[str, ...]:
    every = kind.field_names()
    if not fields:
        return every
    known = {name.lower(): name for name in every}
    unknown = [f for f in fields if f.strip().lower() not in known]
    if unknown:
        raise UnknownFieldError(f"Field '{unknown[0]}' not found", code=FIELD_NOT_FOUND)
    return tuple(dict.fromkeys([ID_FIELD, *(known[f.strip().lower()] for f in fields)]))


def _record(kind: CustomObjectType, row: RowMapping, shown: Sequence[str]) -> dict[str, Any]:
    values: Mapping[str, Any] = row["values"] or {}
    link = row["company_id"] if kind.link_field == "companyId" else row["person_id"]
    fixed: dict[str, Any] = {
        ID_FIELD: row["crm_id"],
        kind.primary_id: row["crm_id"],
        kind.link_field: link,
        DELETED_FIELD: bool(row["crm_is_deleted"]),
        "createdAt": _stamp(row["created_at"]),
        "updatedAt": _stamp(row["updated_at"]),
    }
    record: dict[str, Any] = {}
    for name in shown:
        value = fixed[name] if name in fixed else values.get(name)
        if value is not None:
            record[name] = value
    return record
