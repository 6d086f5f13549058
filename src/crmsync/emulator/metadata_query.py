"""``RetrieveMetadataChanges``: table definitions by query, and what changed since a stamp.

``GET RetrieveMetadataChanges(Query=@q,ClientVersionStamp=@s,DeletedMetadataFilters=@d)``
with ``@q`` an ``EntityQueryExpression`` in JSON (``Criteria`` conditions on entity
properties, ``Properties`` to return, ``AttributeQuery`` for the columns). The answer is a
``RetrieveMetadataChangesResponse``: ``EntityMetadata``, ``ServerVersionStamp`` and, when a
stamp and filters were given, ``DeletedMetadata`` (``Keys`` the kinds, ``Values`` the
MetadataIds). Given a ``ClientVersionStamp``, only tables defined or changed since it are
returned. A stamp older than ``ExpireSubscriptionsInDays`` (90 days by default), from another
emulator run or from before ``/_emulator/expire-delta-tokens`` is refused with 400
``0x80044352`` ExpiredVersionStamp, and the client reads everything again.

The documentation does not say which status carries ExpiredVersionStamp on the Web API;
400 is chosen as for expired change-tracking tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from crmsync.dataverse_codes import EXPIRED_VERSION_STAMP, INVALID_ARGUMENT
from crmsync.emulator.context import ApiResponse, RequestContext, json_response
from crmsync.emulator.errors import bad_request
from crmsync.emulator.metadata import EntityDef
from crmsync.emulator.metadata_api import attribute_document, entity_document

FUNCTION = "RetrieveMetadataChanges"
EXPIRE_SUBSCRIPTIONS_IN_DAYS = 90
_STAMP_TIME = "%m/%d/%Y %H:%M:%S"
_PARAMETER = re.compile(r"\s*(\w+)\s*=\s*('(?:[^']|'')*'|[^,]*)\s*(?:,|$)")
_DELETED_KINDS = ("Entity", "Attribute", "Relationship", "Label", "OptionSet")


def is_function_path(path: str) -> bool:
    """Whether ``path`` addresses ``RetrieveMetadataChanges`` (with or without parameters)."""
    head = path.strip("/").removeprefix("Microsoft.Dynamics.CRM.")
    return head == FUNCTION or head.startswith(FUNCTION + "(")


def parameters(path: str, aliases: Mapping[str, str], function: str = FUNCTION) -> dict[str, str]:
    """A function call's parameters, aliases (``Query=@q&@q=...``) substituted."""
    head = path.strip("/").removeprefix("Microsoft.Dynamics.CRM.")
    inner = head[len(function) :].strip()
    if inner and not (inner.startswith("(") and inner.endswith(")")):
        raise bad_request(INVALID_ARGUMENT, f"Malformed function call: {head}")
    inner = inner[1:-1].strip()
    found: dict[str, str] = {}
    position = 0
    while position < len(inner):
        match = _PARAMETER.match(inner, position)
        if match is None or match.end() == position:
            raise bad_request(INVALID_ARGUMENT, f"Malformed function parameters: {inner}")
        name, value = match.group(1), match.group(2).strip()
        if value.startswith("@"):
            value = aliases.get(value, "null")
        found[name] = value
        position = match.end()
    return found


def _string(value: str | None) -> str | None:
    if value is None or value == "null":
        return None
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    return value


def mint_stamp(ctx: RequestContext) -> str:
    """``<catalog version>!<UTC time>!c<catalog run>!e<expiry epoch>``."""
    when = ctx.runtime.clock().strftime(_STAMP_TIME)
    return f"{ctx.catalog.version}!{when}!c{ctx.catalog.epoch}!e{ctx.runtime.delta_epoch}"


def _expired() -> Exception:
    return bad_request(
        EXPIRED_VERSION_STAMP,
        "Version stamp associated with the client has expired. Please perform a full sync.",
    )


def read_stamp(ctx: RequestContext, stamp: str) -> int:
    """The catalog version a client stamp stands for; stale stamps raise ExpiredVersionStamp."""
    parts = stamp.split("!")
    try:
        version = int(parts[0])
        issued = datetime.strptime(parts[1], _STAMP_TIME).replace(tzinfo=UTC)
        catalog_run = parts[2].removeprefix("c")
        epoch = int(parts[3].removeprefix("e"))
    except (ValueError, IndexError):
        raise _expired() from None
    too_old = ctx.runtime.clock() - issued > timedelta(days=EXPIRE_SUBSCRIPTIONS_IN_DAYS)
    if (
        too_old
        or catalog_run != ctx.catalog.epoch
        or epoch != ctx.runtime.delta_epoch
        or version > ctx.catalog.version
    ):
        raise _expired()
    return version


def _json_parameter(raw: str | None, name: str) -> dict[str, Any]:
    if raw is None or raw == "null":
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise bad_request(INVALID_ARGUMENT, f"The {name} parameter is not valid JSON.") from None
    if not isinstance(value, dict):
        raise bad_request(INVALID_ARGUMENT, f"The {name} parameter must be a JSON object.")
    return value


def _condition_value(value: Any) -> Any:
    """A ``MetadataConditionExpression`` value: ``{"Type": ..., "Value": ...}`` or plain; an
    array may come as a JSON list or as a JSON-encoded string."""
    if isinstance(value, Mapping) and "Value" in value:
        inner = value["Value"]
        kind = str(value.get("Type") or "")
        if kind.endswith("[]") and isinstance(inner, str):
            try:
                return json.loads(inner)
            except json.JSONDecodeError:
                return [inner]
        return inner
    return value


