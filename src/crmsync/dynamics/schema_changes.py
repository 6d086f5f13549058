"""Which table definitions changed since a version stamp (``RetrieveMetadataChanges``), and
table schemas as JSON so they can be kept between runs.

Dataverse's way to keep a schema cache (spec §9; "Query schema definitions and detect
changes"): ask ``RetrieveMetadataChanges`` with the ``ServerVersionStamp`` of the previous
answer as ``ClientVersionStamp``; the answer names only the tables changed since, plus the
MetadataIds of deleted tables and columns. A stamp Dynamics no longer knows is refused with
ExpiredVersionStamp (``0x80044352``): then everything is read again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from crmsync.dynamics.types import AttributeSchema, AttributeType, EntitySchema

FUNCTION = "RetrieveMetadataChanges"
DELETED_FILTERS = "Microsoft.Dynamics.CRM.DeletedMetadataFilters'Entity,Attribute'"


@dataclass(frozen=True, slots=True)
class SchemaChanges:
    """The answer of one ``RetrieveMetadataChanges``: the stamp to ask with next time, the
    tables changed since the stamp asked with, the MetadataIds deleted since, and whether
    that stamp had expired (then every table counts as changed)."""

    stamp: str
    changed: frozenset[str]
    deleted_ids: frozenset[str]
    expired: bool = False


def changes_url(entities: Sequence[str], stamp: str | None) -> str:
    """The function call asking which of ``entities`` changed since ``stamp`` (only their
    logical names come back; ``None``: just the current stamp and every table)."""
    query = {
        "Criteria": {
            "FilterOperator": "And",
            "Conditions": [
                {
                    "PropertyName": "LogicalName",
                    "ConditionOperator": "In",
                    "Value": {"Type": "System.String[]", "Value": json.dumps(list(entities))},
                }
            ],
        },
        "Properties": {"AllProperties": False, "PropertyNames": ["LogicalName"]},
    }
    arguments = [f"@q={quote(json.dumps(query, separators=(',', ':')), safe='')}"]
    signature = "Query=@q"
    if stamp is not None:
        signature += ",ClientVersionStamp=@s,DeletedMetadataFilters=@d"
        arguments.append(f"@s={quote(_literal(stamp), safe='')}")
        arguments.append(f"@d={quote(DELETED_FILTERS, safe='')}")
    return f"{FUNCTION}({signature})?{'&'.join(arguments)}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def parse_changes(document: Mapping[str, Any]) -> SchemaChanges:
    """A ``RetrieveMetadataChangesResponse`` → :class:`SchemaChanges`."""
    changed = {
        str(row["LogicalName"])
        for row in document.get("EntityMetadata") or []
        if isinstance(row, Mapping) and row.get("LogicalName")
    }
    deleted: set[str] = set()
    collection = document.get("DeletedMetadata")
    if isinstance(collection, Mapping):
        for ids in collection.get("Values") or []:
            if isinstance(ids, list):
                deleted.update(str(i).lower() for i in ids)
    return SchemaChanges(
        stamp=str(document.get("ServerVersionStamp") or ""),
        changed=frozenset(changed),
        deleted_ids=frozenset(deleted),
    )


def touched_by(schema: EntitySchema, deleted_ids: Iterable[str]) -> bool:
    """Whether a deletion named by MetadataId is this table or one of its columns."""
    ids = set(deleted_ids)
    if not ids:
        return False
    if schema.metadata_id and schema.metadata_id in ids:
        return True
    return any(a.metadata_id in ids for a in schema.attributes.values() if a.metadata_id)


def schema_to_json(schema: EntitySchema) -> dict[str, Any]:
    """A table schema as plain JSON (see :func:`schema_from_json`)."""
    attributes = []
    for attribute in schema.attributes.values():
        row = {f.name: getattr(attribute, f.name) for f in fields(attribute)}
        row["type"] = attribute.type.value
        row["options"] = [[value, text] for value, text in attribute.options.items()]
        row["targets"] = list(attribute.targets)
        attributes.append(row)
    document = {f.name: getattr(schema, f.name) for f in fields(schema) if f.name != "attributes"}
    document["attributes"] = attributes
    return document


def schema_from_json(document: Mapping[str, Any]) -> EntitySchema:
    """The table schema :func:`schema_to_json` wrote; raises ``KeyError``/``TypeError``/
    ``ValueError`` for anything else."""
    attributes: dict[str, AttributeSchema] = {}
    for row in document["attributes"]:
        values = dict(row)
        values["type"] = AttributeType(values["type"])
        values["options"] = MappingProxyType({int(v): str(t) for v, t in values["options"]})
        values["targets"] = tuple(str(t) for t in values["targets"])
        attribute = AttributeSchema(**values)
        attributes[attribute.logical_name] = attribute
    fields = {key: value for key, value in document.items() if key != "attributes"}
    return EntitySchema(**fields, attributes=MappingProxyType(attributes))
