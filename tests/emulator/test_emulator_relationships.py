"""Relationship metadata and the EntityMetadata properties clients select.

Shapes follow Microsoft Learn: "Query table definitions using the Web API"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-metadata-web-api),
"OneToManyRelationshipMetadata EntityType" and "CascadeConfiguration ComplexType"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/
cascadeconfiguration), and the contact table reference's Many-to-One relationships.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from data_plane_support import Emulator, running_emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def test_primary_image_attribute_and_common_properties_can_be_selected(emu: Emulator) -> None:
    """EntityMetadata: PrimaryImageAttribute, IsActivity, TableType ... are selectable."""
    response = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='contact')?$select=LogicalName,PrimaryImageAttribute,"
        "IsActivity,TableType,IsIntersect,HasActivities,IsAuditEnabled,IsValidForAdvancedFind",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["LogicalName"] == "contact"
    assert "PrimaryImageAttribute" in body and body["PrimaryImageAttribute"] is None
    assert body["IsActivity"] is False and body["TableType"] == "Standard"
    assert body["IsAuditEnabled"]["Value"] is False
    assert "SchemaName" not in body


def test_many_to_one_relationships_name_the_lookup_and_its_cascade(emu: Emulator) -> None:
    """contact's ManyToOneRelationships include contact_customer_accounts (parentcustomerid)."""
    response = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='contact')/ManyToOneRelationships"
        "?$select=SchemaName,ReferencedEntity,ReferencingAttribute,CascadeConfiguration,"
        "ReferencedEntityNavigationPropertyName,ReferencingEntityNavigationPropertyName",
    )
    assert response.status_code == 200, response.text
    by_name = {r["SchemaName"]: r for r in response.json()["value"]}
    customer = by_name["contact_customer_accounts"]
    assert customer["ReferencedEntity"] == "account"
    assert customer["ReferencingAttribute"] == "parentcustomerid"
    assert customer["ReferencingEntityNavigationPropertyName"] == "parentcustomerid_account"
    assert customer["ReferencedEntityNavigationPropertyName"] == "contact_customer_accounts"
    assert customer["CascadeConfiguration"]["Delete"] == "Cascade"
    assert by_name["contact_originating_lead"]["CascadeConfiguration"]["Delete"] == "RemoveLink"
    assert set(customer["CascadeConfiguration"]) >= {"Assign", "Delete", "Merge", "Reparent"}


def test_one_to_many_relationships_with_filter(emu: Emulator) -> None:
    """account's OneToManyRelationships filtered on ReferencingEntity."""
    response = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='account')/OneToManyRelationships"
        "?$select=SchemaName,ReferencingEntity&$filter=ReferencingEntity eq 'lead'",
    )
    assert response.status_code == 200, response.text
    names = {r["SchemaName"] for r in response.json()["value"]}
    assert names == {"lead_parent_account", "lead_customer_accounts"}


def test_many_to_many_relationships_of_a_marketing_list(emu: Emulator) -> None:
    """list's ManyToManyRelationships: the three membership relationships through listmember."""
    response = emu.request("GET", "EntityDefinitions(LogicalName='list')/ManyToManyRelationships")
    assert response.status_code == 200, response.text
    values = response.json()["value"]
    assert {r["SchemaName"] for r in values} == {
        "listaccount_association",
        "listcontact_association",
        "listlead_association",
    }
    assert all(r["IntersectEntityName"] == "listmember" for r in values)


def test_relationships_can_be_expanded_on_the_definition(emu: Emulator) -> None:
    """$expand=ManyToOneRelationships($select=SchemaName) on one EntityDefinition."""
    response = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='lead')?$select=LogicalName"
        "&$expand=ManyToOneRelationships($select=SchemaName)",
    )
    assert response.status_code == 200, response.text
    names = {r["SchemaName"] for r in response.json()["ManyToOneRelationships"]}
    assert "lead_parent_account" in names and "campaign_leads" in names


def test_relationship_definitions_by_schema_name(emu: Emulator) -> None:
    """GET RelationshipDefinitions(SchemaName='...') answers the one relationship; unknown 404."""
    found = emu.request("GET", "RelationshipDefinitions(SchemaName='Account_Tasks')")
    assert found.status_code == 200, found.text
    assert found.json()["ReferencingEntity"] == "task"
    assert emu.request("GET", "RelationshipDefinitions(SchemaName='nope')").status_code == 404


