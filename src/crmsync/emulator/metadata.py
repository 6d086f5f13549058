"""Entity and attribute definitions of the emulated Dataverse organization.

:class:`AttributeDef` and :class:`EntityDef` describe tables and columns with the properties that
the Web API exposes through ``EntityDefinitions`` (spec §9) and that the write path enforces
(spec §10): type, MaxLength, Min/Max, option values, lookup targets, required level and the
IsValidFor* flags. :class:`Catalog` is the mutable set of tables of one emulator instance: the
built-in ones from :mod:`crmsync.emulator.schema` plus custom tables and columns created through
the metadata API. The JSON rendering of definitions lives in :mod:`crmsync.emulator.metadata_api`.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

T = TypeVar("T")

_METADATA_NS = uuid.UUID("0d6f9a51-7c3e-4f0b-8f5e-2b1d4c6a8e90")

LOOKUP_TYPES = frozenset({"Lookup", "Customer", "Owner"})
STRING_TYPES = frozenset({"String", "Memo"})
NUMBER_TYPES = frozenset({"Integer", "BigInt", "Decimal", "Double", "Money"})
SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")

# AttributeType -> (AttributeTypeName.Value, the derived metadata type of the OData model)
TYPE_NAMES: Mapping[str, tuple[str, str]] = {
    "String": ("StringType", "StringAttributeMetadata"),
    "Memo": ("MemoType", "MemoAttributeMetadata"),
    "Integer": ("IntegerType", "IntegerAttributeMetadata"),
    "BigInt": ("BigIntType", "BigIntAttributeMetadata"),
    "Decimal": ("DecimalType", "DecimalAttributeMetadata"),
    "Double": ("DoubleType", "DoubleAttributeMetadata"),
    "Money": ("MoneyType", "MoneyAttributeMetadata"),
    "Boolean": ("BooleanType", "BooleanAttributeMetadata"),
    "DateTime": ("DateTimeType", "DateTimeAttributeMetadata"),
    "Picklist": ("PicklistType", "PicklistAttributeMetadata"),
    "State": ("StateType", "StateAttributeMetadata"),
    "Status": ("StatusType", "StatusAttributeMetadata"),
    "Lookup": ("LookupType", "LookupAttributeMetadata"),
    "Customer": ("CustomerType", "LookupAttributeMetadata"),
    "Owner": ("OwnerType", "LookupAttributeMetadata"),
    "Uniqueidentifier": ("UniqueidentifierType", "UniqueIdentifierAttributeMetadata"),
    "EntityName": ("EntityNameType", "EntityNameAttributeMetadata"),
}

# AttributeType -> the OData primitive type its values have on the wire (Edm.String by default)
_EDM_TYPES: Mapping[str, str] = {
    "String": "Edm.String",
    "Memo": "Edm.String",
    "Integer": "Edm.Int32",
    "BigInt": "Edm.Int64",
    "Picklist": "Edm.Int32",
    "State": "Edm.Int32",
    "Status": "Edm.Int32",
    "Boolean": "Edm.Boolean",
    "Money": "Edm.Decimal",
    "Decimal": "Edm.Decimal",
    "Double": "Edm.Double",
    "DateTime": "Edm.DateTimeOffset",
    "Uniqueidentifier": "Edm.Guid",
    "Lookup": "Edm.Guid",
    "Customer": "Edm.Guid",
    "Owner": "Edm.Guid",
}


def edm_type(attribute_type: str) -> str:
    """The ``Edm.*`` type error messages name for a column of ``attribute_type``."""
    return _EDM_TYPES.get(attribute_type, "Edm.String")


def metadata_id(*parts: str) -> str:
    """A stable MetadataId for a table or column (same name, same id, across restarts)."""
    return str(uuid.uuid5(_METADATA_NS, "/".join(parts)))


@dataclass(frozen=True, slots=True)
class OptionDef:
    """One choice of a Picklist/State/Status column; ``state`` is set on Status options."""

    value: int
    label: str
    state: int | None = None
    default_status: int | None = None  # on State options: the status a new state defaults to


@dataclass(frozen=True, slots=True)
class AttributeDef:
    """One column of a table, with the properties the platform enforces on write."""

    logical_name: str
    attribute_type: str
    display_name: str
    schema_name: str = ""
    required_level: str = "None"
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    precision: int | None = None
    options: tuple[OptionDef, ...] = ()
    targets: tuple[str, ...] = ()
    nav_names: tuple[str, ...] = ()  # one navigation property per target, same order
    format_name: str | None = None
    true_label: str = "Yes"
    false_label: str = "No"
    default_value: int | bool | None = None
    valid_for_create: bool = True
    valid_for_update: bool = True
    valid_for_read: bool = True
    is_custom: bool = False
    is_primary_id: bool = False
    is_primary_name: bool = False
    entity: str = ""
    meta_id: str = ""
    # For lookups made through RelationshipDefinitions: the relationship's schema name and its
    # CascadeConfiguration.Delete (built-in lookups take theirs from emulator.relationships).
    relationship_name: str = ""
    cascade_delete: str = ""

    @property
    def is_lookup(self) -> bool:
        """Lookup, Customer and Owner columns (read as ``_x_value``, written by bind)."""
        return self.attribute_type in LOOKUP_TYPES

    @property
    def is_polymorphic(self) -> bool:
        """A lookup with more than one target table (Customer, Owner, regarding)."""
        return len(self.targets) > 1

    @property
    def wire_name(self) -> str:
        """The property name on the wire: ``_x_value`` for lookups, else the logical name."""
        return f"_{self.logical_name}_value" if self.is_lookup else self.logical_name

    def option(self, value: int) -> OptionDef | None:
        """The option with ``value``, if the column has it."""
        for option in self.options:
            if option.value == value:
                return option
        return None

    def nav_for_target(self, target: str) -> str:
        """The single-valued navigation property that binds this lookup to ``target``."""
        return self.nav_names[self.targets.index(target)]


@dataclass(frozen=True, slots=True)
class KeyDef:
    """An alternate key: columns whose values together identify one row.

    ``status`` is the ``EntityKeyIndexStatus``: ``Active`` (usable) or ``Failed`` (existing rows
    already held duplicate values when the key was defined).
    """

    logical_name: str
    schema_name: str
    attributes: tuple[str, ...]
    display_name: str
    status: str = "Active"

    @property
    def is_active(self) -> bool:
        """Whether the key can address rows and is enforced."""
        return self.status == "Active"

    def as_json(self) -> dict[str, Any]:
        """For persistence."""
        return {
            "logical_name": self.logical_name,
            "schema_name": self.schema_name,
            "attributes": list(self.attributes),
            "display_name": self.display_name,
            "status": self.status,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> KeyDef:
        """Inverse of :meth:`as_json`."""
        return KeyDef(
            str(data["logical_name"]),
            str(data["schema_name"]),
            tuple(str(a) for a in data["attributes"]),
            str(data["display_name"]),
            str(data.get("status", "Active")),
        )


@dataclass(frozen=True, slots=True)
class EntityDef:
    """One table: names, keys, ownership and its columns by logical name."""

    logical_name: str
    schema_name: str
    entity_set_name: str
    primary_id: str
    primary_name: str
    display_name: str
    display_collection_name: str
    ownership: str = "UserOwned"
    object_type_code: int = 10000
    is_custom: bool = False
    change_tracking: bool = False
    attributes: Mapping[str, AttributeDef] = field(default_factory=dict)
    meta_id: str = ""
    keys: tuple[KeyDef, ...] = ()

    @property
    def table(self) -> str:
        """The SQLite table holding the rows."""
        return f"e_{self.logical_name}"

    def attribute(self, name: str) -> AttributeDef | None:
        """The column named ``name`` (logical name), if any."""
        return self.attributes.get(name)

    def attribute_by_wire_name(self, name: str) -> AttributeDef | None:
        """Resolve a property name as it appears in URLs: ``x`` or ``_x_value`` for lookups."""
        direct = self.attributes.get(name)
        if direct is not None:
            return direct
        if name.startswith("_") and name.endswith("_value"):
            found = self.attributes.get(name[1:-6])
            if found is not None and found.is_lookup:
                return found
        return None

    def navigation(self, nav_name: str) -> tuple[AttributeDef, str] | None:
        """The lookup column and target table of a single-valued navigation property."""
        for attribute in self.attributes.values():
            if attribute.is_lookup and nav_name in attribute.nav_names:
                return attribute, attribute.targets[attribute.nav_names.index(nav_name)]
        return None

    def with_attribute(self, attribute: AttributeDef) -> EntityDef:
        """A copy with ``attribute`` added (or replaced)."""
        attributes = dict(self.attributes)
        attributes[attribute.logical_name] = finish_attribute(self.logical_name, attribute)
        return replace(self, attributes=attributes)

    def without_attribute(self, name: str) -> EntityDef:
        """A copy without the column ``name``."""
        attributes = {k: v for k, v in self.attributes.items() if k != name}
        return replace(self, attributes=attributes)


def finish_attribute(entity: str, attribute: AttributeDef) -> AttributeDef:
    """Fill the derived fields (entity, schema name, navigation names, MetadataId)."""
    nav_names = attribute.nav_names
    if attribute.is_lookup and not nav_names:
        if attribute.attribute_type == "Owner":
            # ownerid is one navigation property to the principal base type (user or team)
            nav_names = tuple(attribute.logical_name for _ in attribute.targets)
        elif attribute.is_polymorphic:
            nav_names = tuple(f"{attribute.logical_name}_{t}" for t in attribute.targets)
        else:
            nav_names = (attribute.logical_name,)
    return replace(
        attribute,
        entity=entity,
        schema_name=attribute.schema_name or _schema_name(attribute.logical_name),
        nav_names=nav_names,
        meta_id=attribute.meta_id or metadata_id(entity, attribute.logical_name),
    )


def _schema_name(logical_name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in logical_name.split("_")) or logical_name


def plural(name: str) -> str:
    """The entity set name Dataverse derives for a new custom table."""
    if name.endswith(("s", "x", "z", "ch", "sh")):
        return name + "es"
    if name.endswith("y") and len(name) > 1 and name[-2] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


class Catalog:
    """The tables of one emulator instance, addressable by logical name and entity set name.

    Definitions are immutable values; changes (custom tables and columns) replace them whole,
    under a lock, so a request sees either the old or the new definition.
    """

    def __init__(self, entities: Iterable[EntityDef] = ()) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, EntityDef] = {}
        self._by_set: dict[str, EntityDef] = {}
        self._derived: dict[str, tuple[int, Any]] = {}
        self.version = 1
        # For RetrieveMetadataChanges: the version of each table's last change, and what was
        # deleted at which version (kind "Entity" or "Attribute", MetadataId).
        self._changed_at: dict[str, int] = {}
        self._deleted: list[tuple[int, str, str]] = []
        self.epoch = uuid.uuid4().hex[:12]
        """Names this catalog in version stamps: a stamp from another emulator run is stale."""
        for entity in entities:
            self.put(entity)

    def put(self, entity: EntityDef) -> None:
        """Add or replace a table definition."""
        with self._lock:
            old = self._by_name.get(entity.logical_name)
            self.version += 1
            if old is not None:
                self._by_set.pop(old.entity_set_name, None)
                for name, attribute in old.attributes.items():
                    if name not in entity.attributes:
                        self._deleted.append((self.version, "Attribute", attribute.meta_id))
            self._by_name[entity.logical_name] = entity
            self._by_set[entity.entity_set_name] = entity
            self._changed_at[entity.logical_name] = self.version

    def remove(self, logical_name: str) -> None:
        """Forget a table definition."""
        with self._lock:
            old = self._by_name.pop(logical_name, None)
            self.version += 1
            if old is not None:
                self._by_set.pop(old.entity_set_name, None)
                self._changed_at.pop(logical_name, None)
                self._deleted.append((self.version, "Entity", old.meta_id))
                for attribute in old.attributes.values():
                    self._deleted.append((self.version, "Attribute", attribute.meta_id))

    def changed_since(self, version: int) -> set[str]:
        """Logical names of the tables defined or changed after catalog ``version``."""
        with self._lock:
            return {name for name, at in self._changed_at.items() if at > version}

    def deleted_since(self, version: int) -> list[tuple[str, str]]:
        """``(kind, MetadataId)`` of the tables and columns deleted after ``version``."""
        with self._lock:
            return [(kind, meta) for at, kind, meta in self._deleted if at > version]

    def get(self, logical_name: str) -> EntityDef | None:
        """The table with this logical name."""
        return self._by_name.get(logical_name)

    def require(self, logical_name: str) -> EntityDef:
        """The table with this logical name; KeyError if unknown."""
        return self._by_name[logical_name]

    def by_set(self, entity_set_name: str) -> EntityDef | None:
        """The table behind an entity set name (URL segment)."""
        return self._by_set.get(entity_set_name)

    def by_meta_id(self, meta_id: str) -> EntityDef | None:
        """The table with this MetadataId."""
        wanted = meta_id.lower()
        for entity in list(self._by_name.values()):
            if entity.meta_id == wanted:
                return entity
        return None

    def derived(self, key: str, build: Callable[[Catalog], T]) -> T:
        """``build(self)``, computed once per catalog version (relationships, ``$metadata``)."""
        version = self.version
        cached = self._derived.get(key)
        if cached is not None and cached[0] == version:
            return cast(T, cached[1])
        value = build(self)
        self._derived[key] = (version, value)
        return value

    def __iter__(self) -> Iterator[EntityDef]:
        return iter(sorted(self._by_name.values(), key=lambda e: e.logical_name))


def attribute_to_json(attribute: AttributeDef) -> dict[str, Any]:
    """Serialise a definition for persistence (custom columns survive a restart)."""
    return {
        "logical_name": attribute.logical_name,
        "attribute_type": attribute.attribute_type,
        "display_name": attribute.display_name,
        "schema_name": attribute.schema_name,
        "required_level": attribute.required_level,
        "max_length": attribute.max_length,
        "min_value": attribute.min_value,
        "max_value": attribute.max_value,
        "precision": attribute.precision,
        "options": [[o.value, o.label, o.state, o.default_status] for o in attribute.options],
        "targets": list(attribute.targets),
        "nav_names": list(attribute.nav_names),
        "format_name": attribute.format_name,
        "true_label": attribute.true_label,
        "false_label": attribute.false_label,
        "default_value": attribute.default_value,
        "is_custom": attribute.is_custom,
        "is_primary_name": attribute.is_primary_name,
        "meta_id": attribute.meta_id,
        "relationship_name": attribute.relationship_name,
        "cascade_delete": attribute.cascade_delete,
    }


def attribute_from_json(data: Mapping[str, Any]) -> AttributeDef:
    """Inverse of :func:`attribute_to_json`."""
    options = tuple(OptionDef(int(v), str(lbl), s, d) for v, lbl, s, d in data["options"])
    return AttributeDef(
        logical_name=data["logical_name"],
        attribute_type=data["attribute_type"],
        display_name=data["display_name"],
        schema_name=data["schema_name"],
        required_level=data["required_level"],
        max_length=data["max_length"],
        min_value=data["min_value"],
        max_value=data["max_value"],
        precision=data["precision"],
        options=options,
        targets=tuple(data["targets"]),
        nav_names=tuple(data["nav_names"]),
        format_name=data["format_name"],
        true_label=data["true_label"],
        false_label=data["false_label"],
        default_value=data["default_value"],
        is_custom=data["is_custom"],
        is_primary_name=data["is_primary_name"],
        meta_id=data["meta_id"],
        relationship_name=str(data.get("relationship_name") or ""),
        cascade_delete=str(data.get("cascade_delete") or ""),
    )
