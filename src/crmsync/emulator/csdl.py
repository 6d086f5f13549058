"""The service document and the CSDL ``$metadata`` document, generated from the catalog.

* ``GET /api/data/v9.2/`` answers the OData service document: one ``EntitySet`` entry per
  table (OData JSON Format 4.01 §5, "Service Document"; Dataverse's "Web API service documents",
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/web-api-service-documents).
* ``GET /api/data/v9.2/$metadata`` answers the CSDL XML (OData CSDL XML 4.01) of the
  ``Microsoft.Dynamics.CRM`` namespace (alias ``mscrm``): an entity type per table (key,
  properties with their EDM types and ``MaxLength``, lookups as ``_x_value`` plus their
  single-valued navigation properties with referential constraints, the collection-valued
  navigation properties of each relationship), the functions and actions the emulator serves,
  and the ``System`` entity container. With ``?annotations=true`` tracked entity sets carry
  ``Org.OData.Capabilities.V1.ChangeTracking`` (spec §4).

Simplified: Dataverse's document declares every table of the org, the ``activitypointer``
hierarchy and many more operations; only what the emulator serves is declared here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

from crmsync.emulator.context import ApiResponse, RequestContext, json_response
from crmsync.emulator.messages import RESPONSE_TYPES, SERVED, Message
from crmsync.emulator.metadata import Catalog, EntityDef, edm_type
from crmsync.emulator.relationships import many_to_many, one_to_many

_EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
_EDM = "http://docs.oasis-open.org/odata/ns/edm"
_NAMESPACE = "Microsoft.Dynamics.CRM"
_PRINCIPALS = ("systemuser", "team")
_CAPABILITIES = (
    "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Capabilities.V1.xml"
)


def service_document(ctx: RequestContext) -> ApiResponse:
    """The OData service document: every entity set, by name and relative URL."""
    values = [
        {"name": e.entity_set_name, "kind": "EntitySet", "url": e.entity_set_name}
        for e in ctx.catalog
    ]
    return json_response(200, {"@odata.context": f"{ctx.base_url}/$metadata", "value": values})


def metadata_document(ctx: RequestContext, query: Mapping[str, str]) -> ApiResponse:
    """The CSDL XML document (``annotations=true`` adds the change-tracking annotations)."""
    annotated = query.get("annotations", "").lower() == "true"
    key = "csdl-annotated" if annotated else "csdl"
    body = ctx.catalog.derived(key, lambda catalog: _render(catalog, annotated=annotated))
    return ApiResponse(
        200,
        [("Content-Type", "application/xml"), ("OData-Version", "4.0")],
        body,
    )


def _render(catalog: Catalog, *, annotated: bool) -> bytes:
    ET.register_namespace("edmx", _EDMX)
    root = ET.Element(f"{{{_EDMX}}}Edmx", {"Version": "4.0"})
    if annotated:
        reference = ET.SubElement(
            root,
            f"{{{_EDMX}}}Reference",
            {"Uri": _CAPABILITIES},
        )
        ET.SubElement(
            reference,
            f"{{{_EDMX}}}Include",
            {"Namespace": "Org.OData.Capabilities.V1", "Alias": "Capabilities"},
        )
    services = ET.SubElement(root, f"{{{_EDMX}}}DataServices")
    schema = ET.SubElement(
        services, "Schema", {"xmlns": _EDM, "Namespace": _NAMESPACE, "Alias": "mscrm"}
    )
    ET.SubElement(schema, "EntityType", {"Name": "crmbaseentity", "Abstract": "true"})
    ET.SubElement(
        schema,
        "EntityType",
        {"Name": "principal", "BaseType": "mscrm.crmbaseentity", "Abstract": "true"},
    )
    collections = _collection_navigations(catalog)
    for entity in catalog:
        _entity_type(schema, entity, catalog, collections.get(entity.logical_name, []))
    for name, properties in RESPONSE_TYPES.items():
        complex_type = ET.SubElement(schema, "ComplexType", {"Name": name})
        for prop, edm in properties:
            ET.SubElement(complex_type, "Property", {"Name": prop, "Type": edm})
    for message in SERVED:
        _operation(schema, message)
    _container(schema, catalog, collections, annotated=annotated)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>' + document


def _collection_navigations(catalog: Catalog) -> dict[str, list[tuple[str, str, str]]]:
    """Per table, its collection-valued navigation properties: (name, related table, partner)."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for relationship in one_to_many(catalog):
        found.setdefault(relationship.referenced_entity, []).append(
            (
                relationship.referenced_navigation,
                relationship.referencing_entity,
                relationship.referencing_navigation,
            )
        )
    for association in many_to_many(catalog):
        name = association.schema_name
        found.setdefault(association.entity1, []).append((name, association.entity2, name))
        found.setdefault(association.entity2, []).append((name, association.entity1, name))
    return found


