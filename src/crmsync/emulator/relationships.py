"""The relationships of the emulated organization, derived from its lookup columns.

Every lookup column is one one-to-many relationship per target table (a Customer lookup to
account and contact is two relationships, as in Dataverse); marketing-list membership is the
three many-to-many relationships ``listlead_association`` ... through the ``listmember``
intersect table. :func:`one_to_many` and :func:`many_to_many` list them with the names,
navigation properties and ``CascadeConfiguration`` Microsoft documents for the built-in tables
(the table/entity reference pages, e.g. https://learn.microsoft.com/power-apps/developer/
data-platform/reference/entities/contact, "Many-to-One relationships"); custom lookups take the
schema name and cascade configuration given to ``POST RelationshipDefinitions``.

Delete cascades (:mod:`crmsync.emulator.cascade`) and the metadata API
(``EntityDefinitions(...)/OneToManyRelationships`` ...) and ``$metadata`` read these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crmsync.emulator.metadata import AttributeDef, Catalog, EntityDef, metadata_id

CASCADE = "Cascade"
REMOVE_LINK = "RemoveLink"
RESTRICT = "Restrict"
NO_CASCADE = "NoCascade"
DELETE_BEHAVIOURS = frozenset({CASCADE, REMOVE_LINK, RESTRICT})

# (referencing table, lookup column, target) -> relationship schema name, where Dataverse's
# built-in name is not derived from the column (the navigation properties clients use).
_BUILTIN_NAMES: Mapping[tuple[str, str, str], str] = {
    ("task", "regardingobjectid", "account"): "Account_Tasks",
    ("task", "regardingobjectid", "contact"): "Contact_Tasks",
    ("task", "regardingobjectid", "lead"): "Lead_Tasks",
    ("task", "regardingobjectid", "opportunity"): "Opportunity_Tasks",
    ("task", "regardingobjectid", "campaign"): "Campaign_Tasks",
    ("contact", "parentcustomerid", "account"): "contact_customer_accounts",
    ("contact", "parentcustomerid", "contact"): "contact_customer_contacts",
    ("lead", "parentaccountid", "account"): "lead_parent_account",
    ("lead", "parentcontactid", "contact"): "lead_parent_contact",
    ("lead", "customerid", "account"): "lead_customer_accounts",
    ("lead", "customerid", "contact"): "lead_customer_contacts",
    ("lead", "campaignid", "campaign"): "campaign_leads",
    ("lead", "qualifyingopportunityid", "opportunity"): "lead_qualifying_opportunity",
    ("opportunity", "customerid", "account"): "opportunity_customer_accounts",
    ("opportunity", "customerid", "contact"): "opportunity_customer_contacts",
    ("opportunity", "parentaccountid", "account"): "opportunity_parent_account",
    ("opportunity", "parentcontactid", "contact"): "opportunity_parent_contact",
    ("opportunity", "campaignid", "campaign"): "campaign_opportunities",
    ("account", "parentaccountid", "account"): "account_parent_account",
    ("account", "primarycontactid", "contact"): "account_primary_contact",
    ("contact", "originatingleadid", "lead"): "contact_originating_lead",
    ("account", "originatingleadid", "lead"): "account_originating_lead",
    ("opportunity", "originatingleadid", "lead"): "opportunity_originating_lead",
    ("listmember", "listid", "list"): "list_listmember",
    ("team", "administratorid", "systemuser"): "lk_teambase_administratorid",
    ("sdkmessagefilter", "sdkmessageid", "sdkmessage"): "sdkmessageid_sdkmessagefilter",
}

# Parental relationships: the child goes with its parent (Delete: Cascade). Activities go with
# the row they are regarding; contacts and opportunities with their customer account/contact.
_PARENTAL = frozenset(
    {
        ("contact", "parentcustomerid"),
        ("opportunity", "customerid"),
        ("task", "regardingobjectid"),
        ("listmember", "listid"),
        ("listmember", "entityid"),
        ("sdkmessagefilter", "sdkmessageid"),
    }
)
# Audit and ownership columns point at users and teams, which Dataverse disables rather than
# deletes; the emulator leaves those links alone (Delete: NoCascade).
_SYSTEM_COLUMNS = frozenset({"createdby", "modifiedby", "ownerid"})

_ALL_NO_CASCADE = {
    "Assign": NO_CASCADE,
    "Share": NO_CASCADE,
    "Unshare": NO_CASCADE,
    "Reparent": NO_CASCADE,
    "Delete": NO_CASCADE,
    "Merge": NO_CASCADE,
    "Archive": NO_CASCADE,
    "RollupView": NO_CASCADE,
}


@dataclass(frozen=True, slots=True)
class OneToMany:
    """One one-to-many relationship: ``referenced`` (one) to ``referencing`` rows (many)."""

    schema_name: str
    referenced_entity: str
    referenced_attribute: str
    referencing_entity: str
    referencing_attribute: str
    referencing_navigation: str  # single-valued, on the referencing table
    delete: str
    is_custom: bool = False

    @property
    def referenced_navigation(self) -> str:
        """The collection-valued navigation property on the referenced table."""
        return self.schema_name

    @property
    def parental(self) -> bool:
        """Whether the relationship is parental (every cascade is Cascade)."""
        return self.delete == CASCADE

    def cascade_configuration(self) -> dict[str, str]:
        """``CascadeConfiguration`` as the metadata API shows it."""
        if self.parental:
            values = dict.fromkeys(_ALL_NO_CASCADE, CASCADE)
            values["Archive"] = NO_CASCADE
            values["RollupView"] = NO_CASCADE
            return values
        return _ALL_NO_CASCADE | {"Delete": self.delete}


@dataclass(frozen=True, slots=True)
class ManyToMany:
    """A many-to-many relationship through an intersect table (marketing-list membership)."""

    schema_name: str
    entity1: str
    entity1_attribute: str
    entity2: str
    entity2_attribute: str
    intersect: str


def _name(entity: EntityDef, attribute: AttributeDef, target: str) -> str:
    known = _BUILTIN_NAMES.get((entity.logical_name, attribute.logical_name, target))
    if known is not None:
        return known
    if target == "transactioncurrency":
        return f"TransactionCurrency_{entity.schema_name}"
    if attribute.relationship_name and not attribute.is_polymorphic:
        return attribute.relationship_name
    if attribute.logical_name in ("createdby", "modifiedby"):
        return f"lk_{entity.logical_name}_{attribute.logical_name}"
    if attribute.attribute_type == "Owner":
        return f"{'user' if target == 'systemuser' else 'team'}_{entity.entity_set_name}"
    if attribute.is_polymorphic:
        return f"{entity.logical_name}_{attribute.logical_name}_{target}"
    return f"{target}_{entity.logical_name}_{attribute.logical_name}"


def _delete_behaviour(entity: EntityDef, attribute: AttributeDef, target: str) -> str:
    if attribute.cascade_delete in DELETE_BEHAVIOURS:
        return attribute.cascade_delete
    if attribute.logical_name in _SYSTEM_COLUMNS:
        return NO_CASCADE
    if target == "transactioncurrency":
        return RESTRICT  # a currency in use cannot be deleted
    if (entity.logical_name, attribute.logical_name) in _PARENTAL:
        return CASCADE
    return REMOVE_LINK


def one_to_many(catalog: Catalog) -> tuple[OneToMany, ...]:
    """Every one-to-many relationship of the catalog (computed once per catalog version)."""
    return catalog.derived("one_to_many", _build_one_to_many)


def _build_one_to_many(catalog: Catalog) -> tuple[OneToMany, ...]:
    found: list[OneToMany] = []
    for entity in catalog:
        for attribute in entity.attributes.values():
            if not attribute.is_lookup:
                continue
            for target in attribute.targets:
                referenced = catalog.get(target)
                if referenced is None:
                    continue
                found.append(
                    OneToMany(
                        schema_name=_name(entity, attribute, target),
                        referenced_entity=target,
                        referenced_attribute=referenced.primary_id,
                        referencing_entity=entity.logical_name,
                        referencing_attribute=attribute.logical_name,
                        referencing_navigation=attribute.nav_for_target(target),
                        delete=_delete_behaviour(entity, attribute, target),
                        is_custom=attribute.is_custom,
                    )
                )
    return tuple(found)


def many_to_many(catalog: Catalog) -> tuple[ManyToMany, ...]:
    """The marketing-list membership relationships (when the tables exist)."""
    if catalog.get("list") is None or catalog.get("listmember") is None:
        return ()
    return tuple(
        ManyToMany(f"list{member}_association", "list", "listid", member, "entityid", "listmember")
        for member in ("account", "contact", "lead")
        if catalog.get(member) is not None
    )


def collection_navigation(catalog: Catalog, entity: str, name: str) -> OneToMany | None:
    """The relationship behind the collection-valued navigation property ``name`` of ``entity``."""
    for relationship in one_to_many(catalog):
        if relationship.referenced_entity == entity and relationship.schema_name == name:
            return relationship
    return None


def one_to_many_document(relationship: OneToMany) -> dict[str, Any]:
    """A ``OneToManyRelationshipMetadata`` as the metadata API answers it."""
    return {
        "@odata.type": "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "MetadataId": metadata_id("relationship", relationship.schema_name),
        "SchemaName": relationship.schema_name,
        "RelationshipType": "OneToManyRelationship",
        "IsCustomRelationship": relationship.is_custom,
        "IsManaged": not relationship.is_custom,
        "IsValidForAdvancedFind": True,
        "IsHierarchical": False,
        "SecurityTypes": "ParentChild" if relationship.parental else "Append",
        "IntroducedVersion": "5.0.0.0",
        "ReferencedAttribute": relationship.referenced_attribute,
        "ReferencedEntity": relationship.referenced_entity,
        "ReferencingAttribute": relationship.referencing_attribute,
        "ReferencingEntity": relationship.referencing_entity,
        "ReferencedEntityNavigationPropertyName": relationship.referenced_navigation,
        "ReferencingEntityNavigationPropertyName": relationship.referencing_navigation,
        "RelationshipBehavior": 1 if relationship.parental else 0,
        "IsCustomizable": {
            "Value": True,
            "CanBeChanged": relationship.is_custom,
            "ManagedPropertyLogicalName": "iscustomizable",
        },
        "CascadeConfiguration": relationship.cascade_configuration(),
        "AssociatedMenuConfiguration": {
            "Behavior": "UseCollectionName",
            "Group": "Details",
            "Order": 10000,
            "IsCustomizable": True,
            "Icon": None,
            "ViewId": "00000000-0000-0000-0000-000000000000",
            "AvailableOffline": True,
            "MenuId": None,
            "QueryApi": None,
            "Label": {"LocalizedLabels": [], "UserLocalizedLabel": None},
        },
    }


def many_to_many_document(relationship: ManyToMany) -> dict[str, Any]:
    """A ``ManyToManyRelationshipMetadata`` as the metadata API answers it."""
    return {
        "@odata.type": "#Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata",
        "MetadataId": metadata_id("relationship", relationship.schema_name),
        "SchemaName": relationship.schema_name,
        "RelationshipType": "ManyToManyRelationship",
        "IsCustomRelationship": False,
        "IsManaged": True,
        "IsValidForAdvancedFind": True,
        "SecurityTypes": "Append",
        "IntroducedVersion": "5.0.0.0",
        "Entity1LogicalName": relationship.entity1,
        "Entity1IntersectAttribute": relationship.entity1_attribute,
        "Entity1NavigationPropertyName": relationship.schema_name,
        "Entity2LogicalName": relationship.entity2,
        "Entity2IntersectAttribute": relationship.entity2_attribute,
        "Entity2NavigationPropertyName": relationship.schema_name,
        "IntersectEntityName": relationship.intersect,
        "IsCustomizable": {
            "Value": False,
            "CanBeChanged": False,
            "ManagedPropertyLogicalName": "iscustomizable",
        },
    }
