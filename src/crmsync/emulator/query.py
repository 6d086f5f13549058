"""Compile OData query options to SQL for one table, and the opaque paging cookie.

Paging is keyset paging: rows are ordered by the requested ``$orderby`` columns and then the
primary key, and the ``$skiptoken`` carries the last row's ordering values. A page therefore
starts strictly after the previous one, so concurrent inserts, updates and deletes never make
a row repeat or go missing when the order is by primary key (the default), spec §3.
"""

# SQL identifiers here come from validated metadata (SAFE_NAME) and are quoted by q();
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from crmsync.dataverse_codes import ODATA_URI_ERROR
from crmsync.emulator.errors import bad_request, no_property
from crmsync.emulator.jsontext import loads_strict
from crmsync.emulator.metadata import (
    NUMBER_TYPES,
    STRING_TYPES,
    AttributeDef,
    Catalog,
    EntityDef,
    edm_type,
)
from crmsync.emulator.odata import (
    Comparison,
    FilterNode,
    InFunction,
    Literal,
    Logical,
    Not,
    Property,
    StringFunction,
)
from crmsync.emulator.storage import iso, q, target_column

_SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_LITERAL_EDM = {
    "string": "Edm.String",
    "number": "Edm.Int32",
    "guid": "Edm.Guid",
    "boolean": "Edm.Boolean",
    "datetime": "Edm.DateTimeOffset",
    "enum": "Edm.String",
}


def unknown_property(entity: EntityDef, name: str) -> Exception:
    """The ODataLib message for a property the type does not have."""
    return no_property(name, entity.logical_name)


def resolve_property(entity: EntityDef, path: str) -> AttributeDef:
    """A property in a URL: ``x``, ``_x_value`` or ``nav/primarykey`` of a lookup."""
    if "/" in path:
        nav, _, key = path.partition("/")
        found = entity.navigation(nav)
        if found is not None and key.endswith("id"):
            return found[0]
        raise unknown_property(entity, path)
    attribute = entity.attribute_by_wire_name(path)
    if attribute is None or not attribute.valid_for_read:
        raise unknown_property(entity, path)
    return attribute


def _incompatible(attribute: AttributeDef, literal: Literal, op: str) -> Exception:
    left = edm_type(attribute.attribute_type)
    right = _LITERAL_EDM.get(literal.kind, "Edm.String")
    kinds = {
        "eq": "Equal",
        "ne": "NotEqual",
        "gt": "GreaterThan",
        "ge": "GreaterThanOrEqual",
        "lt": "LessThan",
        "le": "LessThanOrEqual",
    }
    return bad_request(
        ODATA_URI_ERROR,
        "A binary operator with incompatible types was detected. Found operand types "
        f"'{left}' and '{right}' for operator kind '{kinds.get(op, op)}'.",
    )


def literal_to_storage(attribute: AttributeDef, literal: Literal, op: str = "eq") -> Any:
    """Convert a filter literal to the value stored in the column, checking the types."""
    kind, value = literal.kind, literal.value
    kind_of = attribute.attribute_type
    if kind_of in STRING_TYPES or kind_of == "EntityName":
        if kind not in ("string", "enum"):
            raise _incompatible(attribute, literal, op)
        return value
    if attribute.is_lookup or kind_of == "Uniqueidentifier":
        if kind == "string":  # Dataverse accepts quoted GUIDs too
            kind, value = "guid", str(value).lower()
        if kind != "guid":
            raise _incompatible(attribute, literal, op)
        return value
    if kind_of == "Boolean":
        if kind == "boolean":
            return int(value)
        if kind == "number" and value in (0, 1):
            return int(value)
        raise _incompatible(attribute, literal, op)
    if kind_of in NUMBER_TYPES or kind_of in ("Picklist", "State", "Status"):
        if kind != "number":
            raise _incompatible(attribute, literal, op)
        return value
    if kind_of == "DateTime":
        if kind != "datetime":
            raise _incompatible(attribute, literal, op)
        return normalise_datetime(str(value))
    return value


def normalise_datetime(text: str) -> str:
    """An ISO-8601 literal as stored: UTC, second precision, ``Z``."""
    if len(text) == 10:
        text += "T00:00:00Z"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            ODATA_URI_ERROR, f"The DateTimeOffset literal '{text}' is not valid."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso(moment.astimezone(UTC))


