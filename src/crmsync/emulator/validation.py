"""What the platform enforces on create and update, exactly as spec §10 lists it.

Enforced: unknown properties (400 ``0x80048d19``), JSON types, MaxLength (``0x80044331``),
integer and number ranges, option values (``0x8004431A``), status belonging to state, control
characters (``0x80040278``), dates from 1753-01-01 (``0x80040239``), lookup targets (allowed table,
existing row), secured columns (403), plug-in rules (``0x80040265``). Read-only columns
(IsValidForCreate/IsValidForUpdate false) are silently ignored. ApplicationRequired and e-mail
format are deliberately *not* enforced, as in Dataverse.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crmsync.dataverse_codes import (
    INTEGER_OUT_OF_RANGE,
    INVALID_ARGUMENT,
    INVALID_CHARACTERS,
    INVALID_DATETIME,
    NUMBER_OUT_OF_RANGE,
    ODATA_URI_ERROR,
    PAYLOAD_ERROR,
    PICKLIST_OUT_OF_RANGE,
    PLUGIN_ABORTED,
    SECURED_CREATE,
    SECURED_UPDATE,
    STRING_TOO_LONG,
)
from crmsync.emulator import keys
from crmsync.emulator.context import RequestContext
from crmsync.emulator.errors import bad_request, forbidden, invalid, not_found
from crmsync.emulator.metadata import (
    NUMBER_TYPES,
    STRING_TYPES,
    AttributeDef,
    EntityDef,
    edm_type,
)
from crmsync.emulator.storage import iso, target_column

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_REFERENCE = re.compile(r"^/?([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$")
_SERVICE_ROOT = re.compile(r"^.*?/api/data/v\d+(?:\.\d+)?/")
_MIN_DATE = datetime(1753, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class PreparedWrite:
    """A validated payload: SQL column values, the logical values sent, the client key."""

    columns: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    primary_id: str | None = None


def payload_error(entity: EntityDef, inner: str) -> Exception:
    """400 ``0x80048d19`` ODataClientPayloadError with the OData parser's message inside."""
    return bad_request(
        PAYLOAD_ERROR,
        f"Error identified in Payload provided by the user for Entity :'{entity.entity_set_name}', "
        "For more information on this error please follow this help link "
        "https://go.microsoft.com/fwlink/?linkid=2195293  ----> InnerException : "
        f"Microsoft.OData.ODataException: {inner}",
    )


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def parse_guid(text: str) -> str | None:
    """A normalised GUID string, or None when ``text`` is not one."""
    if isinstance(text, str) and _GUID.match(text):
        return text.lower()
    try:
        return str(uuid.UUID(text.strip("{}")))
    except (ValueError, AttributeError):
        return None


def parse_reference(ctx: RequestContext, text: str) -> tuple[EntityDef, str]:
    """Resolve ``/accounts(<id>)``, ``accounts(<id>)``, an absolute URL or ``$1`` to a row."""
    reference = text.strip()
    if reference.startswith("$"):
        resolved = ctx.content_ids.get(reference)
        if resolved is None:
            raise bad_request(
                PAYLOAD_ERROR,
                f"Content-ID Reference: '{reference}' does not exist in the batch context.",
            )
        reference = resolved
    reference = _SERVICE_ROOT.sub("", reference)
    match = _REFERENCE.match(reference)
    target = ctx.catalog.by_set(match.group(1)) if match else None
    if match is None or target is None:
        raise bad_request(INVALID_ARGUMENT, f"The entity reference '{text}' is not valid.")
    key = match.group(2)
    if "=" in key:
        name, _, value = key.partition("=")
        if name.strip() != target.primary_id:
            # An alternate key ("/accounts(accountnumber='ABC')"): the row must exist.
            values = keys.parse_key(target, key)
            found = keys.find(ctx, target, values)
            if found is None:
                raise not_found(target.logical_name, key)
            return target, found
        key = value
    record_id = parse_guid(key)
    if record_id is None:
        raise bad_request(INVALID_ARGUMENT, f"The entity reference '{text}' is not valid.")
    return target, record_id