def _entity_type(
    schema: ET.Element,
    entity: EntityDef,
    catalog: Catalog,
    collections: list[tuple[str, str, str]],
) -> None:
    base = "mscrm.principal" if entity.logical_name in _PRINCIPALS else "mscrm.crmbaseentity"
    element = ET.SubElement(schema, "EntityType", {"Name": entity.logical_name, "BaseType": base})
    key = ET.SubElement(element, "Key")
    ET.SubElement(key, "PropertyRef", {"Name": entity.primary_id})
    for attribute in entity.attributes.values():
        facets = {"Name": attribute.wire_name, "Type": edm_type(attribute.attribute_type)}
        if attribute.is_primary_id:
            facets["Nullable"] = "false"
        if attribute.attribute_type in ("String", "Memo") and attribute.max_length:
            facets["MaxLength"] = str(attribute.max_length)
        if attribute.attribute_type in ("Money", "Decimal"):
            facets["Scale"] = "Variable"
        ET.SubElement(element, "Property", facets)
    seen: set[str] = set()
    for attribute in entity.attributes.values():
        if not attribute.is_lookup:
            continue
        for target, nav in zip(attribute.targets, attribute.nav_names, strict=True):
            if nav in seen or catalog.get(target) is None:
                continue
            seen.add(nav)
            owner = attribute.attribute_type == "Owner"
            related = "mscrm.principal" if owner else f"mscrm.{target}"
            navigation = ET.SubElement(
                element, "NavigationProperty", {"Name": nav, "Type": related}
            )
            if not owner:
                ET.SubElement(
                    navigation,
                    "ReferentialConstraint",
                    {
                        "Property": attribute.wire_name,
                        "ReferencedProperty": catalog.require(target).primary_id,
                    },
                )
    for name, related_table, partner in collections:
        if name in seen:
            continue
        seen.add(name)
        ET.SubElement(
            element,
            "NavigationProperty",
            {"Name": name, "Type": f"Collection(mscrm.{related_table})", "Partner": partner},
        )


def _operation(schema: ET.Element, message: Message) -> None:
    attributes = {"Name": message.name}
    if message.bound_to:
        attributes["IsBound"] = "true"
    element = ET.SubElement(schema, message.kind, attributes)
    if message.bound_to:
        binding = "entityset" if message.bound_to.startswith("Collection(") else "entity"
        ET.SubElement(
            element,
            "Parameter",
            {"Name": binding, "Type": message.bound_to, "Nullable": "false"},
        )
    for parameter in message.parameters:
        facets = {"Name": parameter.name, "Type": parameter.type}
        if not parameter.nullable:
            facets["Nullable"] = "false"
        ET.SubElement(element, "Parameter", facets)
    if message.returns:
        ET.SubElement(element, "ReturnType", {"Type": message.returns, "Nullable": "false"})


def _container(
    schema: ET.Element,
    catalog: Catalog,
    collections: Mapping[str, list[tuple[str, str, str]]],
    *,
    annotated: bool,
) -> None:
    container = ET.SubElement(schema, "EntityContainer", {"Name": "System"})
    for entity in catalog:
        entity_set = ET.SubElement(
            container,
            "EntitySet",
            {"Name": entity.entity_set_name, "EntityType": f"{_NAMESPACE}.{entity.logical_name}"},
        )
        bound: set[str] = set()
        for attribute in entity.attributes.values():
            if not attribute.is_lookup or attribute.attribute_type == "Owner":
                continue
            for target, nav in zip(attribute.targets, attribute.nav_names, strict=True):
                related = catalog.get(target)
                if related is not None and nav not in bound:
                    bound.add(nav)
                    ET.SubElement(
                        entity_set,
                        "NavigationPropertyBinding",
                        {"Path": nav, "Target": related.entity_set_name},
                    )
        for name, related_table, _ in collections.get(entity.logical_name, []):
            related = catalog.get(related_table)
            if related is not None and name not in bound:
                bound.add(name)
                ET.SubElement(
                    entity_set,
                    "NavigationPropertyBinding",
                    {"Path": name, "Target": related.entity_set_name},
                )
        if annotated and entity.change_tracking:
            annotation = ET.SubElement(
                entity_set, "Annotation", {"Term": "Org.OData.Capabilities.V1.ChangeTracking"}
            )
            record = ET.SubElement(annotation, "Record")
            ET.SubElement(record, "PropertyValue", {"Property": "Supported", "Bool": "true"})
    for message in SERVED:
        if message.bound_to:
            continue
        kind = "FunctionImport" if message.kind == "Function" else "ActionImport"
        target = "Function" if message.kind == "Function" else "Action"
        ET.SubElement(
            container, kind, {"Name": message.name, target: f"{_NAMESPACE}.{message.name}"}
        )
