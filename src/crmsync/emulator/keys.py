"""Alternate keys: defining them through metadata, addressing rows by them, keeping them unique.

Microsoft Learn, "Define alternate keys using the Web API" (https://learn.microsoft.com/
power-apps/developer/data-platform/define-alternate-keys-entity) and "Use an alternate key to
reference a record" (.../use-alternate-key-reference-record):

* ``POST EntityDefinitions(LogicalName='account')/Keys`` with ``SchemaName``, ``DisplayName``
  and ``KeyAttributes`` defines a key (204 + ``OData-EntityId``); ``GET .../Keys`` and
  ``$expand=Keys`` list ``EntityKeyMetadata``; ``DELETE .../Keys(LogicalName='x')`` removes one.
  Columns must be Decimal, Integer, String, DateTime, Lookup or Picklist and not secured; at
  most 16 columns and 10 keys per table.
* ``accounts(accountnumber='ABC')``, ``contacts(firstname='Joe',emailaddress1='j@x.example')``
  and ``accounts(_primarycontactid_value=<guid>)`` address a row in GET, PATCH (upsert: a
  missing row is created with the key values; body values win), DELETE, ``@odata.bind`` and
  UpsertMultiple's ``@odata.id``.
* A second row with the same key values is refused: 412 ``0x80060892``
  DuplicateRecordEntityKey (status assumed in spec §13).

Simplified: the key's index is built at once, so a new key is ``Active`` immediately, or
``Failed`` when existing rows already hold duplicate values (Dataverse builds it in a system
job, passing through ``Pending``/``InProgress``).
"""

# SQL identifiers here come from validated metadata (SAFE_NAME) and are quoted by q();
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from crmsync.dataverse_codes import DUPLICATE_ENTITY_KEY, INVALID_ARGUMENT, ODATA_URI_ERROR
from crmsync.emulator.context import ApiResponse, RequestContext, empty_response
from crmsync.emulator.errors import bad_request, precondition_failed, segment_not_found
from crmsync.emulator.metadata import SAFE_NAME, EntityDef, KeyDef, metadata_id
from crmsync.emulator.odata import Literal
from crmsync.emulator.query import literal_to_storage
from crmsync.emulator.storage import q

