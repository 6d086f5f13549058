"""Query URLs and the conversion of Dataverse JSON rows into typed :class:`CrmRecord` values.

Spec §2d/§2e/§3: lookups come back as ``_x_value`` with a ``lookuplogicalname`` annotation,
date-times as ISO 8601 UTC strings, choices as integers, money as numbers; every row carries
``@odata.etag`` and its primary key. Query options are case-sensitive and ``$skip`` does not
exist; paging is server-driven through ``@odata.nextLink``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
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

LOOKUP_ANNOTATION = "Microsoft.Dynamics.CRM.lookuplogicalname"
LOOKUP_TYPES = frozenset({AttributeType.LOOKUP, AttributeType.CUSTOMER, AttributeType.OWNER})
DATE_TIME_PATTERN = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$"
)
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


def format_odata_literal(value: object) -> str:
    """Render a Python value as an OData ``$filter`` literal (spec §3)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, LookupValue):
        return value.id
    text = str(value).replace("'", "''")
    return f"'{text}'"


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


def record_from_row(
    info: EntitySetInfo, row: Mapping[str, Any], schema: EntitySchema | None = None
) -> CrmRecord:
    """Convert one JSON row into a :class:`CrmRecord` keyed by logical column names.

    ``_x_value`` lookups become ``values["x"] = LookupValue(id, entity)`` using the
    ``lookuplogicalname`` annotation (or the single target in the schema); annotations and the
    primary key are not values.
    """
    values: dict[str, CrmValue] = {}
    lookups: list[tuple[str, Any]] = []
    annotations: dict[str, str] = {}
    primary_id = info.primary_id
    for key, raw in row.items():
        if "@" in key:
            if key.endswith(LOOKUP_ANNOTATION) and isinstance(raw, str):
                annotations[key.partition("@")[0]] = raw
        elif key[0] == "_" and key.endswith("_value"):
            lookups.append((key, raw))
        elif key != primary_id:
            values[key] = _convert_plain(key, raw, schema)
    for key, raw in lookups:
        name = key[1:-6]
        if raw is None:
            values[name] = None
            continue
        target = annotations.get(key, "")
        if not target and schema is not None and name in schema.attributes:
            targets = schema.attributes[name].targets
            target = targets[0] if len(targets) == 1 else ""
        values[name] = LookupValue(id=str(raw).lower(), entity=target)
    record_id = row.get(primary_id)
    modified = values.get("modifiedon")
    etag = row.get("@odata.etag")
    return CrmRecord(
        entity=info.logical_name,
        id=str(record_id).lower() if record_id is not None else "",
        values=MappingProxyType(values),
        etag=str(etag) if etag is not None else None,
        modified_on=modified if isinstance(modified, datetime) else None,
    )


def entity_id_from_url(url: str) -> str | None:
    """The GUID inside ``...leads(<guid>)`` of an ``OData-EntityId`` header, if any."""
    match = re.search(r"\(([0-9a-fA-F-]{36})\)\s*$", url)
    return match.group(1).lower() if match else None
