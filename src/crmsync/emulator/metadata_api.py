"""The metadata Web API: ``EntityDefinitions`` (+ ``Attributes``, type casts, ``$select``,
``$filter``, ``$expand``), creating and deleting custom columns and tables, and lookups through
``RelationshipDefinitions`` (spec §9).

Base ``AttributeMetadata`` properties are selectable on ``Attributes``; type-specific ones
(``MaxLength``, ``Targets``, ``MinValue`` ...) need the cast segment, as in Dataverse. Without
``$select`` every property of the row's own type is returned. Metadata is never paged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from crmsync.dataverse_codes import INVALID_ARGUMENT
from crmsync.emulator.context import ApiResponse, RequestContext, empty_response, json_response
from crmsync.emulator.errors import bad_request, no_property, segment_not_found
from crmsync.emulator.keys import create_key, key_by_segment, key_document
from crmsync.emulator.metadata import (
    TYPE_NAMES,
    AttributeDef,
    EntityDef,
    metadata_id,
    plural,
)
from crmsync.emulator.metadata_changes import create_entity, json_body, new_attribute
from crmsync.emulator.odata import evaluate, parse_filter, parse_select, split_top_level
from crmsync.emulator.relationships import (
    many_to_many,
    many_to_many_document,
    one_to_many,
    one_to_many_document,
)

_KEY = re.compile(r"^LogicalName='([^']*)'$")
_SCHEMA_KEY = re.compile(r"^SchemaName='([^']*)'$")
_RELATIONSHIP_SETS = ("OneToManyRelationships", "ManyToOneRelationships", "ManyToManyRelationships")
_ONE_TO_MANY_CAST = "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata"
_CASTS = {f"Microsoft.Dynamics.CRM.{derived}" for _, derived in TYPE_NAMES.values()}
_DERIVED_PROPERTIES = {
    "String": ("MaxLength", "FormatName", "Format", "DatabaseLength"),
    "Memo": ("MaxLength", "FormatName", "Format"),
    "Integer": ("MinValue", "MaxValue", "Format"),
    "BigInt": ("MinValue", "MaxValue"),
    "Decimal": ("MinValue", "MaxValue", "Precision"),
    "Double": ("MinValue", "MaxValue", "Precision"),
    "Money": ("MinValue", "MaxValue", "Precision", "PrecisionSource"),
    "DateTime": ("Format", "DateTimeBehavior"),
    "Boolean": ("DefaultValue",),
    "Picklist": ("DefaultFormValue",),
    "State": ("DefaultFormValue",),
    "Status": ("DefaultFormValue",),
    "Lookup": ("Targets",),
    "Customer": ("Targets",),
    "Owner": ("Targets",),
}


def label(text: str, owner: str = "") -> dict[str, Any]:
    """A ``Label`` complex value in language 1033."""
    localized = {
        "Label": text,
        "LanguageCode": 1033,
        "IsManaged": False,
        "MetadataId": metadata_id("label", owner, text),
        "HasChanged": None,
    }
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


def _managed(value: bool, name: str) -> dict[str, Any]:
    return {"Value": value, "CanBeChanged": True, "ManagedPropertyLogicalName": name}


def entity_document(ctx: RequestContext, entity: EntityDef) -> dict[str, Any]:
    """Every property of an EntityDefinition the emulator knows."""
    return {
        "MetadataId": entity.meta_id,
        "LogicalName": entity.logical_name,
        "SchemaName": entity.schema_name,
        "EntitySetName": entity.entity_set_name,
        "LogicalCollectionName": entity.entity_set_name,
        "CollectionSchemaName": plural(entity.schema_name),
        "PrimaryIdAttribute": entity.primary_id,
        "PrimaryNameAttribute": entity.primary_name or None,
        "ChangeTrackingEnabled": entity.change_tracking,
        "CanChangeTrackingBeEnabled": _managed(True, "canchangetrackingbeenabled"),
        "IsOptimisticConcurrencyEnabled": True,
        "OwnershipType": entity.ownership,
        "ObjectTypeCode": entity.object_type_code,
        "IsCustomEntity": entity.is_custom,
        "IsManaged": not entity.is_custom,
        "IsIntersect": entity.logical_name == "listmember",
        "CanCreateAttributes": _managed(True, "cancreateattributes"),
        "DisplayName": label(entity.display_name, entity.meta_id),
        "DisplayCollectionName": label(entity.display_collection_name, entity.meta_id),
        **_common_entity_properties(entity),
    }


def _common_entity_properties(entity: EntityDef) -> dict[str, Any]:
    """The other ``EntityMetadata`` properties clients commonly ``$select`` (EntityMetadata
    EntityType, https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/
    entitymetadata). No emulated table has an image column, so PrimaryImageAttribute is null."""
    activity = entity.logical_name == "task"
    return {
        "PrimaryImageAttribute": None,
        "Description": label(f"{entity.display_name} table.", entity.meta_id + "/description"),
        "TableType": "Standard",
        "EntityColor": None,
        "ExternalName": None,
        "ExternalCollectionName": None,
        "IntroducedVersion": "1.0" if entity.is_custom else "5.0.0.0",
        "IsActivity": activity,
        "IsActivityParty": False,
        "ActivityTypeMask": 1 if activity else 0,
        "HasActivities": entity.logical_name in ("account", "contact", "lead", "opportunity"),
        "HasNotes": not entity.logical_name.startswith("sdkmessage"),
        "HasEmailAddresses": "emailaddress1" in entity.attributes,
        "IsAuditEnabled": _managed(False, "canmodifyauditsettings"),
        "IsDuplicateDetectionEnabled": _managed(
            "emailaddress1" in entity.attributes, "canmodifyduplicatedetectionsettings"
        ),
        "IsValidForQueue": _managed(False, "canmodifyqueuesettings"),
        "IsCustomizable": _managed(True, "iscustomizable"),
        "IsRenameable": _managed(True, "isrenameable"),
        "IsMappable": _managed(True, "ismappable"),
        "IsConnectionsEnabled": _managed(False, "canmodifyconnectionsettings"),
        "IsMailMergeEnabled": _managed(True, "canmodifymailmergesettings"),
        "IsValidForAdvancedFind": True,
        "IsAvailableOffline": True,
        "IsBusinessProcessEnabled": False,
        "IsLogicalEntity": False,
        "IsPrivate": False,
        "IsSolutionAware": False,
        "IsStateModelAware": "statecode" in entity.attributes,
        "IsQuickCreateEnabled": False,
        "IsReadOnlyInMobileClient": _managed(False, "canmodifymobileclientreadonly"),
        "IsEnabledForCharts": True,
        "IsDocumentManagementEnabled": False,
        "IsOneNoteIntegrationEnabled": False,
        "IsSLAEnabled": False,
        "IsArchivalEnabled": False,
        "IsRetentionEnabled": False,
        "IsElasticTable": False,
        "EnforceStateTransitions": False,
        "AutoRouteToOwnerQueue": False,
        "CanTriggerWorkflow": True,
        "SyncToExternalSearchIndex": False,
        "DataProviderId": None,
        "DataSourceId": None,
        "DaysSinceRecordLastModified": 0,
        "RecurrenceBaseEntityLogicalName": None,
        "OwnerId": None,
        "OwnerIdType": 0,
    }


def attribute_document(
    ctx: RequestContext, entity: EntityDef, attribute: AttributeDef, *, derived: bool
) -> dict[str, Any]:
    """An AttributeMetadata (with its type-specific properties when ``derived``)."""
    type_name, derived_type = TYPE_NAMES.get(
        attribute.attribute_type, ("StringType", "AttributeMetadata")
    )
    document: dict[str, Any] = {
        "@odata.type": f"#Microsoft.Dynamics.CRM.{derived_type}",
        "MetadataId": attribute.meta_id,
        "LogicalName": attribute.logical_name,
        "SchemaName": attribute.schema_name,
        "EntityLogicalName": entity.logical_name,
        "AttributeType": attribute.attribute_type,
        "AttributeTypeName": {"Value": type_name},
        "AttributeOf": None,
        "RequiredLevel": _managed(False, "canmodifyrequirementlevelsettings")
        | {"Value": attribute.required_level},
        "IsValidForCreate": attribute.valid_for_create,
        "IsValidForUpdate": attribute.valid_for_update,
        "IsValidForRead": attribute.valid_for_read,
        "IsCustomAttribute": attribute.is_custom,
        "IsManaged": not attribute.is_custom,
        "IsSecured": ctx.config.is_secured(entity.logical_name, attribute.logical_name),
        "CanBeSecuredForRead": not attribute.is_primary_id,
        "CanBeSecuredForCreate": not attribute.is_primary_id,
        "CanBeSecuredForUpdate": not attribute.is_primary_id,
        "IsPrimaryId": attribute.is_primary_id,
        "IsPrimaryName": attribute.is_primary_name,
        "DisplayName": label(attribute.display_name, attribute.meta_id),
    }
    document["RequiredLevel"]["CanBeChanged"] = attribute.required_level != "SystemRequired"
    if derived:
        document.update(_derived(attribute))
    return document


def _derived(attribute: AttributeDef) -> dict[str, Any]:
    kind = attribute.attribute_type
    if kind in ("String", "Memo"):
        fmt = attribute.format_name or ("TextArea" if kind == "Memo" else "Text")
        values: dict[str, Any] = {
            "MaxLength": attribute.max_length,
            "FormatName": {"Value": fmt},
            "Format": fmt,
        }
        if kind == "String":
            values["DatabaseLength"] = (attribute.max_length or 0) * 2
        return values
    if kind in ("Integer", "BigInt"):
        return (
            {
                "MinValue": int(attribute.min_value or 0),
                "MaxValue": int(attribute.max_value or 0),
                "Format": "None",
            }
            if kind == "Integer"
            else {"MinValue": -9223372036854775808, "MaxValue": 9223372036854775807}
        )
    if kind in ("Decimal", "Double", "Money"):
        values = {
            "MinValue": attribute.min_value,
            "MaxValue": attribute.max_value,
            "Precision": attribute.precision,
        }
        if kind == "Money":
            values["PrecisionSource"] = 2
        return values
    if kind == "DateTime":
        fmt = attribute.format_name or "DateAndTime"
        behaviour = "DateOnly" if fmt == "DateOnly" else "UserLocal"
        return {"Format": fmt, "DateTimeBehavior": {"Value": behaviour}}
    if kind == "Boolean":
        return {"DefaultValue": bool(attribute.default_value)}
    if kind in ("Picklist", "State", "Status"):
        return {
            "DefaultFormValue": attribute.default_value
            if attribute.default_value is not None
            else -1
        }
    if attribute.is_lookup:
        return {"Targets": list(attribute.targets)}
    return {}


def option_set(entity: EntityDef, attribute: AttributeDef) -> dict[str, Any] | None:
    """The ``OptionSet`` navigation target of a choice or Boolean column."""
    kind = attribute.attribute_type
    base = {
        "MetadataId": metadata_id("optionset", entity.logical_name, attribute.logical_name),
        "Name": f"{entity.logical_name}_{attribute.logical_name}",
        "IsGlobal": False,
        "IsCustomOptionSet": attribute.is_custom,
    }
    if kind == "Boolean":
        return base | {
            "OptionSetType": "Boolean",
            "TrueOption": {"Value": 1, "Label": label(attribute.true_label, attribute.meta_id)},
            "FalseOption": {"Value": 0, "Label": label(attribute.false_label, attribute.meta_id)},
        }
    if kind not in ("Picklist", "State", "Status"):
        return None
    options = []
    for option in attribute.options:
        entry: dict[str, Any] = {
            "Value": option.value,
            "Label": label(option.label, attribute.meta_id),
        }
        if kind == "Status":
            entry["State"] = option.state
        if kind == "State":
            entry["DefaultStatus"] = option.default_status
        options.append(entry)
    return base | {"OptionSetType": kind, "Options": options}


def _project(
    document: dict[str, Any], select: str | None, allowed: set[str], type_name: str
) -> dict[str, Any]:
    if select is None:
        return document
    names = parse_select(select)
    for name in names:
        if name not in allowed:
            raise no_property(name, type_name)
    keep = {"MetadataId", "@odata.type", *names}
    return {k: v for k, v in document.items() if k in keep}


def _split_options(text: str) -> list[tuple[str, dict[str, str]]]:
    """``A($select=x;$filter=y),B`` -> [("A", {"$select": "x", "$filter": "y"}), ("B", {})]."""
    items: list[tuple[str, dict[str, str]]] = []
    for raw in split_top_level(text, ","):
        piece = raw.strip()
        if not piece:
            continue
        name, _, rest = piece.partition("(")
        options: dict[str, str] = {}
        if rest:
            for part in split_top_level(rest[:-1], ";"):
                if part.strip():
                    key, _, value = part.partition("=")
                    options[key.strip()] = value
        items.append((name.strip(), options))
    return items


class MetadataApi:
    """Answers ``EntityDefinitions`` and ``RelationshipDefinitions`` requests."""

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx

    # -- addressing ------------------------------------------------------------------------

    def entity_by_key(self, key: str) -> EntityDef:
        """``LogicalName='lead'`` or a MetadataId."""
        match = _KEY.match(key)
        entity = (
            self.ctx.catalog.get(match.group(1))
            if match
            else self.ctx.catalog.by_meta_id(key.strip())
        )
        if entity is None:
            raise segment_not_found(f"EntityDefinitions({key})")
        return entity

    @staticmethod
    def attribute_by_key(entity: EntityDef, key: str) -> AttributeDef:
        """``LogicalName='firstname'`` or a MetadataId."""
        match = _KEY.match(key)
        if match:
            found = entity.attributes.get(match.group(1))
        else:
            found = next(
                (a for a in entity.attributes.values() if a.meta_id == key.strip().lower()), None
            )
        if found is None:
            raise segment_not_found(f"Attributes({key})")
        return found

    # -- reads -----------------------------------------------------------------------------

    def entity_json(self, entity: EntityDef, query: Mapping[str, str]) -> dict[str, Any]:
        """One EntityDefinition with ``$select`` and ``$expand`` applied."""
        document = entity_document(self.ctx, entity)
        projected = _project(document, query.get("$select"), set(document), "EntityMetadata")
        for name, options in _split_options(query.get("$expand", "")):
            if name == "Attributes":
                projected["Attributes"] = self.attributes_json(entity, None, options)
            elif name == "Keys":
                documents = [key_document(entity, key) for key in entity.keys]
                projected["Keys"] = _filter_and_project(documents, options, "EntityKeyMetadata")
            elif name in _RELATIONSHIP_SETS:
                projected[name] = self.relationships_json(entity, name, options)
            else:
                raise no_property(name, "EntityMetadata")
        return projected

    def relationships_json(
        self, entity: EntityDef, kind: str, query: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """``OneToManyRelationships`` / ``ManyToOneRelationships`` / ``ManyToManyRelationships``
        of one table, with ``$select`` and ``$filter`` applied."""
        name = entity.logical_name
        documents: list[dict[str, Any]]
        if kind == "ManyToManyRelationships":
            documents = [
                many_to_many_document(r)
                for r in many_to_many(self.ctx.catalog)
                if name in (r.entity1, r.entity2)
            ]
            type_name = "ManyToManyRelationshipMetadata"
        else:
            side = "referenced_entity" if kind == "OneToManyRelationships" else "referencing_entity"
            documents = [
                one_to_many_document(r)
                for r in one_to_many(self.ctx.catalog)
                if getattr(r, side) == name
            ]
            type_name = "OneToManyRelationshipMetadata"
        return _filter_and_project(documents, query, type_name)

    def attributes_json(
        self, entity: EntityDef, cast: str | None, query: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """The Attributes collection, optionally cast to one derived type."""
        node = parse_filter(query["$filter"]) if query.get("$filter") else None
        results = []
        for attribute in entity.attributes.values():
            if (
                cast is not None
                and f"Microsoft.Dynamics.CRM.{TYPE_NAMES[attribute.attribute_type][1]}" != cast
            ):
                continue
            document = attribute_document(self.ctx, entity, attribute, derived=True)
            if node is not None and not evaluate(node, document):
                continue
            results.append(self._attribute_view(entity, attribute, document, cast, query))
        return results

    def _attribute_view(
        self,
        entity: EntityDef,
        attribute: AttributeDef,
        document: dict[str, Any],
        cast: str | None,
        query: Mapping[str, str],
    ) -> dict[str, Any]:
        base = set(attribute_document(self.ctx, entity, attribute, derived=False))
        allowed = (
            base | set(_DERIVED_PROPERTIES.get(attribute.attribute_type, ())) if cast else base
        )
        type_name = cast.rsplit(".", 1)[1] if cast else "AttributeMetadata"
        projected = _project(document, query.get("$select"), allowed, type_name)
        for name, _ in _split_options(query.get("$expand", "")):
            if name == "OptionSet":
                projected["OptionSet"] = option_set(entity, attribute)
            elif name == "GlobalOptionSet":
                projected["GlobalOptionSet"] = None
            else:
                raise no_property(name, type_name)
        return projected

    def get(self, segments: list[str], query: Mapping[str, str]) -> ApiResponse:
        """Dispatch a GET below ``EntityDefinitions`` (with globalmetadataversion on request)."""
        answer = self._get(segments, query)
        if self.ctx.prefs.wants("Microsoft.Dynamics.CRM.globalmetadataversion"):
            document = json.loads(answer.body)
            document["@Microsoft.Dynamics.CRM.globalmetadataversion"] = str(
                self.ctx.catalog.version
            )
            answer = json_response(answer.status, document)
        return answer

    def _get(self, segments: list[str], query: Mapping[str, str]) -> ApiResponse:
        base = f"{self.ctx.base_url}/$metadata#EntityDefinitions"
        if len(segments) == 1 and segments[0] == "EntityDefinitions":
            node = parse_filter(query["$filter"]) if query.get("$filter") else None
            values = []
            for entity in self.ctx.catalog:
                if node is not None and not evaluate(node, entity_document(self.ctx, entity)):
                    continue
                values.append(self.entity_json(entity, query))
            return json_response(200, {"@odata.context": base, "value": values})
        entity = self.entity_by_key(_key_of(segments[0]))
        if len(segments) == 1:
            return json_response(
                200, {"@odata.context": f"{base}/$entity", **self.entity_json(entity, query)}
            )
        head, *rest = segments[1:]
        cast = rest[0] if rest else None
        if cast is not None and cast not in _CASTS:
            raise segment_not_found(cast)
        if head == "Attributes":
            values = self.attributes_json(entity, cast, query)
            return json_response(
                200, {"@odata.context": f"{base}({entity.meta_id})/Attributes", "value": values}
            )
        if head.startswith("Attributes("):
            attribute = self.attribute_by_key(entity, _key_of(head))
            derived = TYPE_NAMES[attribute.attribute_type][1]
            if cast is not None and cast != f"Microsoft.Dynamics.CRM.{derived}":
                raise segment_not_found(cast)
            document = attribute_document(self.ctx, entity, attribute, derived=True)
            view = self._attribute_view(entity, attribute, document, cast, query)
            return json_response(
                200, {"@odata.context": f"{base}({entity.meta_id})/Attributes/$entity", **view}
            )
        if head == "Keys" and not rest:
            documents = [key_document(entity, key) for key in entity.keys]
            values = _filter_and_project(documents, query, "EntityKeyMetadata")
            return json_response(
                200, {"@odata.context": f"{base}({entity.meta_id})/Keys", "value": values}
            )
        if head.startswith("Keys(") and not rest:
            document = key_document(entity, key_by_segment(entity, head))
            view = _filter_and_project([document], query, "EntityKeyMetadata")[0]
            return json_response(
                200, {"@odata.context": f"{base}({entity.meta_id})/Keys/$entity", **view}
            )
        if head in _RELATIONSHIP_SETS and not rest:
            values = self.relationships_json(entity, head, query)
            return json_response(
                200, {"@odata.context": f"{base}({entity.meta_id})/{head}", "value": values}
            )
        raise segment_not_found(head)

    def relationship_definitions(
        self, segments: list[str], query: Mapping[str, str]
    ) -> ApiResponse:
        """``GET RelationshipDefinitions``, ``RelationshipDefinitions(SchemaName='x')`` and the
        one-to-many relationships alone, cast to
        ``RelationshipDefinitions/Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata`` (then
        ``ReferencedEntity``, ``ReferencingEntity``, ... are selectable, as in Dataverse)."""
        catalog = self.ctx.catalog
        if segments == ["RelationshipDefinitions", _ONE_TO_MANY_CAST]:
            cast = [one_to_many_document(r) for r in one_to_many(catalog)]
            values = _filter_and_project(cast, query, "OneToManyRelationshipMetadata")
            context = f"{self.ctx.base_url}/$metadata#RelationshipDefinitions/{_ONE_TO_MANY_CAST}"
            return json_response(200, {"@odata.context": context, "value": values})
        documents = [one_to_many_document(r) for r in one_to_many(catalog)] + [
            many_to_many_document(r) for r in many_to_many(catalog)
        ]
        base = f"{self.ctx.base_url}/$metadata#RelationshipDefinitions"
        if len(segments) == 1 and segments[0] == "RelationshipDefinitions":
            values = _filter_and_project(documents, query, "RelationshipMetadataBase")
            return json_response(200, {"@odata.context": base, "value": values})
        if len(segments) == 1:
            key = _key_of(segments[0])
            match = _SCHEMA_KEY.match(key)
            wanted = match.group(1) if match else key.strip().lower()
            field = "SchemaName" if match else "MetadataId"
            for document in documents:
                if document[field] == wanted:
                    view = _filter_and_project([document], query, "RelationshipMetadataBase")
                    return json_response(200, {"@odata.context": f"{base}/$entity", **view[0]})
        raise segment_not_found("/".join(segments))

    # -- writes ----------------------------------------------------------------------------

    def post(self, segments: list[str], body: bytes) -> ApiResponse:
        """Create a custom table (``POST EntityDefinitions``) or column (``.../Attributes``)."""
        payload = json_body(body)
        if segments == ["EntityDefinitions"]:
            return create_entity(self.ctx, payload)
        if len(segments) == 2 and segments[1] == "Keys":
            return create_key(self.ctx, self.entity_by_key(_key_of(segments[0])), payload)
        if len(segments) == 2 and segments[1] == "Attributes":
            entity = self.entity_by_key(_key_of(segments[0]))
            attribute = new_attribute(entity, payload)
            created = self.ctx.storage.add_attribute(entity.logical_name, attribute)
            url = (
                f"{self.ctx.base_url}/EntityDefinitions({entity.meta_id})"
                f"/Attributes({created.meta_id})"
            )
            return empty_response(204, [("OData-EntityId", url)])
        raise segment_not_found("/".join(segments))

    def put(self, segments: list[str], body: bytes) -> ApiResponse:
        """``PUT EntityDefinitions(...)``: the emulator applies ``ChangeTrackingEnabled`` only.

        Dataverse expects the whole definition back; other properties are accepted and left
        as they are. Change tracking, once enabled, cannot be disabled (spec §4).
        """
        if len(segments) != 1:
            raise segment_not_found("/".join(segments))
        entity = self.entity_by_key(_key_of(segments[0]))
        wanted = json_body(body).get("ChangeTrackingEnabled")
        if wanted is True and not entity.change_tracking:
            self.ctx.storage.enable_change_tracking(entity)
        elif wanted is False and entity.change_tracking:
            raise bad_request(
                INVALID_ARGUMENT,
                f"Change tracking cannot be disabled for the entity '{entity.logical_name}' "
                "once it has been enabled.",
            )
        return empty_response(204)

    def delete(self, segments: list[str]) -> ApiResponse:
        """Delete a custom table or a custom column."""
        entity = self.entity_by_key(_key_of(segments[0]))
        if len(segments) == 1:
            if not entity.is_custom:
                raise bad_request(
                    INVALID_ARGUMENT,
                    f"The entity '{entity.logical_name}' is not a custom entity and cannot be "
                    "deleted.",
                )
            self.ctx.storage.drop_entity(entity)
            return empty_response(204)
        if len(segments) == 2 and segments[1].startswith("Keys("):
            key = key_by_segment(entity, segments[1])
            self.ctx.storage.remove_key(entity.logical_name, key.logical_name)
            return empty_response(204)
        if len(segments) == 2 and segments[1].startswith("Attributes("):
            attribute = self.attribute_by_key(entity, _key_of(segments[1]))
            if not attribute.is_custom or attribute.is_primary_name:
                raise bad_request(
                    INVALID_ARGUMENT,
                    f"The attribute '{attribute.logical_name}' is not a custom attribute and "
                    "cannot be deleted.",
                )
            self.ctx.storage.remove_attribute(entity.logical_name, attribute.logical_name)
            return empty_response(204)
        raise segment_not_found("/".join(segments))


def _filter_and_project(
    documents: list[dict[str, Any]], query: Mapping[str, str], type_name: str
) -> list[dict[str, Any]]:
    node = parse_filter(query["$filter"]) if query.get("$filter") else None
    results = []
    for document in documents:
        if node is not None and not evaluate(node, document):
            continue
        allowed = set(document)
        results.append(_project(document, query.get("$select"), allowed, type_name))
    return results


def _key_of(segment: str) -> str:
    start = segment.find("(")
    if start < 0 or not segment.endswith(")"):
        raise segment_not_found(segment)
    return segment[start + 1 : -1]
