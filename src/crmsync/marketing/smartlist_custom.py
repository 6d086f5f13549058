"""Smart-list filters on custom entities read from Dynamics (B45): "has a <entity>" and "has a
<entity> whose <field> ...", compiled to ``EXISTS`` over ``custom_object_rows``.

``custom:<entity>`` takes ``is_not_empty`` (the person has at least one record of it) or
``is_empty`` (none). ``custom:<entity>.<field>`` takes any value operator of
:mod:`~crmsync.marketing.smartlists` and means "has at least one record whose field matches"
(``is_not``: one whose field is not one of the values, or is empty). Records flagged deleted in
Dynamics count for nothing. An entity linked to accounts matches the persons of the company.
Fields are those selected when the entity was enabled, with the type Dynamics gave them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, not_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from crmsync.errors import InvalidValueError
from crmsync.marketing.fields import FieldDef
from crmsync.store.tables import custom_entities, custom_object_rows, persons

CUSTOM_PREFIX = "custom:"
_NUMBERS = frozenset({"integer", "float", "currency"})

Compare = Callable[[int, Any, FieldDef, ColumnElement[Any]], ColumnElement[bool]]
"""The smart-list compiler's comparison of one column: (filter number, filter, field, column)."""


@dataclass(frozen=True, slots=True)
class _Entity:
    name: str
    by_company: bool
    fields: Mapping[str, FieldDef]


@dataclass(frozen=True, slots=True)
class CustomEntityFilters:
    """The custom entities a smart list can filter on, loaded once per compilation."""

    entities: Mapping[str, _Entity]

    @classmethod
    def load(cls, conn: Connection) -> CustomEntityFilters:
        """Every custom entity that was ever enabled (its records stay when disabled)."""
        found: dict[str, _Entity] = {}
        for name, path, fields in conn.execute(
            select(custom_entities.c.name, custom_entities.c.path, custom_entities.c.fields)
        ):
            defs = {
                str(f["name"]).lower(): FieldDef(
                    str(name),
                    str(f["name"]),
                    str(f.get("displayName") or f["name"]),
                    str(f.get("dataType") or "string"),
                    None,
                    True,
                    True,
                )
                for f in fields
            }
            found[str(name)] = _Entity(str(name), path[-1]["target"] == "account", defs)
        return cls(found)

    def condition(self, number: int, item: Any, compare: Compare) -> ColumnElement[bool]:
        """The filter ``item`` (field ``custom:...``) as a two-valued condition on persons."""
        entity_name, _, field_name = item.field[len(CUSTOM_PREFIX) :].partition(".")
        entity = self.entities.get(entity_name.strip().lower())
        if entity is None:
            raise InvalidValueError(f"filter {number}: unknown custom entity '{entity_name[:100]}'")
        rows = custom_object_rows.c
        owner = (
            rows.company_id == persons.c.company_id
            if entity.by_company
            else rows.person_id == persons.c.id
        )
        alive = and_(rows.entity == entity.name, owner, rows.crm_is_deleted.is_(False))
        if not field_name:
            if item.operator not in ("is_empty", "is_not_empty"):
                raise InvalidValueError(
                    f"filter {number}: '{item.field[:100]}' takes is_not_empty (has one) or "
                    "is_empty (has none); name a field to compare values"
                )
            exists = select(rows.id).where(alive).exists()
            return exists if item.operator == "is_not_empty" else not_(exists)
        field = entity.fields.get(field_name.strip().lower())
        if field is None:
            raise InvalidValueError(
                f"filter {number}: {entity.name} has no field '{field_name[:100]}'"
            )
        element = rows["values"][field.rest_name]
        column: ColumnElement[Any]
        if field.data_type in _NUMBERS:
            column = element.as_float()
        elif field.data_type == "boolean":
            column = element.as_boolean()
        else:
            column = element.as_string()
        matched = compare(number, item, field, column)
        if item.operator not in ("is_empty", "is_not_empty", "is_not"):
            matched = and_(column.is_not(None), matched)
        return select(rows.id).where(alive, matched).exists()
