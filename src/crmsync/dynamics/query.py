"""Query URLs and the conversion of Dataverse JSON rows into typed :class:`CrmRecord` values.

Spec §2d/§2e/§3: lookups come back as ``_x_value`` with a ``lookuplogicalname`` annotation,
date-times as ISO 8601 UTC strings, choices as integers, money as numbers; every row carries
``@odata.etag`` and its primary key. Query options are case-sensitive and ``$skip`` does not
exist; paging is server-driven through ``@odata.nextLink``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from crmsync.dynamics.types import (
    AttributeType,
    CrmRecord,
    CrmValue,
    EntitySchema,
    LookupValue,
)
from crmsync.errors import ConfigurationError

LOOKUP_ANNOTATION = "Microsoft.Dynamics.CRM.lookuplogicalname"
LOOKUP_PREFERENCE = f'odata.include-annotations="{LOOKUP_ANNOTATION}"'
"""The ``Prefer`` preference that names each lookup's table (spec §2e)."""
MAX_PAGE_SIZE = 5000
"""The largest ``odata.maxpagesize`` Dataverse honours (spec §3)."""
LOOKUP_TYPES = frozenset({AttributeType.LOOKUP, AttributeType.CUSTOMER, AttributeType.OWNER})
DATE_TIME_PATTERN = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$"
)
_JSON_SCALARS = frozenset({bool, int, float})
_QUERY_SAFE = "'(),:*$@=/!~;-._"

# Lookup columns present on the tables crmsync syncs (spec §2b/§2c), used to build ``$select``
# before the schema has been read; the schema, when known, decides instead.
WELL_KNOWN_LOOKUPS = frozenset(
    {
        "ownerid",
        "owninguser",
        "owningteam",
        "owningbusinessunit",
        "createdby",
        "modifiedby",
        "parentaccountid",
        "parentcontactid",
        "parentcustomerid",
        "customerid",
        "campaignid",
        "transactioncurrencyid",
        "originatingleadid",
        "primarycontactid",
        "businessunitid",
        "qualifyingopportunityid",
    }
)


@dataclass(frozen=True, slots=True)
class EntitySetInfo:
    """How a table is addressed: logical name, URL entity set and primary key column."""

    logical_name: str
    entity_set: str
    primary_id: str


WELL_KNOWN_ENTITIES: tuple[EntitySetInfo, ...] = (
    EntitySetInfo("lead", "leads", "leadid"),
    EntitySetInfo("contact", "contacts", "contactid"),
    EntitySetInfo("account", "accounts", "accountid"),
    EntitySetInfo("opportunity", "opportunities", "opportunityid"),
    EntitySetInfo("systemuser", "systemusers", "systemuserid"),
    EntitySetInfo("team", "teams", "teamid"),
    EntitySetInfo("campaign", "campaigns", "campaignid"),
    EntitySetInfo("list", "lists", "listid"),
    EntitySetInfo("task", "tasks", "activityid"),
    EntitySetInfo("transactioncurrency", "transactioncurrencies", "transactioncurrencyid"),
)


def quote_query_value(value: str) -> str:
    """Percent-encode one query option value, keeping OData punctuation readable."""
    return quote(value, safe=_QUERY_SAFE)


def page_preference(size: int, *, first: str | None = None) -> str:
    """The ``Prefer`` header of a paged read: ``first`` (e.g. track changes), the page size
    and lookup names; a size outside 1..5,000 is a configuration error."""
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ConfigurationError(f"page size must be between 1 and {MAX_PAGE_SIZE}")
    parts = [first] if first else []
    parts += [f"odata.maxpagesize={size}", LOOKUP_PREFERENCE]
    return ",".join(parts)


def wire_select(
    select: Iterable[str], schema: EntitySchema | None, primary_id: str | None = None
) -> list[str]:
    """Translate logical column names into ``$select`` names (lookups become ``_x_value``)."""
    names: list[str] = []
    for name in select:
        if name.startswith("_") and name.endswith("_value"):
            wire = name
        elif schema is not None and name in schema.attributes:
            is_lookup = schema.attributes[name].type in LOOKUP_TYPES
            wire = f"_{name}_value" if is_lookup else name
        else:
            wire = f"_{name}_value" if name in WELL_KNOWN_LOOKUPS else name
        if wire not in names and wire != primary_id:
            names.append(wire)
    return names


