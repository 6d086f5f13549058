"""Metadata and permissions: entity and attribute definitions, WhoAmI, privileges.

Spec §9: base ``AttributeMetadata`` comes from ``EntityDefinitions(...)/Attributes``; lengths,
ranges, options and lookup targets need cast segments (``.../Microsoft.Dynamics.CRM.
StringAttributeMetadata``). Secured columns (``IsSecured``) are readable only when the sync
user's field-security profile allows it, which ``RetrievePrincipalAttributePrivileges`` tells
(values 4 = allowed, 0 = not allowed). B8: a secured column without read access is never offered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from crmsync.dynamics.types import AttributeSchema, AttributeType, EntitySchema

Fetch = Callable[[str], Mapping[str, Any] | None]
"""GET a service-root-relative URL and return its JSON; ``None`` when the server has no such
resource (400/404), errors otherwise."""

ENTITY_SELECT = (
    "LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,"
    "ChangeTrackingEnabled,IsCustomEntity,DisplayName"
)
ATTRIBUTE_SELECT = (
    "LogicalName,SchemaName,AttributeType,AttributeTypeName,DisplayName,RequiredLevel,"
    "IsValidForCreate,IsValidForUpdate,IsValidForRead,IsCustomAttribute,IsSecured,MetadataId,"
    "AttributeOf"
)
# (cast type, $select, $expand, the AttributeType values it details)
CASTS: tuple[tuple[str, str, str, frozenset[AttributeType]], ...] = (
    ("StringAttributeMetadata", "LogicalName,MaxLength", "", frozenset({AttributeType.STRING})),
    ("MemoAttributeMetadata", "LogicalName,MaxLength", "", frozenset({AttributeType.MEMO})),
    (
        "IntegerAttributeMetadata",
        "LogicalName,MinValue,MaxValue",
        "",
        frozenset({AttributeType.INTEGER}),
    ),
    (
        "BigIntAttributeMetadata",
        "LogicalName,MinValue,MaxValue",
        "",
        frozenset({AttributeType.BIGINT}),
    ),
    (
        "DecimalAttributeMetadata",
        "LogicalName,MinValue,MaxValue,Precision",
        "",
        frozenset({AttributeType.DECIMAL}),
    ),
    (
        "DoubleAttributeMetadata",
        "LogicalName,MinValue,MaxValue,Precision",
        "",
        frozenset({AttributeType.DOUBLE}),
    ),
    (
        "MoneyAttributeMetadata",
        "LogicalName,MinValue,MaxValue,Precision",
        "",
        frozenset({AttributeType.MONEY}),
    ),
    (
        "PicklistAttributeMetadata",
        "LogicalName",
        "OptionSet($select=Options),GlobalOptionSet($select=Options)",
        frozenset({AttributeType.PICKLIST}),
    ),
    (
        "StateAttributeMetadata",
        "LogicalName",
        "OptionSet($select=Options)",
        frozenset({AttributeType.STATE}),
    ),
    (
        "StatusAttributeMetadata",
        "LogicalName",
        "OptionSet($select=Options)",
        frozenset({AttributeType.STATUS}),
    ),
    (
        "LookupAttributeMetadata",
        "LogicalName,Targets",
        "",
        frozenset({AttributeType.LOOKUP, AttributeType.CUSTOMER, AttributeType.OWNER}),
    ),
)
DEPTHS = ("None", "Basic", "Local", "Deep", "Global")
FIELD_PERMISSION_ALLOWED = 4


@dataclass(frozen=True, slots=True)
class Identity:
    """The answer of ``WhoAmI``: who crmsync is in this org."""

    user_id: str
    business_unit_id: str
    organization_id: str


@dataclass(frozen=True, slots=True)
class FieldPermission:
    """What the sync user may do with one secured column (by attribute MetadataId)."""

    attribute_id: str
    can_create: bool
    can_read: bool
    can_update: bool


@dataclass(frozen=True, slots=True)
class UserPrivileges:
    """The sync user's table privileges, name → depth (``Basic`` … ``Global``)."""

    depths: Mapping[str, str] = field(default_factory=dict)

    def depth(self, privilege: str) -> str:
        """The deepest depth held for ``privilege`` (``"None"`` when not held)."""
        return self.depths.get(privilege.lower(), "None")

    def has(self, privilege: str, at_least: str = "Basic") -> bool:
        """Whether ``privilege`` (e.g. ``prvReadLead``) is held at ``at_least`` depth."""
        return DEPTHS.index(self.depth(privilege)) >= DEPTHS.index(at_least)

    def can(self, action: str, schema_name: str, at_least: str = "Basic") -> bool:
        """``can("Read", "Lead", "Global")`` → prvReadLead held at Global depth."""
        return self.has(f"prv{action}{schema_name}", at_least)


