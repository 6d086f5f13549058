"""Schema changes through the metadata API: custom columns, custom tables, one-to-many lookups.

``POST EntityDefinitions(...)/Attributes`` creates String, Memo, Integer, BigInt, Decimal,
Double, Money, Boolean, DateTime and Picklist columns; ``POST EntityDefinitions`` a custom
table with its primary-name column; ``POST RelationshipDefinitions`` (one-to-many) the lookup
column on the referencing table. Names need a customization prefix (``new_BankName``);
SystemRequired is refused for custom columns (spec §10).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmsync.dataverse_codes import INVALID_ARGUMENT
from crmsync.emulator.context import ApiResponse, RequestContext, empty_response
from crmsync.emulator.errors import bad_request, json_object
from crmsync.emulator.messages import ensure_sdk_messages
from crmsync.emulator.metadata import (
    SAFE_NAME,
    AttributeDef,
    EntityDef,
    OptionDef,
    metadata_id,
    plural,
)

_CREATABLE = {
    "StringAttributeMetadata": "String",
    "MemoAttributeMetadata": "Memo",
    "IntegerAttributeMetadata": "Integer",
    "BigIntAttributeMetadata": "BigInt",
    "DecimalAttributeMetadata": "Decimal",
    "DoubleAttributeMetadata": "Double",
    "MoneyAttributeMetadata": "Money",
    "BooleanAttributeMetadata": "Boolean",
    "DateTimeAttributeMetadata": "DateTime",
    "PicklistAttributeMetadata": "Picklist",
}


def create_relationship(ctx: RequestContext, body: bytes) -> ApiResponse:
    """``POST RelationshipDefinitions`` (one-to-many): adds the lookup column."""
    payload = json_body(body)
    kind = str(payload.get("@odata.type", "")).lstrip("#")
    if kind != "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata":
        raise bad_request(INVALID_ARGUMENT, "Only OneToManyRelationshipMetadata can be created.")
    referenced = ctx.catalog.get(str(payload.get("ReferencedEntity", "")))
    referencing = ctx.catalog.get(str(payload.get("ReferencingEntity", "")))
    lookup = payload.get("Lookup")
    if referenced is None or referencing is None or not isinstance(lookup, dict):
        raise bad_request(
            INVALID_ARGUMENT, "ReferencedEntity, ReferencingEntity and Lookup are required."
        )
    name = check_new_name(referencing, lookup)
    cascade = payload.get("CascadeConfiguration")
    delete = cascade.get("Delete", "RemoveLink") if isinstance(cascade, dict) else "RemoveLink"
    if delete not in ("Cascade", "RemoveLink", "Restrict"):
        raise bad_request(
            INVALID_ARGUMENT,
            f"CascadeConfiguration.Delete must be Cascade, RemoveLink or Restrict, not {delete!r}.",
        )
    schema_name = payload.get("SchemaName")
    if not isinstance(schema_name, str) or not SAFE_NAME.match(schema_name.lower()):
        raise bad_request(INVALID_ARGUMENT, "The relationship needs a valid SchemaName.")
    attribute = AttributeDef(
        name,
        "Lookup",
        _label_text(lookup.get("DisplayName"), name),
        schema_name=str(lookup["SchemaName"]),
        targets=(referenced.logical_name,),
        required_level=_required_level(lookup),
        is_custom=True,
        relationship_name=schema_name,
        cascade_delete=delete,
    )
    ctx.storage.add_attribute(referencing.logical_name, attribute)
    relationship_id = metadata_id("relationship", schema_name)
    return empty_response(
        204,
        [("OData-EntityId", f"{ctx.base_url}/RelationshipDefinitions({relationship_id})")],
    )


def create_entity(ctx: RequestContext, payload: dict[str, Any]) -> ApiResponse:
    """Create a custom table from a POST to ``EntityDefinitions`` (with its columns)."""
    schema = payload.get("SchemaName")
    if not isinstance(schema, str) or not SAFE_NAME.match(schema.lower()) or "_" not in schema:
        raise bad_request(
            INVALID_ARGUMENT,
            "SchemaName must start with a customization prefix, e.g. new_BankAccount.",
        )
    logical = schema.lower()
    if ctx.catalog.get(logical) is not None:
        raise bad_request(INVALID_ARGUMENT, f"An entity with the name {logical} already exists.")
    attributes = payload.get("Attributes") or []
    primary_body = next(
        (a for a in attributes if isinstance(a, dict) and a.get("IsPrimaryName")), None
    )
    if primary_body is None:
        raise bad_request(
            INVALID_ARGUMENT,
            "A new entity needs one primary name attribute (IsPrimaryName: true).",
        )
    set_name = str(payload.get("EntitySetName") or plural(logical))
    if ctx.catalog.by_set(set_name) is not None or not SAFE_NAME.match(set_name):
        raise bad_request(INVALID_ARGUMENT, f"The entity set name {set_name} is not available.")
    codes = [e.object_type_code for e in ctx.catalog]
    primary = new_attribute(None, primary_body)
    header = {
        "logical_name": logical,
        "schema_name": schema,
        "entity_set_name": set_name,
        "primary_name": primary.logical_name,
        "display_name": _label_text(payload.get("DisplayName"), schema),
        "display_collection_name": _label_text(
            payload.get("DisplayCollectionName"), plural(schema)
        ),
        "ownership": str(payload.get("OwnershipType", "UserOwned")),
        "object_type_code": max([10000, *codes]) + 1,
        "change_tracking": bool(payload.get("ChangeTrackingEnabled", False)),
        "meta_id": metadata_id(logical),
    }
    primary = AttributeDef(
        primary.logical_name,
        "String",
        primary.display_name,
        schema_name=primary.schema_name,
        max_length=primary.max_length,
        format_name="Text",
        required_level=primary.required_level,
        is_custom=True,
        is_primary_name=True,
    )
    # The other columns of the Attributes array are created with the table, as in Dataverse;
    # all are validated before anything is created.
    others = [a for a in attributes if isinstance(a, dict) and a is not primary_body]
    extra = [new_attribute(None, body) for body in others]
    names = [primary.logical_name, *(a.logical_name for a in extra)]
    if len(set(names)) != len(names):
        raise bad_request(INVALID_ARGUMENT, "Two attributes of the new entity have one name.")
    entity = ctx.storage.create_entity(header, primary)
    for attribute in extra:
        ctx.storage.add_attribute(entity.logical_name, attribute)
    ensure_sdk_messages(ctx.storage, ctx.user_id)
    return empty_response(
        204, [("OData-EntityId", f"{ctx.base_url}/EntityDefinitions({entity.meta_id})")]
    )


def check_new_name(entity: EntityDef | None, body: Mapping[str, Any]) -> str:
    """The logical name of a new column, refusing an unsafe or taken schema name."""
    schema = body.get("SchemaName")
    if not isinstance(schema, str) or "_" not in schema or not SAFE_NAME.match(schema.lower()):
        raise bad_request(
            INVALID_ARGUMENT,
            "SchemaName must start with a customization prefix, e.g. new_BankName.",
        )
    name = schema.lower()
    if entity is not None and name in entity.attributes:
        raise bad_request(
            INVALID_ARGUMENT,
            f"An attribute with the specified name {name} already exists for entity "
            f"{entity.logical_name}.",
        )
    return name


def new_attribute(entity: EntityDef | None, body: Mapping[str, Any]) -> AttributeDef:
    """The column a POST to ``EntityDefinitions(...)/Attributes`` describes."""
    derived = str(body.get("@odata.type", "")).lstrip("#").removeprefix("Microsoft.Dynamics.CRM.")
    kind = _CREATABLE.get(derived)
    if kind is None:
        raise bad_request(
            INVALID_ARGUMENT,
            f"Creating attributes of type '{derived or 'unknown'}' is not supported; use one "
            f"of {', '.join(sorted(_CREATABLE))}.",
        )
    name = check_new_name(entity, body)
    common: dict[str, Any] = {
        "schema_name": str(body["SchemaName"]),
        "required_level": _required_level(body),
        "is_custom": True,
    }
    text = _label_text(body.get("DisplayName"), name)
    if kind in ("String", "Memo"):
        limit = 4000 if kind == "String" else 1_048_576
        length = _int(body.get("MaxLength"), 100 if kind == "String" else 2000)
        if not 1 <= length <= limit:
            raise bad_request(INVALID_ARGUMENT, f"MaxLength must be between 1 and {limit}.")
        fmt = (
            body.get("FormatName", {}).get("Value")
            if isinstance(body.get("FormatName"), dict)
            else None
        )
        return AttributeDef(
            name,
            kind,
            text,
            max_length=length,
            format_name=fmt or ("Text" if kind == "String" else "TextArea"),
            **common,
        )
    if kind in ("Integer", "BigInt"):
        return AttributeDef(
            name,
            kind,
            text,
            min_value=_int(body.get("MinValue"), -2147483648),
            max_value=_int(body.get("MaxValue"), 2147483647),
            **common,
        )
    if kind in ("Decimal", "Double", "Money"):
        bound = 922337203685477 if kind == "Money" else 100_000_000_000
        return AttributeDef(
            name,
            kind,
            text,
            min_value=float(body.get("MinValue", -bound)),
            max_value=float(body.get("MaxValue", bound)),
            precision=_int(body.get("Precision"), 2),
            **common,
        )
    if kind == "DateTime":
        fmt = "DateOnly" if body.get("Format") == "DateOnly" else "DateAndTime"
        return AttributeDef(name, kind, text, format_name=fmt, **common)
    raw_options = body.get("OptionSet")
    option_body: dict[str, Any] = raw_options if isinstance(raw_options, dict) else {}
    if kind == "Boolean":
        true_option = option_body.get("TrueOption") or {}
        false_option = option_body.get("FalseOption") or {}
        true_label = _label_text(true_option.get("Label"), "Yes")
        false_label = _label_text(false_option.get("Label"), "No")
        return AttributeDef(
            name,
            kind,
            text,
            true_label=true_label,
            false_label=false_label,
            default_value=bool(body.get("DefaultValue", False)),
            **common,
        )
    options = []
    for index, option in enumerate(option_body.get("Options") or []):
        value = option.get("Value")
        options.append(
            OptionDef(
                int(value) if isinstance(value, int) else 100_000_000 + index,
                _label_text(option.get("Label"), str(value)),
            )
        )
    if not options:
        raise bad_request(INVALID_ARGUMENT, "A choice attribute needs OptionSet.Options.")
    return AttributeDef(name, kind, text, options=tuple(options), **common)


def json_body(body: bytes) -> dict[str, Any]:
    """A metadata request body, which must be a JSON object."""
    return json_object(body, "The metadata payload")


def _label_text(value: object, default: str) -> str:
    if isinstance(value, dict):
        labels = value.get("LocalizedLabels") or []
        if labels and isinstance(labels[0], dict) and labels[0].get("Label"):
            return str(labels[0]["Label"])
    return default


def _required_level(body: Mapping[str, Any]) -> str:
    level = body.get("RequiredLevel")
    value = level.get("Value", "None") if isinstance(level, dict) else "None"
    if value == "SystemRequired":
        raise bad_request(
            INVALID_ARGUMENT, "Custom attributes can't be set to use the SystemRequired option."
        )
    if value not in ("None", "ApplicationRequired", "Recommended"):
        raise bad_request(INVALID_ARGUMENT, f"'{value}' is not a valid RequiredLevel.")
    return str(value)


def _int(value: object, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default