def _matches(document: Mapping[str, Any], criteria: Any) -> bool:
    """Whether a definition satisfies a ``MetadataFilterExpression`` (Equals, NotEquals, In,
    NotIn, GreaterThan, LessThan; And/Or; nested Filters)."""
    if not isinstance(criteria, Mapping):
        return True
    results: list[bool] = []
    for condition in criteria.get("Conditions") or []:
        if not isinstance(condition, Mapping):
            raise bad_request(INVALID_ARGUMENT, "Each condition must be an object.")
        name = str(condition.get("PropertyName") or "")
        if name not in document:
            raise bad_request(INVALID_ARGUMENT, f"Unknown metadata property {name!r}.")
        actual = document[name]
        if isinstance(actual, Mapping) and "Value" in actual:
            actual = actual["Value"]
        wanted = _condition_value(condition.get("Value"))
        operator = str(condition.get("ConditionOperator") or "Equals")
        if operator == "Equals":
            results.append(actual == wanted)
        elif operator == "NotEquals":
            results.append(actual != wanted)
        elif operator == "In":
            results.append(actual in (wanted if isinstance(wanted, list) else [wanted]))
        elif operator == "NotIn":
            results.append(actual not in (wanted if isinstance(wanted, list) else [wanted]))
        elif operator in ("GreaterThan", "LessThan") and isinstance(wanted, int | float):
            number = actual if isinstance(actual, int | float) else 0
            results.append(number > wanted if operator == "GreaterThan" else number < wanted)
        else:
            raise bad_request(INVALID_ARGUMENT, f"Unsupported ConditionOperator {operator!r}.")
    for nested in criteria.get("Filters") or []:
        results.append(_matches(document, nested))
    if not results:
        return True
    return any(results) if criteria.get("FilterOperator") == "Or" else all(results)


def _projected(document: dict[str, Any], properties: Any) -> dict[str, Any]:
    """Keep the properties a ``MetadataPropertiesExpression`` asks for (MetadataId always)."""
    if not isinstance(properties, Mapping) or properties.get("AllProperties"):
        return document
    names = {str(n) for n in properties.get("PropertyNames") or []}
    kept = {"MetadataId", "@odata.type", *names}
    return {key: value for key, value in document.items() if key in kept}


def _entity_answer(
    ctx: RequestContext, entity: EntityDef, query: Mapping[str, Any]
) -> dict[str, Any]:
    document = _projected(entity_document(ctx, entity), query.get("Properties"))
    document["HasChanged"] = None
    attribute_query = query.get("AttributeQuery")
    if isinstance(attribute_query, Mapping):
        columns = []
        for attribute in entity.attributes.values():
            full = attribute_document(ctx, entity, attribute, derived=True)
            if _matches(full, attribute_query.get("Criteria")):
                row = _projected(full, attribute_query.get("Properties"))
                row["HasChanged"] = None
                columns.append(row)
        document["Attributes"] = columns
    return document


def _deleted_kinds(raw: str | None) -> set[str]:
    """``Microsoft.Dynamics.CRM.DeletedMetadataFilters'Entity,Attribute'`` → the kinds."""
    text = (raw or "").strip()
    if not text or text == "null":
        return set()
    if "'" in text:
        text = text.split("'", 1)[1].rsplit("'", 1)[0]
    kinds = {part.strip() for part in text.split(",") if part.strip()}
    if "All" in kinds:
        return set(_DELETED_KINDS)
    unknown = kinds - set(_DELETED_KINDS) - {"Default"}
    if unknown:
        raise bad_request(INVALID_ARGUMENT, f"Unknown DeletedMetadataFilters {sorted(unknown)}.")
    return {"Entity" if kind == "Default" else kind for kind in kinds}


def retrieve_metadata_changes(
    ctx: RequestContext, path: str, aliases: Mapping[str, str]
) -> ApiResponse:
    """Answer the function: matching definitions (only the changed ones after a stamp)."""
    found = parameters(path, aliases)
    query = _json_parameter(found.get("Query"), "Query")
    client_stamp = _string(found.get("ClientVersionStamp"))
    since = read_stamp(ctx, client_stamp) if client_stamp else None
    stamp = mint_stamp(ctx)
    changed = ctx.catalog.changed_since(since) if since is not None else None
    entities = []
    for entity in ctx.catalog:
        if changed is not None and entity.logical_name not in changed:
            continue
        if _matches(entity_document(ctx, entity), query.get("Criteria")):
            entities.append(_entity_answer(ctx, entity, query))
    answer: dict[str, Any] = {
        "@odata.context": (
            f"{ctx.base_url}/$metadata#Microsoft.Dynamics.CRM.RetrieveMetadataChangesResponse"
        ),
        "EntityMetadata": entities,
        "ServerVersionStamp": stamp,
        "DeletedMetadata": None,
    }
    kinds = _deleted_kinds(_string(found.get("DeletedMetadataFilters")))
    if since is not None and kinds:
        by_kind: dict[str, list[str]] = {}
        for kind, meta_id in ctx.catalog.deleted_since(since):
            if kind in kinds:
                by_kind.setdefault(kind, []).append(meta_id)
        answer["DeletedMetadata"] = {
            "Count": len(by_kind),
            "IsReadOnly": True,
            "Keys": list(by_kind),
            "Values": list(by_kind.values()),
        }
    return json_response(200, answer)