def _custom_table(emu: Emulator, cascade: str | None) -> Any:
    label = {"LocalizedLabels": [{"Label": "Bank account", "LanguageCode": 1033}]}
    created = emu.request(
        "POST",
        "EntityDefinitions",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
            "SchemaName": "new_BankAccount",
            "DisplayName": label,
            "DisplayCollectionName": label,
            "OwnershipType": "UserOwned",
            "HasActivities": False,
            "HasNotes": False,
            "IsActivity": False,
            "Attributes": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                    "AttributeType": "String",
                    "SchemaName": "new_Name",
                    "IsPrimaryName": True,
                    "MaxLength": 100,
                    "RequiredLevel": {"Value": "None"},
                    "DisplayName": label,
                }
            ],
        },
    )
    assert created.status_code == 204, created.text
    body: dict[str, object] = {
        "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "SchemaName": "new_account_new_bankaccount",
        "ReferencedEntity": "account",
        "ReferencingEntity": "new_bankaccount",
        "Lookup": {"SchemaName": "new_AccountId", "DisplayName": label},
    }
    if cascade is not None:
        body["CascadeConfiguration"] = {"Delete": cascade, "Assign": "NoCascade"}
    return emu.request("POST", "RelationshipDefinitions", body)


def test_custom_relationship_keeps_its_name_and_cascade(emu: Emulator) -> None:
    """A relationship made through RelationshipDefinitions appears on both tables."""
    assert _custom_table(emu, "Restrict").status_code == 204
    response = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='account')/OneToManyRelationships"
        "?$filter=ReferencingEntity eq 'new_bankaccount'",
    )
    values = response.json()["value"]
    assert [r["SchemaName"] for r in values] == ["new_account_new_bankaccount"]
    assert values[0]["CascadeConfiguration"]["Delete"] == "Restrict"
    assert values[0]["IsCustomRelationship"] is True
    account = emu.create("accounts", {"name": "Owner Co"})
    emu.create(
        "new_bankaccounts",
        {"new_name": "Main", "new_accountid@odata.bind": f"/accounts({account})"},
    )
    collection = emu.request("GET", f"accounts({account})/new_account_new_bankaccount")
    assert collection.status_code == 200, collection.text
    assert [r["new_name"] for r in collection.json()["value"]] == ["Main"]


def test_bad_cascade_value_is_refused(emu: Emulator) -> None:
    """CascadeConfiguration.Delete outside Cascade/RemoveLink/Restrict: 400, nothing created."""
    refused = _custom_table(emu, "Sometimes")
    assert refused.status_code == 400
    assert "CascadeConfiguration.Delete" in refused.json()["error"]["message"]
    lookup = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='new_bankaccount')/Attributes(LogicalName='new_accountid')",
    )
    assert lookup.status_code == 404


def test_expand_a_collection_valued_navigation_property(emu: Emulator) -> None:
    """ "Join tables using OData": accounts?$expand=contact_customer_accounts($select=lastname)
    nests each account's contacts; an account without any gets an empty array."""
    busy = emu.create("accounts", {"name": "Busy"})
    emu.create("accounts", {"name": "Quiet"})
    for name in ("Ames", "Baker"):
        emu.create(
            "contacts",
            {"lastname": name, "parentcustomerid_account@odata.bind": f"/accounts({busy})"},
        )
    emu.create("contacts", {"lastname": "Loner"})
    response = emu.request(
        "GET",
        "accounts?$select=name&$orderby=name&$expand=contact_customer_accounts($select=lastname)",
    )
    assert response.status_code == 200, response.text
    rows = response.json()["value"]
    nested = {
        row["name"]: sorted(c["lastname"] for c in row["contact_customer_accounts"]) for row in rows
    }
    assert nested == {"Busy": ["Ames", "Baker"], "Quiet": []}
    one = emu.request(
        "GET", f"accounts({busy})?$select=name&$expand=Account_Tasks($select=subject)"
    )
    assert one.status_code == 200, one.text
    assert one.json()["Account_Tasks"] == []


def test_one_to_many_relationships_alone_through_the_type_cast(emu: Emulator) -> None:
    """``RelationshipDefinitions/Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata`` lists
    only one-to-many relationships, and their Referenced/Referencing properties are selectable
    (on the base type they are not)."""
    cast = "RelationshipDefinitions/Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata"
    response = emu.request("GET", f"{cast}?$select=ReferencedEntity,ReferencingEntity")
    assert response.status_code == 200, response.text
    values = response.json()["value"]
    assert {"ReferencedEntity": "account", "ReferencingEntity": "task"} in [
        {k: v for k, v in row.items() if k.startswith("Referenc")} for row in values
    ]
    assert all(
        row["@odata.type"] == "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata"
        for row in values
    )
