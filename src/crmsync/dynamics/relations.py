"""The org's tables and one-to-many relationships, read from the metadata API (B45).

Custom-entity discovery needs every table (names, display name, change tracking) and every
lookup between tables. Both come in one request each, never paged (spec §9):
``EntityDefinitions?$select=...`` and
``RelationshipDefinitions/Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata`` (the cast
makes ``ReferencedEntity`` / ``ReferencingEntity`` / ``ReferencingAttribute`` selectable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crmsync.dynamics.metadata import ENTITY_SELECT, label_text
from crmsync.dynamics.transport import Transport

RELATIONSHIPS_URL = (
    "RelationshipDefinitions/Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata"
    "?$select=SchemaName,ReferencedEntity,ReferencingEntity,ReferencingAttribute"
)
ENTITIES_URL = f"EntityDefinitions?$select={ENTITY_SELECT}"


@dataclass(frozen=True, slots=True)
class TableHeader:
    """One table as the metadata API lists it."""

    logical_name: str
    schema_name: str
    entity_set: str
    primary_id: str
    display_name: str
    is_custom: bool
    change_tracking: bool


@dataclass(frozen=True, slots=True)
class Lookup:
    """A one-to-many relationship seen from its many side: ``referencing.attribute`` holds
    the id of a ``referenced`` row."""

    referenced: str
    referencing: str
    attribute: str


def read_tables(transport: Transport) -> list[TableHeader]:
    """Every table of the org (one metadata request)."""
    document = transport.get_json(ENTITIES_URL, kind="metadata")
    return [_table(row) for row in _rows(document) if row.get("LogicalName")]


def read_lookups(transport: Transport) -> list[Lookup]:
    """Every one-to-many relationship of the org (one metadata request)."""
    document = transport.get_json(RELATIONSHIPS_URL, kind="metadata")
    return [
        Lookup(
            str(row["ReferencedEntity"]),
            str(row["ReferencingEntity"]),
            str(row["ReferencingAttribute"]),
        )
        for row in _rows(document)
        if row.get("ReferencedEntity")
        and row.get("ReferencingEntity")
        and row.get("ReferencingAttribute")
    ]


def _table(row: Mapping[str, Any]) -> TableHeader:
    logical = str(row["LogicalName"])
    return TableHeader(
        logical_name=logical,
        schema_name=str(row.get("SchemaName") or logical),
        entity_set=str(row.get("EntitySetName") or ""),
        primary_id=str(row.get("PrimaryIdAttribute") or f"{logical}id"),
        display_name=label_text(row.get("DisplayName")) or logical,
        is_custom=bool(row.get("IsCustomEntity")),
        change_tracking=bool(row.get("ChangeTrackingEnabled")),
    )


def _rows(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    value = document.get("value")
    return [row for row in value if isinstance(row, Mapping)] if isinstance(value, list) else []
