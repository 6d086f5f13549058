"""Rendering rows as Web API JSON (spec §2d, §2e, §9).

Every row carries ``@odata.etag`` (``W/"<versionnumber>"``) and its primary key; lookups appear
as ``_x_value``; booleans as JSON booleans; date-only columns as ``YYYY-MM-DD``; formatted values
and lookup annotations only when ``Prefer: odata.include-annotations`` asks; secured columns
read back as null for users without read access.
"""

# SQL identifiers here come from validated metadata (SAFE_NAME) and are quoted by q();
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from crmsync.emulator.context import RequestContext
from crmsync.emulator.metadata import AttributeDef, EntityDef
from crmsync.emulator.storage import q, target_column

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
LOOKUP_NAME = "@Microsoft.Dynamics.CRM.lookuplogicalname"
NAV_NAME = "@Microsoft.Dynamics.CRM.associatednavigationproperty"


def format_value(attribute: AttributeDef, value: Any) -> str | None:
    """The FormattedValue annotation Dataverse sends for a non-lookup column (spec §2e)."""
    kind = attribute.attribute_type
    if value is None or kind in ("String", "Memo", "Uniqueidentifier", "EntityName", "BigInt"):
        return None
    if kind in ("Picklist", "State", "Status"):
        option = attribute.option(int(value))
        return option.label if option else None
    if kind == "Boolean":
        return attribute.true_label if value else attribute.false_label
    if kind == "Integer":
        return f"{int(value):,}"
    if kind == "Money":
        return f"${float(value):,.2f}"
    if kind in ("Decimal", "Double"):
        return f"{float(value):,.2f}"
    if kind == "DateTime":
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        day = f"{moment.month}/{moment.day}/{moment.year}"
        if attribute.format_name == "DateOnly":
            return day
        hour = moment.hour % 12 or 12
        return f"{day} {hour}:{moment.minute:02d} {'PM' if moment.hour >= 12 else 'AM'}"
    return None


_Step = tuple[
    str,
    int,
    int | None,
    bool,
    bool,
    "Callable[[Any], Any] | None",
    "Callable[[Any], str | None] | None",
    AttributeDef,
]


def _date_only(value: Any) -> Any:
    return str(value)[:10]


def _conversion(attribute: AttributeDef) -> Callable[[Any], Any] | None:
    """Stored value -> wire value: booleans from 0/1, DateOnly columns as ``YYYY-MM-DD``."""
    if attribute.attribute_type == "Boolean":
        return bool
    if attribute.attribute_type == "DateTime" and attribute.format_name == "DateOnly":
        # Date-only columns are Edm.Date on the wire.
        return _date_only
    return None


def _formatter(attribute: AttributeDef) -> Callable[[Any], str | None] | None:
    """A fast FormattedValue function for one column (None when it has no formatted value)."""
    kind = attribute.attribute_type
    if kind in ("String", "Memo", "Uniqueidentifier", "EntityName", "BigInt"):
        return None
    if kind in ("Picklist", "State", "Status"):
        labels = {option.value: option.label for option in attribute.options}
        return labels.get
    if kind == "Boolean":
        true_label, false_label = attribute.true_label, attribute.false_label
        return lambda value: true_label if value else false_label
    return lambda value: format_value(attribute, value)


class Renderer:
    """Turns SQL rows of one table into Web API JSON objects for one request."""

    def __init__(
        self, ctx: RequestContext, entity: EntityDef, attributes: Sequence[AttributeDef]
    ) -> None:
        self.ctx = ctx
        self.entity = entity
        self.attributes = list(attributes)
        currency = entity.attributes.get("transactioncurrencyid")
        if (
            currency is not None
            and currency not in self.attributes
            and any(a.attribute_type == "Money" for a in self.attributes)
        ):
            # Documented: selecting a money column also returns _transactioncurrencyid_value.
            self.attributes.append(currency)
        self.columns = [entity.primary_id, "versionnumber"]
        self.formatted = ctx.prefs.formatted
        self.want_logical, self.want_nav = ctx.prefs.lookup_details
        # One precomputed step per column: (wire name, column index, target column index,
        # readable, is lookup, wire conversion or None, formatter or None, attribute).
        self.plan: list[_Step] = []
        for attribute in self.attributes:
            index = len(self.columns)
            self.columns.append(attribute.logical_name)
            target_index = None
            if attribute.is_lookup and attribute.is_polymorphic:
                target_index = len(self.columns)
                self.columns.append(target_column(attribute))
            readable = ctx.can_read_column(entity.logical_name, attribute.logical_name)
            formatter = None
            if self.formatted and not attribute.is_lookup:
                formatter = _formatter(attribute)
            self.plan.append(
                (
                    attribute.wire_name,
                    index,
                    target_index,
                    readable,
                    attribute.is_lookup,
                    _conversion(attribute),
                    formatter,
                    attribute,
                )
            )

    def select_sql(self) -> str:
        """The column list of the SELECT."""
        return ", ".join(q(c) for c in self.columns)

    def render(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """JSON objects for ``rows`` (selected in :meth:`select_sql` order)."""
        records: list[dict[str, Any]] = []
        pending_names: list[tuple[dict[str, Any], str, str, str]] = []
        primary_id = self.entity.primary_id
        formatted, want_nav, want_logical = self.formatted, self.want_nav, self.want_logical
        for row in rows:
            record: dict[str, Any] = {"@odata.etag": f'W/"{row[1]}"'}
            for (
                key,
                index,
                target_index,
                readable,
                lookup,
                convert,
                formatter,
                attribute,
            ) in self.plan:
                value = row[index] if readable else None
                if value is None:
                    record[key] = None
                    continue
                if lookup:
                    target = row[target_index] if target_index is not None else None
                    target = target or attribute.targets[0]
                    if formatted:
                        pending_names.append((record, key + FORMATTED, target, value))
                    if want_nav:
                        record[key + NAV_NAME] = attribute.nav_for_target(target)
                    if want_logical:
                        record[key + LOOKUP_NAME] = target
                elif convert is not None:
                    value = convert(value)
                if formatter is not None:
                    text = formatter(value)
                    if text is not None:
                        record[key + FORMATTED] = text
                record[key] = value
            record[primary_id] = row[0]
            records.append(record)
        if pending_names:
            self._fill_names(pending_names)
        return records

    def _fill_names(self, pending: list[tuple[dict[str, Any], str, str, str]]) -> None:
        wanted: dict[str, set[str]] = {}
        for _, _, target, record_id in pending:
            wanted.setdefault(target, set()).add(record_id)
        names: dict[tuple[str, str], Any] = {}
        for target, ids in wanted.items():
            definition = self.ctx.catalog.get(target)
            if definition is None or not definition.primary_name:
                continue
            id_list = sorted(ids)
            for start in range(0, len(id_list), 500):
                chunk = id_list[start : start + 500]
                cursor = self.ctx.storage.execute(
                    f"SELECT {q(definition.primary_id)}, {q(definition.primary_name)} "
                    f"FROM {q(definition.table)} WHERE {q(definition.primary_id)} IN "
                    f"({', '.join('?' for _ in chunk)})",
                    chunk,
                )
                for record_id, name in cursor:
                    names[(target, record_id)] = name
        for record, key, target, record_id in pending:
            name = names.get((target, record_id))
            if name is not None:
                record[key] = name