def prepare(
    ctx: RequestContext,
    entity: EntityDef,
    body: object,
    *,
    creating: bool,
) -> PreparedWrite:
    """Validate a create/update payload and convert it to column values (spec §10)."""
    if not isinstance(body, dict):
        raise payload_error(entity, "The payload must be a JSON object.")
    prepared = PreparedWrite()
    for key, value in body.items():
        if key.startswith("@"):
            continue
        if key.endswith("@odata.bind"):
            _bind(ctx, entity, key[: -len("@odata.bind")], value, prepared, creating=creating)
            continue
        if "@" in key:
            continue
        attribute = entity.attributes.get(key)
        if attribute is None:
            if (
                key.startswith("_")
                and key.endswith("_value")
                and entity.attribute_by_wire_name(key)
            ):
                raise bad_request(
                    ODATA_URI_ERROR,
                    "CRM do not support direct update of Entity Reference properties, Use "
                    "Navigation properties instead.",
                )
            raise payload_error(
                entity,
                f"The property '{key}' does not exist on type 'Microsoft.Dynamics.CRM."
                f"{entity.logical_name}'. Make sure to only use property names that are defined "
                "by the type or mark the type as open type.",
            )
        if attribute.is_lookup:
            raise payload_error(
                entity,
                "A 'PrimitiveValue' node with non-null value was found when trying to read the "
                "value of a navigation property; however, a 'StartArray' node, a 'StartObject' "
                "node, or a 'PrimitiveValue' node with null value was expected.",
            )
        if attribute.is_primary_id:
            if creating and value is not None:
                record_id = parse_guid(str(value)) if isinstance(value, str) else None
                if record_id is None:
                    raise payload_error(
                        entity,
                        f"Cannot convert the literal '{value}' to the expected type 'Edm.Guid'.",
                    )
                prepared.primary_id = record_id
            continue
        if not (attribute.valid_for_create if creating else attribute.valid_for_update):
            continue  # documented: silently ignored
        _check_secured(ctx, entity, attribute, creating=creating)
        prepared.columns[key] = convert_value(entity, attribute, value)
        prepared.values[key] = value
    _check_state(entity, prepared)
    return prepared


def _check_secured(
    ctx: RequestContext, entity: EntityDef, attribute: AttributeDef, *, creating: bool
) -> None:
    if ctx.can_write_column(entity.logical_name, attribute.logical_name):
        return
    if creating:
        raise forbidden(
            SECURED_CREATE,
            f"Caller user with Id {ctx.user_id} does not have create permissions to the secured "
            f"field '{attribute.logical_name}' of entity '{entity.logical_name}'. The requested "
            "operation could not be completed.",
        )
    raise forbidden(
        SECURED_UPDATE,
        f"Caller user with Id {ctx.user_id} does not have update permissions to the secured "
        f"field '{attribute.logical_name}' of entity '{entity.logical_name}'. The requested "
        "operation could not be completed.",
    )


def _bind(
    ctx: RequestContext,
    entity: EntityDef,
    nav: str,
    value: object,
    prepared: PreparedWrite,
    *,
    creating: bool,
) -> None:
    found = entity.navigation(nav)
    if found is None:
        raise payload_error(
            entity,
            f"An undeclared property '{nav}' which only has property annotations in the payload "
            "but no property value was found in the payload. In OData, only declared navigation "
            "properties and declared named streams can be represented as properties without "
            "values.",
        )
    attribute, expected = found
    if not (attribute.valid_for_create if creating else attribute.valid_for_update):
        return
    _check_secured(ctx, entity, attribute, creating=creating)
    name = attribute.logical_name
    if value is None:
        prepared.columns[name] = None
        if attribute.is_polymorphic:
            prepared.columns[target_column(attribute)] = None
        prepared.values[name] = None
        return
    if not isinstance(value, str):
        raise payload_error(entity, f"The value of '{nav}@odata.bind' must be a URI string.")
    target, record_id = parse_reference(ctx, value)
    allowed = {t for t, n in zip(attribute.targets, attribute.nav_names, strict=True) if n == nav}
    if target.logical_name not in allowed:
        raise payload_error(
            entity,
            f"The navigation property '{nav}' expects a Microsoft.Dynamics.CRM.{expected} "
            f"reference, but the value references Microsoft.Dynamics.CRM.{target.logical_name}.",
        )
    ctx.require(entity, "append")
    ctx.require(target, "appendto")
    if not ctx.storage.exists(target, record_id):
        raise not_found(target.logical_name, record_id)
    prepared.columns[name] = record_id
    if attribute.is_polymorphic:
        prepared.columns[target_column(attribute)] = target.logical_name
    prepared.values[name] = record_id


def _type_error(entity: EntityDef, attribute: AttributeDef, value: object) -> Exception:
    edm = edm_type(attribute.attribute_type)
    return payload_error(
        entity, f"Cannot convert the literal '{value}' to the expected type '{edm}'."
    )