def filter_properties(node: FilterNode) -> list[str]:
    """Every property path a filter mentions."""
    if isinstance(node, Logical):
        return filter_properties(node.left) + filter_properties(node.right)
    if isinstance(node, Not):
        return filter_properties(node.operand)
    if isinstance(node, StringFunction | InFunction):
        return [node.prop.path]
    return [side.path for side in (node.left, node.right) if isinstance(side, Property)]


def compile_filter(
    entity: EntityDef, node: FilterNode, params: list[Any], catalog: Catalog | None = None
) -> str:
    """SQL for a ``$filter`` AST on ``entity``; literal values are appended to ``params``.

    With ``catalog``, a comparison may reach through a single-valued navigation property to a
    column of the related row (``sdkmessageid/name eq 'CreateMultiple'``), as the Web API
    allows ("Filter rows based on values of lookup columns", Query data using the Web API).
    """
    if isinstance(node, Logical):
        left = compile_filter(entity, node.left, params, catalog)
        right = compile_filter(entity, node.right, params, catalog)
        return f"({left} {node.op.upper()} {right})"
    if isinstance(node, Not):
        return f"(NOT {compile_filter(entity, node.operand, params, catalog)})"
    if isinstance(node, StringFunction):
        attribute = resolve_property(entity, node.prop.path)
        if attribute.attribute_type not in STRING_TYPES:
            raise bad_request(
                ODATA_URI_ERROR,
                f"No function signature for the function with name '{node.name}' matches the "
                "specified arguments.",
            )
        escaped = node.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = {
            "contains": f"%{escaped}%",
            "startswith": f"{escaped}%",
            "endswith": f"%{escaped}",
        }
        params.append(pattern[node.name])
        return f"({q(attribute.logical_name)} LIKE ? ESCAPE '\\')"
    if isinstance(node, InFunction):
        attribute = resolve_property(entity, node.prop.path)
        values = [
            literal_to_storage(attribute, _literal_for(attribute, raw)) for raw in node.values
        ]
        params.extend(values)
        marks = ", ".join("?" for _ in values) or "NULL"
        negation = "NOT " if node.negated else ""
        return f"({q(attribute.logical_name)} {negation}IN ({marks}))"
    return _compile_comparison(entity, node, params, catalog)


def _literal_for(attribute: AttributeDef, raw: str) -> Literal:
    kind_of = attribute.attribute_type
    if kind_of in STRING_TYPES:
        return Literal(raw, "string")
    if attribute.is_lookup or kind_of == "Uniqueidentifier":
        return Literal(raw.lower(), "guid")
    if kind_of == "DateTime":
        return Literal(raw, "datetime")
    if kind_of == "Boolean":
        return Literal(raw.lower() == "true", "boolean")
    try:
        return Literal(float(raw) if "." in raw else int(raw), "number")
    except ValueError:
        return Literal(raw, "string")


