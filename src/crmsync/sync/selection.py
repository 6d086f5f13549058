"""The admin's field selection: what Dynamics offers, and saving a choice (B8–B14).

:func:`columns_of` reads a table's schema from Dynamics and tells, column by column, whether
it can sync, whether it is selected (or *missing*, B14) and the marketing field it maps to.

:func:`save_selection` stores the selected columns of one table, always after reading the
schema again (B13). A column Dynamics does not have is refused: crmsync never creates a field
in Dynamics (B10); nor can a column the sync user may not read be selected (B8). A column
selected after the table's initial sync is marked ``quick_sync``: the next cycle reads the
table in full, fills the new fields from Dynamics and marks them ``selected`` (B12). Saving
drops columns marked *missing* (B14). A selected custom column gets its marketing field in
the field catalog, so the REST API can read and write it at once (B11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import AttributeSchema, AttributeType, EntitySchema
from crmsync.errors import InvalidValueError
from crmsync.marketing.fields import add_local_field, load_catalog
from crmsync.store.tables import field_selection, notifications, now_utc
from crmsync.sync.cursors import read_cursor
from crmsync.sync.mapping import (
    EntityMapping,
    default_mapping,
    mapping_for_selection,
    readable,
)

CATALOG_OBJECT = {"lead": "person", "contact": "person", "account": "company"}
"""The marketing object whose field catalog holds each table's fields (others: none yet)."""

_DATA_TYPES = {
    AttributeType.MEMO: "text",
    AttributeType.INTEGER: "integer",
    AttributeType.BIGINT: "integer",
    AttributeType.DECIMAL: "float",
    AttributeType.DOUBLE: "float",
    AttributeType.MONEY: "currency",
    AttributeType.BOOLEAN: "boolean",
    AttributeType.DATETIME: "datetime",
}
"""Marketing data types of Dynamics column types; any other column is a string (option
labels, lookup ids, text)."""


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """One Dynamics column as the selection sees it."""

    attribute: str
    display_name: str
    type: str
    max_length: int | None
    required_level: str
    can_sync: bool  # readable by the sync user, of a type crmsync converts
    status: str | None  # selected | quick_sync | missing | None (not selected)
    marketing_field: str | None
    two_way: bool


@dataclass(frozen=True, slots=True)
class SavedSelection:
    """What saving changed: columns added (and whether they wait for a quick sync), removed."""

    entity: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    quick_sync: bool
    mapping: EntityMapping


def stored_selection(conn: Connection, entity: str) -> dict[str, str]:
    """The stored selection of ``entity``: column → status, in selection order."""
    rows = conn.execute(
        select(field_selection.c.attribute, field_selection.c.status)
        .where(field_selection.c.entity == entity)
        .order_by(field_selection.c.selected_at)
    ).all()
    return {str(attribute): str(status) for attribute, status in rows}


def columns_of(conn: Connection, client: DynamicsClient, entity: str) -> list[ColumnInfo]:
    """Every column of ``entity`` in Dynamics now (a fresh schema read, B8), with its selection
    state; selected columns Dynamics no longer has are listed as *missing* (B14)."""
    schema = client.entity_schema(entity)
    stored = stored_selection(conn, entity)
    current = _current(schema, stored)
    mapping = mapping_for_selection(schema, current)
    fields = {m.attribute: m for m in mapping.fields}
    statuses = stored or dict.fromkeys(current, "selected")
    result = [
        ColumnInfo(
            attribute=name,
            display_name=attr.display_name,
            type=attr.type.value,
            max_length=attr.max_length,
            required_level=attr.required_level,
            can_sync=readable(attr),
            status=statuses.get(name),
            marketing_field=fields[name].field if name in fields else None,
            two_way=fields[name].two_way if name in fields else False,
        )
        for name, attr in sorted(schema.attributes.items())
    ]
    result += [
        ColumnInfo(name, "", "", None, "None", False, "missing", None, False)
        for name in stored
        if name not in schema.attributes
    ]
    return result