KEY_TYPES = frozenset({"Decimal", "Integer", "String", "DateTime", "Lookup", "Picklist"})
MAX_KEYS, MAX_KEY_COLUMNS = 10, 16
_PAIR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^']|'')*'|[^,']+?)\s*(?:,|$)")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def invalid_key(entity: EntityDef) -> Exception:
    """The documented 400 for key properties that match no key of the table."""
    return bad_request(
        ODATA_URI_ERROR,
        f"The key in the request URI is not valid for resource "
        f"'Microsoft.Dynamics.CRM.{entity.logical_name}'. Ensure that the names and number of "
        "key properties match the declared or alternate key properties for the resource.",
    )


def _pairs(entity: EntityDef, text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _PAIR.match(text, position)
        if match is None or match.end() == position:
            raise invalid_key(entity)
        pairs.append((match.group(1), match.group(2)))
        position = match.end()
    return pairs


def _literal(raw: str) -> Literal:
    if raw.startswith("'"):
        return Literal(raw[1:-1].replace("''", "'"), "string")
    if _GUID.match(raw):
        return Literal(raw.lower(), "guid")
    if _NUMBER.match(raw):
        return Literal(float(raw) if "." in raw else int(raw), "number")
    if re.match(r"^\d{4}-\d{2}-\d{2}", raw):
        return Literal(raw, "datetime")
    return Literal(raw, "enum")


def parse_key(entity: EntityDef, text: str) -> dict[str, Any]:
    """``name='v',other=2`` -> {column: stored value} for one active key of ``entity``."""
    values: dict[str, Any] = {}
    for name, raw in _pairs(entity, text):
        attribute = entity.attribute_by_wire_name(name)
        if attribute is None or attribute.logical_name in values:
            raise invalid_key(entity)
        values[attribute.logical_name] = literal_to_storage(attribute, _literal(raw))
    wanted = set(values)
    if not any(key.is_active and set(key.attributes) == wanted for key in entity.keys):
        raise invalid_key(entity)
    return values


def find(ctx: RequestContext, entity: EntityDef, values: Mapping[str, Any]) -> str | None:
    """The id of the row holding these key values, if any."""
    names = list(values)
    where = " AND ".join(f"{q(name)} = ?" for name in names)
    with ctx.storage.lock:
        row = ctx.storage.execute(
            f"SELECT {q(entity.primary_id)} FROM {q(entity.table)} WHERE {where} LIMIT 1",
            [values[name] for name in names],
        ).fetchone()
    return str(row[0]) if row is not None else None


def as_body(ctx: RequestContext, entity: EntityDef, values: Mapping[str, Any]) -> dict[str, Any]:
    """Key values as a create payload (lookups as ``@odata.bind``)."""
    body: dict[str, Any] = {}
    for name, value in values.items():
        attribute = entity.attributes[name]
        if attribute.is_lookup:
            target = ctx.catalog.require(attribute.targets[0])
            body[f"{attribute.nav_names[0]}@odata.bind"] = f"/{target.entity_set_name}({value})"
        else:
            body[name] = value
    return body


def check_unique(
    ctx: RequestContext, entity: EntityDef, record_id: str | None, columns: Mapping[str, Any]
) -> None:
    """412 DuplicateRecordEntityKey when another row holds the same values of an active key.

    ``columns`` are the row's stored values after the write (at least the key columns).
    """
    for key in entity.keys:
        if not key.is_active or any(columns.get(a) is None for a in key.attributes):
            continue
        other = find(ctx, entity, {a: columns[a] for a in key.attributes})
        if other is not None and other != (record_id or "").lower():
            listed = ", ".join(key.attributes)
            raise precondition_failed(
                f"Entity Key {key.schema_name} violated. A record with the same value for "
                f"{listed} already exists. A duplicate record cannot be created. Try using a "
                "different value.",
                DUPLICATE_ENTITY_KEY,
            )


def key_columns(entity: EntityDef) -> list[str]:
    """Every column of an active key (what a write must read to check uniqueness)."""
    return sorted({a for key in entity.keys if key.is_active for a in key.attributes})


# -- metadata ----------------------------------------------------------------------------------


def key_document(entity: EntityDef, key: KeyDef) -> dict[str, Any]:
    """An ``EntityKeyMetadata``."""
    localized = {"Label": key.display_name, "LanguageCode": 1033}
    return {
        "MetadataId": metadata_id("key", entity.logical_name, key.logical_name),
        "LogicalName": key.logical_name,
        "SchemaName": key.schema_name,
        "EntityLogicalName": entity.logical_name,
        "KeyAttributes": list(key.attributes),
        "EntityKeyIndexStatus": key.status,
        "DisplayName": {"LocalizedLabels": [localized], "UserLocalizedLabel": localized},
        "IsManaged": False,
        "IsCustomizable": {
            "Value": True,
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "iscustomizable",
        },
        "IntroducedVersion": "1.0",
        "AsyncJob": None,
        "IsSynchronous": False,
        "IsExportKey": False,
        "IsSecondaryKey": False,
    }


def create_key(ctx: RequestContext, entity: EntityDef, payload: Mapping[str, Any]) -> ApiResponse:
    """``POST EntityDefinitions(...)/Keys``."""
    schema = payload.get("SchemaName")
    if not isinstance(schema, str) or not SAFE_NAME.match(schema.lower()):
        raise bad_request(INVALID_ARGUMENT, "The key needs a valid SchemaName.")
    name = schema.lower()
    if any(key.logical_name == name for key in entity.keys):
        raise bad_request(INVALID_ARGUMENT, f"A key named {name} already exists.")
    if len(entity.keys) >= MAX_KEYS:
        raise bad_request(INVALID_ARGUMENT, f"A table can have at most {MAX_KEYS} keys.")
    columns = payload.get("KeyAttributes")
    if (
        not isinstance(columns, list)
        or not columns
        or len(columns) > MAX_KEY_COLUMNS
        or len(set(map(str, columns))) != len(columns)
    ):
        raise bad_request(
            INVALID_ARGUMENT,
            f"KeyAttributes must list 1 to {MAX_KEY_COLUMNS} distinct column logical names.",
        )
    for column in columns:
        attribute = entity.attributes.get(str(column))
        if attribute is None or attribute.attribute_type not in KEY_TYPES:
            raise bad_request(
                INVALID_ARGUMENT,
                f"The column '{column}' cannot be part of a key: keys take Decimal, Integer, "
                "String, DateTime, Lookup and Picklist columns.",
            )
        if ctx.config.is_secured(entity.logical_name, attribute.logical_name):
            raise bad_request(
                INVALID_ARGUMENT, f"The secured column '{column}' cannot be part of a key."
            )
    attributes = tuple(str(c) for c in columns)
    display = payload.get("DisplayName")
    label = _label(display) or schema
    status = "Failed" if _has_duplicates(ctx, entity, attributes) else "Active"
    ctx.storage.add_key(entity.logical_name, KeyDef(name, schema, attributes, label, status))
    key_id = metadata_id("key", entity.logical_name, name)
    url = f"{ctx.base_url}/EntityDefinitions({entity.meta_id})/Keys({key_id})"
    return empty_response(204, [("OData-EntityId", url)])


def _label(value: object) -> str | None:
    if isinstance(value, dict):
        labels = value.get("LocalizedLabels")
        if isinstance(labels, list) and labels and isinstance(labels[0], dict):
            text = labels[0].get("Label")
            return str(text) if text else None
    return None


def _has_duplicates(ctx: RequestContext, entity: EntityDef, attributes: tuple[str, ...]) -> bool:
    columns = ", ".join(q(a) for a in attributes)
    present = " AND ".join(f"{q(a)} IS NOT NULL" for a in attributes)
    with ctx.storage.lock:
        row = ctx.storage.execute(
            f"SELECT 1 FROM {q(entity.table)} WHERE {present} GROUP BY {columns} "
            "HAVING COUNT(*) > 1 LIMIT 1"
        ).fetchone()
    return row is not None


def key_by_segment(entity: EntityDef, segment: str) -> KeyDef:
    """``Keys(LogicalName='x')`` or ``Keys(<MetadataId>)``."""
    inner = segment[segment.find("(") + 1 : -1] if segment.endswith(")") else ""
    match = re.match(r"^LogicalName='([^']*)'$", inner)
    for key in entity.keys:
        if match and key.logical_name == match.group(1):
            return key
        if not match and metadata_id("key", entity.logical_name, key.logical_name) == inner.lower():
            return key
    raise segment_not_found(segment)