def collection_url(
    entity_set: str,
    select: Sequence[str],
    *,
    filter: str | None = None,
    orderby: str | None = None,
) -> str:
    """A relative collection URL with ``$select``, ``$filter`` and ``$orderby`` (no ``$skip``)."""
    options: list[str] = []
    if select:
        options.append("$select=" + ",".join(select))
    if filter:
        options.append("$filter=" + quote_query_value(filter))
    if orderby:
        options.append("$orderby=" + quote_query_value(orderby))
    return entity_set + ("?" + "&".join(options) if options else "")


def parse_datetime(text: str) -> datetime:
    """Parse a Dataverse date-time (UTC ISO 8601, ``Z`` suffix) into an aware datetime."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _looks_like_date_time(text: str) -> bool:
    return (
        len(text) >= 16
        and text[4] == "-"
        and text[10] == "T"
        and DATE_TIME_PATTERN.match(text) is not None
    )


def _convert_plain(name: str, value: Any, schema: EntitySchema | None) -> CrmValue:
    if isinstance(value, str):
        attribute = schema.attributes.get(name) if schema is not None else None
        if attribute is not None:
            if attribute.type is AttributeType.DATETIME:
                try:
                    return parse_datetime(value if "T" in value else value + "T00:00:00Z")
                except ValueError:
                    return value
            return value
        if _looks_like_date_time(value):
            try:
                return parse_datetime(value)
            except ValueError:
                return value
        return value
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def is_utc_text(text: str) -> bool:
    """Whether ``text`` is a real instant in Dataverse's own UTC form, ``YYYY-MM-DDTHH:MM:SSZ``.

    Such text is also exactly how the marketing side writes that instant, so it can be kept as
    it is; anything else (fractions of a second, offsets, plain dates, impossible dates) is
    not, and goes through a datetime.
    """
    # The separators at 4, 7, 10, 13, 16 and 19 in one slice; an hour of 24 is never kept.
    if len(text) != 20 or text[4::3] != "--T::Z" or text[11:13] > "23":
        return False
    try:
        _from_iso(text)
    except ValueError:
        return False
    return True


_from_iso = datetime.fromisoformat


def date_value(value: Any) -> CrmValue:
    """A DateTime column's value: ISO text (date-only included) → aware datetime; text that
    does not parse stays text."""
    if not isinstance(value, str):
        return _convert_plain("", value, None)
    try:
        return parse_datetime(value if "T" in value else value + "T00:00:00Z")
    except ValueError:
        return value


@dataclass(frozen=True, slots=True)
class _RowPlan:
    """How to convert rows having one particular set of keys."""

    copy: tuple[str, ...]  # value as is (typed by the schema), under its own name
    pick_copy: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # their values, in that order
    dates: tuple[tuple[str, str], ...]  # DateTime columns
    wire: tuple[tuple[str, str], ...]  # DateTime columns kept as text in Dataverse's UTC form
    guess: tuple[tuple[str, str], ...]  # unknown columns: converted by the value's shape
    lookups: tuple[tuple[str, str, str, str], ...]  # (key, name, annotation key, default)


def _picker(keys: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function returning the values of ``keys`` in a row, as a tuple (one C call)."""
    if len(keys) > 1:
        return operator.itemgetter(*keys)
    if keys:
        only = keys[0]
        return lambda row: (row[only],)
    return lambda row: ()