def label_text(value: Any) -> str:
    """The text of a metadata ``Label`` (the user's language first), or ``""``."""
    return _label(value)


def _label(value: Any) -> str:
    if not isinstance(value, Mapping):
        return ""
    user = value.get("UserLocalizedLabel")
    if isinstance(user, Mapping) and user.get("Label"):
        return str(user["Label"])
    for localized in value.get("LocalizedLabels") or []:
        if isinstance(localized, Mapping) and localized.get("Label"):
            return str(localized["Label"])
    return ""


def _managed(value: Any, default: Any) -> Any:
    if isinstance(value, Mapping):
        return value.get("Value", default)
    return default if value is None else value


def _attribute_type(row: Mapping[str, Any]) -> AttributeType:
    raw = str(row.get("AttributeType") or "")
    try:
        return AttributeType(raw)
    except ValueError:
        return AttributeType.OTHER


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _options(row: Mapping[str, Any]) -> dict[int, str]:
    options: dict[int, str] = {}
    for key in ("OptionSet", "GlobalOptionSet"):
        option_set = row.get(key)
        if not isinstance(option_set, Mapping):
            continue
        for option in option_set.get("Options") or []:
            if isinstance(option, Mapping) and isinstance(option.get("Value"), int):
                options[int(option["Value"])] = _label(option.get("Label"))
    return options


def entity_url(logical_name: str) -> str:
    """``EntityDefinitions(LogicalName='lead')`` (quotes doubled, spec §3 literals)."""
    return f"EntityDefinitions(LogicalName='{logical_name.replace(chr(39), chr(39) * 2)}')"


def read_entity_schema(
    fetch: Fetch,
    logical_name: str,
    field_permissions: Callable[[], Mapping[str, FieldPermission] | None],
) -> EntitySchema | None:
    """Read one table's definition, its attributes with details, and column access (B8)."""
    base = entity_url(logical_name)
    entity = fetch(f"{base}?$select={ENTITY_SELECT}")
    if entity is None:
        return None
    listing = fetch(f"{base}/Attributes?$select={ATTRIBUTE_SELECT}") or {}
    rows = [row for row in listing.get("value") or [] if isinstance(row, Mapping)]
    present = {_attribute_type(row) for row in rows}
    details: dict[str, dict[str, Any]] = {}
    for cast, select, expand, types in CASTS:
        if not present & types:
            continue
        url = f"{base}/Attributes/Microsoft.Dynamics.CRM.{cast}?$select={select}"
        if expand:
            url += f"&$expand={expand}"
        for row in (fetch(url) or {}).get("value") or []:
            if isinstance(row, Mapping) and row.get("LogicalName"):
                details.setdefault(str(row["LogicalName"]), {}).update(row)
    permissions: Mapping[str, FieldPermission] | None = {}
    if any(row.get("IsSecured") for row in rows):
        permissions = field_permissions()
    attributes = {
        attribute.logical_name: attribute
        for attribute in (_attribute_from(row, details, permissions) for row in rows)
    }
    return EntitySchema(
        logical_name=str(entity.get("LogicalName") or logical_name),
        entity_set_name=str(entity.get("EntitySetName") or ""),
        primary_id=str(entity.get("PrimaryIdAttribute") or ""),
        primary_name=str(entity.get("PrimaryNameAttribute") or ""),
        change_tracking=bool(entity.get("ChangeTrackingEnabled")),
        is_custom=bool(entity.get("IsCustomEntity")),
        attributes=MappingProxyType(attributes),
        display_name=_label(entity.get("DisplayName")),
        schema_name=str(entity.get("SchemaName") or ""),
        metadata_id=str(entity.get("MetadataId") or "").lower(),
    )