def _compile_comparison(
    entity: EntityDef, node: Comparison, params: list[Any], catalog: Catalog | None = None
) -> str:
    left, right, op = node.left, node.right, node.op
    if isinstance(left, Literal) and isinstance(right, Property):
        left, right = right, left
        op = {"gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}.get(op, op)
    if not isinstance(left, Property):
        raise bad_request(ODATA_URI_ERROR, "A comparison needs at least one property.")
    if catalog is not None and isinstance(right, Literal) and "/" in left.path:
        related = _related_comparison(entity, left.path, op, right, params, catalog)
        if related is not None:
            return related
    attribute = resolve_property(entity, left.path)
    column = q(attribute.logical_name)
    if isinstance(right, Property):
        other = resolve_property(entity, right.path)
        return f"({column} {_SQL_OPS[op]} {q(other.logical_name)})"
    if right.kind == "null":
        if op == "eq":
            return f"({column} IS NULL)"
        if op == "ne":
            return f"({column} IS NOT NULL)"
        return "(0)"
    params.append(literal_to_storage(attribute, right, op))
    return f"({column} {_SQL_OPS[op]} ?)"


def _related_comparison(
    entity: EntityDef,
    path: str,
    op: str,
    literal: Literal,
    params: list[Any],
    catalog: Catalog,
) -> str | None:
    """``nav/column op literal`` as a sub-select on the related table (None: not such a path)."""
    nav, _, column = path.partition("/")
    found = entity.navigation(nav)
    if found is None or "/" in column:
        return None
    attribute, target_name = found
    target = catalog.get(target_name)
    if target is None or column == target.primary_id:
        return None
    if target.attribute_by_wire_name(column) is None:
        raise unknown_property(target, column)
    inner = _compile_comparison(target, Comparison(op, Property(column), literal), params)
    sql = (
        f"({q(attribute.logical_name)} IN (SELECT {q(target.primary_id)} "
        f"FROM {q(target.table)} WHERE {inner})"
    )
    if attribute.is_polymorphic:
        params.append(target.logical_name)
        sql += f" AND {q(target_column(attribute))} = ?"
    return sql + ")"


def is_related_path(entity: EntityDef, path: str) -> bool:
    """Whether ``path`` is ``nav/column`` through a single-valued navigation property."""
    nav, slash, column = path.partition("/")
    return bool(slash) and entity.navigation(nav) is not None and "/" not in column


# -- ordering and keyset paging -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ordering:
    """The ORDER BY of a query: (column, descending) pairs ending with the primary key."""

    columns: tuple[tuple[str, bool], ...]

    def order_sql(self) -> str:
        """``ORDER BY`` body."""
        return ", ".join(f"{q(c)} {'DESC' if d else 'ASC'}" for c, d in self.columns)

    def after(self, last: list[Any], params: list[Any]) -> str:
        """SQL predicate "strictly after ``last``" in this ordering (NULLs sort first, as ASC)."""
        alternatives = []
        for position, (column, descending) in enumerate(self.columns):
            terms = []
            for (previous, _), value in zip(self.columns[:position], last[:position], strict=True):
                if value is None:
                    terms.append(f"{q(previous)} IS NULL")
                else:
                    terms.append(f"{q(previous)} = ?")
                    params.append(value)
            value = last[position]
            if descending:
                if value is None:
                    continue
                terms.append(f"({q(column)} < ? OR {q(column)} IS NULL)")
            elif value is None:
                terms.append(f"{q(column)} IS NOT NULL")
            else:
                terms.append(f"{q(column)} > ?")
            if value is not None:
                params.append(value)
            alternatives.append("(" + " AND ".join(terms) + ")")
        return "(" + (" OR ".join(alternatives) or "0") + ")"


def ordering_for(entity: EntityDef, orderby: list[tuple[str, bool]]) -> Ordering:
    """Resolve ``$orderby`` names and append the primary key as the tie-breaker.

    Where the docs are silent: lookups order by their GUID here (Dataverse orders them by the
    related row's primary name).
    """
    columns: list[tuple[str, bool]] = []
    for name, descending in orderby:
        attribute = resolve_property(entity, name)
        if attribute.logical_name != entity.primary_id:
            columns.append((attribute.logical_name, descending))
    columns.append((entity.primary_id, False))
    return Ordering(tuple(columns))


_COOKIE = re.compile(r'pagenumber="(\d+)"\s+pagingcookie="([^"]*)"')
_KEYSET = re.compile(r'<keyset v="([A-Za-z0-9_=-]*)"')


def encode_skiptoken(
    page: int, state: dict[str, Any], *, tracking: bool, pk: str, first: str, last: str
) -> str:
    """A ``$skiptoken`` shaped like Dataverse's paging cookie, carrying our keyset state."""
    payload = base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()
    inner = (
        f'<cookie page="{page - 1}"><{pk} last="{{{last.upper()}}}" first="{{{first.upper()}}}" />'
        f'<keyset v="{payload}" /></cookie>'
    )
    cookie = quote(quote(inner, safe=""), safe="")
    return f'<cookie pagenumber="{page}" pagingcookie="{cookie}" istracking="{tracking}" />'


def decode_skiptoken(token: str) -> tuple[int, dict[str, Any]]:
    """Inverse of :func:`encode_skiptoken`; a forged or damaged token is a 400."""
    match = _COOKIE.search(token)
    keyset = _KEYSET.search(unquote(unquote(match.group(2)))) if match else None
    if match is None or keyset is None:
        raise bad_request(ODATA_URI_ERROR, "The $skiptoken value is not valid.")
    try:
        state = loads_strict(base64.urlsafe_b64decode(keyset.group(1).encode()))
    except ValueError:
        raise bad_request(ODATA_URI_ERROR, "The $skiptoken value is not valid.") from None
    if not isinstance(state, dict):
        raise bad_request(ODATA_URI_ERROR, "The $skiptoken value is not valid.")
    return int(match.group(1)), state
