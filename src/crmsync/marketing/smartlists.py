"""Smart lists: who a campaign is for, as filters compiled to one SQL condition.

A smart list is a tuple of :class:`Filter` and a rule combining them: ``all``, ``any`` or an
advanced expression such as ``1 and (2 or 3)`` (:mod:`crmsync.marketing.smartlist_logic`).
It compiles to **one** SQLAlchemy condition on ``persons`` and is evaluated by the database
(SQLite or PostgreSQL); no person is loaded to decide membership, so a count is one query and
a page of members another.

Fields are person fields by REST name (standard or custom, including ``crmType`` and
``crmIsDeleted``, B36/R87), company fields as ``company.<name>`` (the person's company),
``list`` for static-list membership, and custom entities read from Dynamics as
``custom:<entity>`` ("has one": ``is_not_empty``; "has none": ``is_empty``) or
``custom:<entity>.<field>`` ("has one whose field ...", :mod:`~crmsync.marketing.smartlist_custom`).
Operators and what they mean:

=============== ======================================================================
``is``          equals one of the values (text: ignoring case)
``is_not``      equals none of the values; an empty field counts as "not"
``contains``    contains one of the values (text, ignoring case)
``starts_with`` starts with one of the values (text, ignoring case)
``is_empty``    null, or the empty text
``is_not_empty`` the opposite of ``is_empty``
``gt`` ``lt``   greater / less than the value (numbers, dates, date-times)
``gte`` ``lte`` greater / less than or equal
``between``     two values, both ends included
``in_list``     a member of one of the static lists given by id (field ``list``)
``not_in_list`` a member of none of them
=============== ======================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, not_, or_, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from crmsync.errors import InvalidValueError
from crmsync.marketing.fields import FieldCatalog, FieldDef, coerce_value, load_catalog
from crmsync.marketing.smartlist_custom import CUSTOM_PREFIX, CustomEntityFilters
from crmsync.marketing.smartlist_logic import Logic, fold_logic, parse_logic
from crmsync.store.folded import folded
from crmsync.store.tables import companies, list_members, persons

__all__ = ["OPERATORS", "Filter", "SmartList", "SmartListQuery", "compile_smart_list"]

TEXT_OPERATORS = frozenset({"contains", "starts_with"})
ORDER_OPERATORS = frozenset({"gt", "lt", "gte", "lte", "between"})
EMPTY_OPERATORS = frozenset({"is_empty", "is_not_empty"})
LIST_OPERATORS = frozenset({"in_list", "not_in_list"})
OPERATORS = frozenset({"is", "is_not"}) | TEXT_OPERATORS | ORDER_OPERATORS | EMPTY_OPERATORS
OPERATORS |= LIST_OPERATORS
NUMBER_TYPES = frozenset({"integer", "score", "float", "currency", "percent"})
ORDERED_TYPES = NUMBER_TYPES | {"date", "datetime"}
TEXT_TYPES = frozenset({"string", "text", "email", "phone", "url", "reference"})
MAX_FILTERS = 100
MAX_VALUES = 1000
COMPANY_PREFIX = "company."
LIST_FIELD = "list"


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition: ``field`` ``operator`` ``values``."""

    field: str
    operator: str
    values: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class SmartList:
    """Filters and how they combine: ``"all"``, ``"any"`` or an expression of filter numbers.

    No filters means every person (Marketo requires at least one filter for a batch campaign;
    the campaign layer enforces that, not the smart list)."""

    filters: tuple[Filter, ...] = ()
    logic: str = "all"

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of definitions and the admin API."""
        return {
            "filters": [
                {"field": f.field, "operator": f.operator, "values": list(f.values)}
                for f in self.filters
            ],
            "logic": self.logic,
        }

    @classmethod
    def from_dict(cls, raw: object) -> SmartList:
        """Read the JSON shape; raise :class:`InvalidValueError` naming what is wrong."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise InvalidValueError("smartList must be an object with 'filters' and 'logic'")
        filters_raw = raw.get("filters", [])
        if not isinstance(filters_raw, list) or len(filters_raw) > MAX_FILTERS:
            raise InvalidValueError(f"smartList.filters must be a list of at most {MAX_FILTERS}")
        filters = []
        for number, item in enumerate(filters_raw, start=1):
            if not isinstance(item, dict):
                raise InvalidValueError(f"filter {number} must be an object")
            field, operator = item.get("field"), item.get("operator")
            values = item.get("values", [])
            if "value" in item:
                values = [item["value"]]
            if not isinstance(field, str) or not isinstance(operator, str):
                raise InvalidValueError(f"filter {number} needs a 'field' and an 'operator'")
            if not isinstance(values, list) or len(values) > MAX_VALUES:
                raise InvalidValueError(f"filter {number}: 'values' must be a list")
            filters.append(Filter(field.strip(), operator.strip().lower(), tuple(values)))
        logic = raw.get("logic", "all")
        if not isinstance(logic, str):
            raise InvalidValueError("smartList.logic must be 'all', 'any' or an expression")
        return cls(tuple(filters), logic.strip() or "all")