class RowConverter:
    """Converts the rows of one table into :class:`CrmRecord` values.

    Columns are classified once per distinct set of keys (rows of one page share it), using the
    schema when it is known, so the per-row work is a few dictionary operations.

    DateTime columns named in ``wire_dates`` keep their JSON text when it is Dataverse's own
    UTC form (:func:`is_utc_text`), which the caller stores as it is, with no datetime in
    between (:attr:`crmsync.sync.mapping.EntityMapping.wire_dates`); any other value of theirs
    converts as usual.
    """

    def __init__(
        self,
        info: EntitySetInfo,
        schema: EntitySchema | None = None,
        wire_dates: frozenset[str] = frozenset(),
    ) -> None:
        self.info = info
        self.schema = schema
        self.wire_dates = wire_dates
        self._plans: dict[tuple[str, ...], _RowPlan] = {}

    def _plan(self, keys: tuple[str, ...]) -> _RowPlan:
        copy: list[str] = []
        dates: list[tuple[str, str]] = []
        guess: list[tuple[str, str]] = []
        wire: list[tuple[str, str]] = []
        lookups: list[tuple[str, str, str, str]] = []
        attributes = self.schema.attributes if self.schema is not None else {}
        for key in keys:
            if "@" in key or key == self.info.primary_id:
                continue
            if key[0] == "_" and key.endswith("_value"):
                name = key[1:-6]
                targets = attributes[name].targets if name in attributes else ()
                default = targets[0] if len(targets) == 1 else ""
                lookups.append((key, name, f"{key}@{LOOKUP_ANNOTATION}", default))
                continue
            attribute = attributes.get(key)
            if attribute is None:
                guess.append((key, key))
            elif attribute.type is AttributeType.DATETIME:
                (wire if key in self.wire_dates else dates).append((key, key))
            else:
                copy.append(key)
        plan = _RowPlan(
            tuple(copy), _picker(copy), tuple(dates), tuple(wire), tuple(guess), tuple(lookups)
        )
        self._plans[keys] = plan
        return plan

    def convert(self, row: Mapping[str, Any]) -> CrmRecord:
        """Convert one JSON row (see :func:`record_from_row`)."""
        keys = tuple(row)
        plan = self._plans.get(keys) or self._plan(keys)
        values: dict[str, CrmValue] = dict(zip(plan.copy, plan.pick_copy(row), strict=True))
        for key, name in plan.dates:
            values[name] = date_value(row[key])
        for key, name in plan.wire:
            raw = row[key]
            values[name] = raw if raw.__class__ is str and is_utc_text(raw) else date_value(raw)
        for key, name in plan.guess:
            raw = row[key]
            kind = raw.__class__
            if kind is str:
                values[name] = (
                    _convert_plain(name, raw, None)
                    if len(raw) >= 16 and raw[10] == "T" and raw[4] == "-"
                    else raw
                )
            elif raw is None or kind in _JSON_SCALARS:
                values[name] = raw
            else:
                values[name] = _convert_plain(name, raw, None)
        for key, name, annotation, default in plan.lookups:
            raw = row[key]
            if raw is None:
                values[name] = None
            else:
                target = row.get(annotation)
                entity = target if isinstance(target, str) and target else default
                values[name] = LookupValue(id=str(raw).lower(), entity=entity)
        record_id = row.get(self.info.primary_id)
        modified = values.get("modifiedon")
        if modified.__class__ is str:  # kept as text (``wire_dates``) or not a date-time
            modified = date_value(modified)
        etag = row.get("@odata.etag")
        return CrmRecord(
            entity=self.info.logical_name,
            id=str(record_id).lower() if record_id is not None else "",
            values=MappingProxyType(values),
            etag=str(etag) if etag is not None else None,
            modified_on=modified if isinstance(modified, datetime) else None,
        )


def record_from_row(
    info: EntitySetInfo, row: Mapping[str, Any], schema: EntitySchema | None = None
) -> CrmRecord:
    """Convert one JSON row into a :class:`CrmRecord` keyed by logical column names.

    ``_x_value`` lookups become ``values["x"] = LookupValue(id, entity)`` using the
    ``lookuplogicalname`` annotation (or the single target in the schema); annotations and the
    primary key are not values. With the schema, DateTime columns become aware datetimes and
    other columns keep their JSON value; without it, ISO date-time text is recognised by shape.
    """
    return RowConverter(info, schema).convert(row)


def entity_id_from_url(url: str) -> str | None:
    """The GUID inside ``...leads(<guid>)`` of an ``OData-EntityId`` header, if any."""
    match = re.search(r"\(([0-9a-fA-F-]{36})\)\s*$", url)
    return match.group(1).lower() if match else None