def save_selection(
    conn: Connection,
    client: DynamicsClient,
    entity: str,
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
) -> SavedSelection:
    """Save the selection of ``entity``: the one in effect, plus ``add``, minus ``remove``,
    after reading the schema again (B13). Saving without changes clears missing columns
    (B14).

    Raises :class:`~crmsync.errors.InvalidValueError` naming every added column Dynamics does
    not have (B10) or the sync user cannot read (B8); nothing is stored then.
    """
    schema = client.entity_schema(entity)
    adding = _names(add)
    unknown = [c for c in adding if c not in schema.attributes]
    if unknown:
        raise InvalidValueError(
            f"{entity} has no column {', '.join(unknown)} in Dynamics; crmsync never creates "
            "fields in Dynamics: create the column there first, then select it",
            entity=entity,
        )
    unreadable = [c for c in adding if not readable(schema.attributes[c])]
    if unreadable:
        raise InvalidValueError(
            f"{entity}: {', '.join(unreadable)} cannot be synced (secured from the sync user, "
            "not readable, or of a type crmsync does not convert)",
            entity=entity,
        )
    stored = stored_selection(conn, entity)
    before = [c for c, status in stored.items() if status != "missing"] or _current(schema, {})
    dropping = set(_names(remove))
    # columns deleted in Dynamics since the last save go too (B14)
    kept = [c for c in before if c in schema.attributes and c not in dropping]
    wanted = [*kept, *(c for c in adding if c not in kept and c not in dropping)]
    mapping = mapping_for_selection(schema, wanted)  # refuses two columns on one field
    added = [c for c in wanted if c not in before]
    removed = [c for c in before if c not in wanted]
    cursor = read_cursor(conn, entity)
    live = cursor is not None and cursor.initial_done
    stamp = now_utc()
    conn.execute(delete(field_selection).where(field_selection.c.entity == entity))
    conn.execute(
        insert(field_selection),
        [
            {
                "entity": entity,
                "attribute": column,
                "marketing_field": _field_of(mapping, column),
                "status": "quick_sync"
                if live and (column in added or stored.get(column) == "quick_sync")
                else "selected",
                "selected_at": stamp + timedelta(microseconds=n),  # keeps the order
                "updated_at": stamp,
            }
            for n, column in enumerate(wanted)
        ],
    )
    _register_fields(conn, schema, mapping, added)
    # B14: saving clears the missing state, and with it its notifications
    conn.execute(
        update(notifications)
        .where(
            notifications.c.kind == "field_missing",
            notifications.c.dedupe_key.like(f"field_missing:{entity}:%"),
            notifications.c.read_at.is_(None),
        )
        .values(read_at=stamp)
    )
    return SavedSelection(entity, tuple(added), tuple(removed), live and bool(added), mapping)


def _names(columns: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(c.strip().lower() for c in columns if c.strip()))


def _current(schema: EntitySchema, stored: dict[str, str]) -> list[str]:
    """The columns in effect: the stored selection (missing ones included, to show them), or
    the default mapping's when nothing was ever saved."""
    if stored:
        return [c for c in stored if c in schema.attributes]
    return list(default_mapping(schema).field_attributes)


def _field_of(mapping: EntityMapping, column: str) -> str | None:
    return next((m.field for m in mapping.fields if m.attribute == column), None)


def _register_fields(
    conn: Connection, schema: EntitySchema, mapping: EntityMapping, added: Sequence[str]
) -> None:
    """B11: give each newly selected column without a marketing field one in the catalog."""
    object_type = CATALOG_OBJECT.get(schema.logical_name)
    if object_type is None:
        return
    catalog = load_catalog(conn, object_type)
    for field_mapping in mapping.fields:
        if field_mapping.attribute not in added or catalog.get(field_mapping.field) is not None:
            continue
        attr = schema.attributes[field_mapping.attribute]
        data_type = _DATA_TYPES.get(attr.type, "string")
        length = (attr.max_length or 255) if data_type == "string" else None
        add_local_field(
            conn,
            object_type,
            field_mapping.field,
            _display(attr),
            data_type,
            length,
            origin="crm",
        )


def _display(attr: AttributeSchema) -> str:
    return attr.display_name.strip() or attr.logical_name