def _attribute_from(
    row: Mapping[str, Any],
    details: Mapping[str, Mapping[str, Any]],
    permissions: Mapping[str, FieldPermission] | None,
) -> AttributeSchema:
    name = str(row.get("LogicalName") or "")
    extra = details.get(name, {})
    secured = bool(row.get("IsSecured"))
    valid_create = bool(_managed(row.get("IsValidForCreate"), True))
    valid_update = bool(_managed(row.get("IsValidForUpdate"), True))
    valid_read = bool(_managed(row.get("IsValidForRead"), True))
    if secured:
        # Unknown permissions (the function is unavailable) count as "not allowed" (B8).
        grant = (permissions or {}).get(str(row.get("MetadataId") or "").lower())
        may_create = grant.can_create if grant else False
        may_read = grant.can_read if grant else False
        may_update = grant.can_update if grant else False
    else:
        may_create = may_read = may_update = True
    max_length = extra.get("MaxLength")
    precision = extra.get("Precision")
    targets = extra.get("Targets") or ()
    return AttributeSchema(
        logical_name=name,
        type=_attribute_type(row),
        display_name=_label(row.get("DisplayName")),
        max_length=int(max_length) if isinstance(max_length, int) else None,
        min_value=_number(extra.get("MinValue")),
        max_value=_number(extra.get("MaxValue")),
        precision=int(precision) if isinstance(precision, int) else None,
        options=MappingProxyType(_options(extra)),
        targets=tuple(str(target) for target in targets),
        required_level=str(_managed(row.get("RequiredLevel"), "None")),
        valid_for_create=valid_create,
        valid_for_update=valid_update,
        valid_for_read=valid_read,
        is_custom=bool(row.get("IsCustomAttribute")),
        is_secured=secured,
        can_read=valid_read and may_read,
        can_update=valid_update and may_update,
        can_create=valid_create and may_create,
        metadata_id=str(row.get("MetadataId") or "").lower(),
    )


def parse_identity(document: Mapping[str, Any]) -> Identity:
    """``WhoAmI`` → :class:`Identity` (GUIDs lower-cased)."""
    return Identity(
        user_id=str(document.get("UserId") or "").lower(),
        business_unit_id=str(document.get("BusinessUnitId") or "").lower(),
        organization_id=str(document.get("OrganizationId") or "").lower(),
    )


def user_label(row: Mapping[str, Any], user_id: str) -> str:
    """``Alex Morgan (alex.morgan@contoso.example)`` from a ``systemuser`` row's fullname and
    domainname (either alone when the other is missing; ``user_id`` when both are)."""
    name = str(row.get("fullname") or "").strip()
    sign_in = str(row.get("domainname") or "").strip()
    if sign_in.startswith("#") or sign_in == name:  # application users: "# <name>"
        sign_in = ""
    if name and sign_in:
        return f"{name} ({sign_in})"
    return name or sign_in or user_id


def parse_user_privileges(document: Mapping[str, Any]) -> UserPrivileges:
    """``RetrieveUserPrivileges`` → the deepest depth per privilege name."""
    depths: dict[str, str] = {}
    for row in document.get("RolePrivileges") or []:
        if not isinstance(row, Mapping) or not row.get("PrivilegeName"):
            continue
        name = str(row["PrivilegeName"]).lower()
        depth = str(row.get("Depth") or "Basic")
        depth = depth if depth in DEPTHS else "Basic"
        if DEPTHS.index(depth) > DEPTHS.index(depths.get(name, "None")):
            depths[name] = depth
    return UserPrivileges(MappingProxyType(depths))


def parse_field_permissions(document: Mapping[str, Any]) -> dict[str, FieldPermission]:
    """``RetrievePrincipalAttributePrivileges`` → permissions keyed by attribute MetadataId."""
    permissions: dict[str, FieldPermission] = {}
    rows: Iterable[Any] = document.get("AttributePrivileges") or []
    for row in rows:
        if not isinstance(row, Mapping) or not row.get("AttributeId"):
            continue
        attribute_id = str(row["AttributeId"]).lower()
        known = permissions.get(attribute_id)  # several profiles: any grant allows
        permissions[attribute_id] = FieldPermission(
            attribute_id=attribute_id,
            can_create=row.get("CanCreate") == FIELD_PERMISSION_ALLOWED
            or bool(known and known.can_create),
            can_read=row.get("CanRead") == FIELD_PERMISSION_ALLOWED
            or bool(known and known.can_read),
            can_update=row.get("CanUpdate") == FIELD_PERMISSION_ALLOWED
            or bool(known and known.can_update),
        )
    return permissions