def _bad(number: int, text: str) -> InvalidValueError:
    return InvalidValueError(f"filter {number}: {text}")


class _Compiler:
    """Turns filters into conditions with the person and company catalogs at hand."""

    def __init__(
        self,
        person_catalog: FieldCatalog,
        company_catalog: FieldCatalog,
        custom: CustomEntityFilters,
        *,
        nocase: bool,
    ) -> None:
        self.person_catalog = person_catalog
        self.company_catalog = company_catalog
        self.custom = custom
        self.nocase = nocase

    def folded(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """``column`` compared without regard to case, in the form the indexes serve
        (:class:`~crmsync.store.folded.folded`); the values are lower-cased already."""
        return folded(column)

    def field(self, number: int, name: str) -> tuple[FieldDef, ColumnElement[Any]]:
        if name.startswith(COMPANY_PREFIX):
            found = self.company_catalog.get(name[len(COMPANY_PREFIX) :])
            if found is None or found.is_custom:
                raise _bad(number, f"unknown company field '{name[:100]}'")
            column: ColumnElement[Any] = (
                select(companies.c[found.rest_name])
                .where(companies.c.id == persons.c.company_id)
                .scalar_subquery()
            )
            return found, column
        found = self.person_catalog.get(name)
        if found is None:
            raise _bad(number, f"unknown person field '{name[:100]}'")
        if not found.is_custom:
            return found, persons.c[found.rest_name]
        element = persons.c.custom[found.rest_name]
        if found.data_type in NUMBER_TYPES:
            return found, element.as_float()
        if found.data_type == "boolean":
            return found, element.as_boolean()
        return found, element.as_string()

    def values(self, number: int, field: FieldDef, raw: tuple[object, ...]) -> list[Any]:
        result: list[Any] = []
        for value in raw:
            if field.data_type in TEXT_TYPES:  # any text compares, even a part of an e-mail
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise _bad(number, f"'{field.rest_name}' compares with text values")
                if str(value) == "" or "\x00" in str(value):
                    raise _bad(number, "a value may not be empty (use is_empty)")
                result.append(str(value).lower())
                continue
            try:
                coerced = coerce_value(field, value)
            except InvalidValueError as exc:
                raise _bad(number, exc.message) from None
            if coerced is None:
                raise _bad(number, "a value may not be empty (use is_empty)")
            result.append(coerced)
        return result

    def condition(self, number: int, item: Filter) -> ColumnElement[bool]:
        """The filter as a two-valued condition (never SQL NULL, so ``not`` means "not")."""
        if item.field.startswith(CUSTOM_PREFIX) and item.operator in OPERATORS:
            return self.custom.condition(number, item, self.compare)
        op = item.operator
        found = self.condition_of(number, item)
        if op in EMPTY_OPERATORS or op in LIST_OPERATORS or op == "is_not":
            return found
        _, column = self.field(number, item.field)
        return and_(column.is_not(None), found)

    def condition_of(self, number: int, item: Filter) -> ColumnElement[bool]:
        op = item.operator
        if op not in OPERATORS:
            raise _bad(
                number, f"unknown operator '{op[:40]}' (one of {', '.join(sorted(OPERATORS))})"
            )
        if item.field == LIST_FIELD or op in LIST_OPERATORS:
            return self.list_condition(number, item)
        field, column = self.field(number, item.field)
        return self.compare(number, item, field, column)

    def compare(
        self, number: int, item: Filter, field: FieldDef, column: ColumnElement[Any]
    ) -> ColumnElement[bool]:
        """``column`` (of type ``field``) compared as ``item`` says (not yet two-valued)."""
        op = item.operator
        kind = field.data_type
        is_text = kind in TEXT_TYPES
        if op in EMPTY_OPERATORS:
            empty = or_(column.is_(None), column == "") if is_text else column.is_(None)
            return empty if op == "is_empty" else not_(empty)
        values = self.values(number, field, item.values)
        if not values:
            raise _bad(number, f"'{op}' needs a value")
        if op in TEXT_OPERATORS and not is_text:
            raise _bad(number, f"'{op}' works on text fields, not {kind} '{field.rest_name}'")
        if op in ORDER_OPERATORS and kind not in ORDERED_TYPES:
            raise _bad(number, f"'{op}' works on numbers and dates, not {kind} '{field.rest_name}'")
        target = self.folded(column) if is_text else column
        if op in {"is", "is_not"}:
            matches: ColumnElement[bool] = target.in_(values)
            return matches if op == "is" else or_(column.is_(None), not_(matches))
        # SQLite's LIKE ignores ASCII case by itself (and ignores collations)
        liked = column if self.nocase else target
        if op == "contains":
            return or_(*(liked.contains(v, autoescape=True) for v in values))
        if op == "starts_with":
            return or_(*(liked.startswith(v, autoescape=True) for v in values))
        if op == "between":
            if len(values) != 2:
                raise _bad(number, "'between' needs exactly two values")
            low, high = sorted(values)
            return and_(column >= low, column <= high)
        if len(values) != 1:
            raise _bad(number, f"'{op}' needs exactly one value")
        value = values[0]
        ordered: ColumnElement[bool]
        if op == "gt":
            ordered = column > value
        elif op == "lt":
            ordered = column < value
        else:
            ordered = column >= value if op == "gte" else column <= value
        return ordered

    @staticmethod
    def list_condition(number: int, item: Filter) -> ColumnElement[bool]:
        if item.field != LIST_FIELD or item.operator not in LIST_OPERATORS:
            raise _bad(
                number, "static lists are filtered with field 'list' and in_list/not_in_list"
            )
        try:
            ids = [int(str(v)) for v in item.values]
        except ValueError:
            raise _bad(number, "list filters take static list ids") from None
        if not ids:
            raise _bad(number, f"'{item.operator}' needs a list id")
        member = (
            select(list_members.c.person_id)
            .where(list_members.c.person_id == persons.c.id, list_members.c.list_id.in_(ids))
            .exists()
        )
        return member if item.operator == "in_list" else not_(member)


def compile_smart_list(conn: Connection, smart_list: SmartList) -> ColumnElement[bool]:
    """One SQL condition on ``persons`` meaning "is in ``smart_list``".

    Raises :class:`InvalidValueError` for an unknown field or operator, a value of the wrong
    type, or invalid logic."""
    compiler = _Compiler(
        load_catalog(conn, "person"),
        load_catalog(conn, "company"),
        CustomEntityFilters.load(conn),
        nocase=conn.dialect.name == "sqlite",
    )
    conditions = [compiler.condition(n, f) for n, f in enumerate(smart_list.filters, start=1)]
    if not conditions:
        return true()
    logic = smart_list.logic.strip().lower()
    if logic == "all":
        return and_(*conditions)
    if logic == "any":
        return or_(*conditions)
    tree: Logic = parse_logic(smart_list.logic, len(conditions))
    return fold_logic(
        tree,
        lambda index: conditions[index - 1],
        not_,
        lambda parts: and_(*parts),
        lambda parts: or_(*parts),
    )


class SmartListQuery:
    """Counts and pages the members of smart lists on one database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def validate(self, smart_list: SmartList) -> None:
        """Raise :class:`InvalidValueError` when ``smart_list`` cannot be compiled."""
        with self._engine.connect() as conn:
            compile_smart_list(conn, smart_list)

    def count(self, smart_list: SmartList) -> int:
        """How many persons are in the smart list (one ``COUNT`` query)."""
        with self._engine.connect() as conn:
            condition = compile_smart_list(conn, smart_list)
            total = conn.execute(
                select(func.count()).select_from(persons).where(condition)
            ).scalar_one()
        return int(total)

    def member_ids(
        self, smart_list: SmartList, *, after_id: int = 0, limit: int = 100
    ) -> list[int]:
        """Up to ``limit`` member ids greater than ``after_id``, in id order."""
        with self._engine.connect() as conn:
            return member_ids(conn, smart_list, after_id=after_id, limit=limit)

    def matching(self, conn: Connection, smart_list: SmartList, ids: Sequence[int]) -> set[int]:
        """Which of ``ids`` are in the smart list, in the caller's transaction."""
        if not ids:
            return set()
        condition = compile_smart_list(conn, smart_list)
        found = conn.execute(
            select(persons.c.id).where(persons.c.id.in_(list(ids)), condition)
        ).scalars()
        return {int(i) for i in found}


def member_ids(
    conn: Connection, smart_list: SmartList, *, after_id: int = 0, limit: int = 100
) -> list[int]:
    """Up to ``limit`` member ids greater than ``after_id``, in id order (caller's connection)."""
    condition = compile_smart_list(conn, smart_list)
    query = (
        select(persons.c.id)
        .where(persons.c.id > after_id, condition)
        .order_by(persons.c.id)
        .limit(max(1, limit))
    )
    return [int(i) for i in conn.execute(query).scalars()]