def convert_value(entity: EntityDef, attribute: AttributeDef, value: object) -> Any:
    """Check one value against its column and return what is stored."""
    if value is None:
        return None
    kind = attribute.attribute_type
    name = attribute.logical_name
    if kind in STRING_TYPES:
        if not isinstance(value, str):
            raise _type_error(entity, attribute, value)
        if attribute.max_length is not None and len(value) > attribute.max_length:
            raise invalid(
                STRING_TOO_LONG,
                f"A validation error occurred.  The length of the '{name}' attribute of the "
                f"'{entity.logical_name}' entity exceeded the maximum allowed length of "
                f"'{attribute.max_length}'.",
                entity=entity.logical_name,
            )
        if _CONTROL.search(value):
            raise invalid(
                INVALID_CHARACTERS,
                f"The field '{name}' contains one or more invalid characters.",
                entity=entity.logical_name,
            )
        return value
    if kind == "Boolean":
        if not isinstance(value, bool):
            raise _type_error(entity, attribute, value)
        return int(value)
    if kind in ("Picklist", "State", "Status"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(entity, attribute, value)
        if attribute.option(value) is None:
            raise invalid(
                PICKLIST_OUT_OF_RANGE,
                f"The picklist value is out of the range. Value '{value}' is not valid for "
                f"attribute '{name}' of entity '{entity.logical_name}'.",
                entity=entity.logical_name,
            )
        return value
    if kind in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(entity, attribute, value)
        if kind in ("Integer", "BigInt") and not isinstance(value, int):
            raise _type_error(entity, attribute, value)
        low, high = attribute.min_value, attribute.max_value
        if (low is not None and value < low) or (high is not None and value > high):
            if kind == "Integer":
                raise invalid(
                    INTEGER_OUT_OF_RANGE,
                    "A validation error occurred. An integer provided is outside of the allowed "
                    f"values for this attribute. The value of '{name}' must be between {low:g} "
                    f"and {high:g}.",
                    entity=entity.logical_name,
                )
            raise invalid(
                NUMBER_OUT_OF_RANGE,
                f"A validation error occurred. The value of '{name}' is outside of the allowed "
                f"values for this attribute (between {low:g} and {high:g}).",
                entity=entity.logical_name,
            )
        return value
    if kind == "DateTime":
        return _convert_date(entity, attribute, value)
    if kind == "Uniqueidentifier":
        guid = parse_guid(value) if isinstance(value, str) else None
        if guid is None:
            raise _type_error(entity, attribute, value)
        return guid
    return value


def _convert_date(entity: EntityDef, attribute: AttributeDef, value: object) -> str:
    if not isinstance(value, str):
        raise _type_error(entity, attribute, value)
    text = value + "T00:00:00Z" if len(value) == 10 else value
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _type_error(entity, attribute, value) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment < _MIN_DATE:
        raise invalid(
            INVALID_DATETIME,
            "The date-time format is invalid, or value is outside the supported range.",
            entity=entity.logical_name,
        )
    return iso(moment.astimezone(UTC))


def _check_state(entity: EntityDef, prepared: PreparedWrite) -> None:
    """A ``statuscode`` must belong to the ``statecode``; alone, it implies its state."""
    status_attribute = entity.attributes.get("statuscode")
    state_attribute = entity.attributes.get("statecode")
    if status_attribute is None or state_attribute is None:
        return
    state = prepared.columns.get("statecode")
    status = prepared.columns.get("statuscode")
    if status is not None:
        option = status_attribute.option(int(status))
        if option is None:
            return
        if state is None:
            if "statecode" not in prepared.columns:
                prepared.columns["statecode"] = option.state
        elif option.state != state:
            state_option = state_attribute.option(int(state))
            state_label = state_option.label if state_option else str(state)
            raise invalid(
                INVALID_ARGUMENT,
                f"{status} is not a valid status code for state code "
                f"{entity.schema_name}State.{state_label}.",
                entity=entity.logical_name,
            )
    elif state is not None:
        option = state_attribute.option(int(state))
        if option is not None:
            prepared.columns["statuscode"] = option.default_status


def check_plugin_rules(
    ctx: RequestContext, entity: EntityDef, values: dict[str, Any], *, creating: bool
) -> None:
    """Simulated synchronous plug-ins from the configuration (400 ``0x80040265``)."""
    if (ctx.header("mscrm.bypasscustompluginexecution") or "").lower() == "true":
        return
    for rule in ctx.config.plugin_rules:
        if rule.entity == entity.logical_name and rule.violated_by(values, creating=creating):
            raise invalid(PLUGIN_ABORTED, rule.message, entity=entity.logical_name)
