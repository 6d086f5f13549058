"""The admin's choices for selected columns, checked and recorded (B9, B46).

A selected Dynamics column may be mapped onto an **existing marketing field**
(``websiteurl=website``) instead of getting a field of its own, and may carry a **per-field sync
rule** (:class:`~crmsync.sync.policy.FieldRule`). :func:`parse_column` reads the ``COL[=FIELD]``
form, :func:`check_existing_field` refuses a marketing field whose type cannot hold the column's
values (with a sentence saying why), :func:`check_rule` refuses a rule that would send marketing
values where Dynamics takes none, and :func:`audit_changes` records every change of selection,
mapping or rule in the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from crmsync.dynamics.types import AttributeSchema, AttributeType
from crmsync.errors import InvalidValueError
from crmsync.marketing.fields import FieldDef
from crmsync.store.audit import record_audit
from crmsync.store.tables import now_utc
from crmsync.sync.mapping import ColumnChoice, FieldMapping

COLUMN_DATA_TYPES = {
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

_TEXT = frozenset({"string", "text", "email", "phone", "url", "reference"})
COMPATIBLE_FIELD_TYPES: Mapping[str, frozenset[str]] = {
    "string": _TEXT,
    "text": frozenset({"string", "text"}),
    "integer": frozenset({"integer", "score", "float", "currency", "percent"}),
    "float": frozenset({"float", "currency", "percent"}),
    "currency": frozenset({"currency", "float"}),
    "boolean": frozenset({"boolean"}),
    "datetime": frozenset({"datetime"}),
}
"""Per column data type, the marketing field types that hold its values without loss."""


def column_data_type(attr: AttributeSchema) -> str:
    """The marketing data type a Dynamics column's values have."""
    return COLUMN_DATA_TYPES.get(attr.type, "string")


def parse_column(text: str) -> tuple[str, str | None]:
    """Read ``COL`` or ``COL=FIELD``: the column's logical name (lower case) and the existing
    marketing field it is mapped onto (``None``: its own field)."""
    column, sep, field = text.partition("=")
    name = column.strip().lower()
    if not name or (sep and not field.strip()):
        raise InvalidValueError(
            f"{text!r} is not a column: write COLUMN, or COLUMN=FIELD to map the column onto "
            "an existing marketing field"
        )
    return name, field.strip() or None


def check_existing_field(
    entity: str, attr: AttributeSchema, field: FieldDef | None, wanted: str
) -> str:
    """The REST name of the existing marketing field ``wanted`` that column ``attr`` is mapped
    onto; raises :class:`~crmsync.errors.InvalidValueError` when there is no such field, it is
    read-only, or its type or length cannot hold the column's values."""
    column = attr.logical_name
    if field is None:
        raise InvalidValueError(
            f"{entity}.{column}: there is no marketing field {wanted!r} to map it onto; list "
            f"the fields with 'crmsync fields list', or select {column} without =FIELD to give "
            "it a field of its own",
            entity=entity,
        )
    if field.read_only:
        raise InvalidValueError(
            f"{entity}.{column}: the marketing field {field.rest_name} is read-only and cannot "
            "take synced values",
            entity=entity,
        )
    data_type = column_data_type(attr)
    if field.data_type not in COMPATIBLE_FIELD_TYPES.get(data_type, frozenset({data_type})):
        raise InvalidValueError(
            f"{entity}.{column} holds {attr.type.value} values ({data_type}); the marketing "
            f"field {field.rest_name} is of type {field.data_type}, which cannot hold them: "
            "choose a field of a compatible type",
            entity=entity,
        )
    if field.data_type in _TEXT and field.length and (attr.max_length or 0) > field.length:
        raise InvalidValueError(
            f"{entity}.{column} holds up to {attr.max_length} characters; the marketing field "
            f"{field.rest_name} only {field.length}: choose a longer field",
            entity=entity,
        )
    return field.rest_name


def check_rule(entity: str, mapped: FieldMapping) -> None:
    """Refuse a rule that sends marketing values for a field Dynamics takes none of (a
    one-way table, or a column the sync user may not update): only Dynamics can own it."""
    if mapped.rule.sync_rule.needs_two_way_field and not mapped.two_way:
        raise InvalidValueError(
            f"{entity}.{mapped.attribute} syncs from Dynamics only (a one-way table or a column "
            f"crmsync may not update), so it cannot be {mapped.rule.sync_rule.value}: use "
            "entity-default, dynamics-wins or dynamics-to-marketing",
            entity=entity,
        )


@dataclass(frozen=True, slots=True)
class SelectionChange:
    """One column's state before and after a save (``None``: not selected)."""

    attribute: str
    before: ColumnChoice | None
    after: ColumnChoice | None


def audit_changes(
    conn: Connection, entity: str, changes: list[SelectionChange], actor: str
) -> None:
    """Record each selection, deselection, mapping change and rule change in the audit trail."""
    stamp = now_utc()
    for change in changes:
        before, after = change.before, change.after
        details: dict[str, object] = {"entity": entity, "attribute": change.attribute}
        if after is not None:
            details |= {"field": after.field, "rule": after.rule.name}
        if before is None and after is not None:
            record_audit(conn, actor, "field_selected", details, when=stamp)
        elif after is None and before is not None:
            details |= {"field": before.field, "rule": before.rule.name}
            record_audit(conn, actor, "field_deselected", details, when=stamp)
        elif before is not None and after is not None:
            if before.field != after.field:
                moved = details | {"previousField": before.field}
                record_audit(conn, actor, "field_mapped", moved, when=stamp)
            if before.rule != after.rule:
                ruled = details | {"previousRule": before.rule.name}
                record_audit(conn, actor, "field_rule_changed", ruled, when=stamp)
