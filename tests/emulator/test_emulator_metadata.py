"""EntityDefinitions (spec §9): tables, attributes, casts, option sets, custom columns, tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from data_plane_support import API, Emulator, running_emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _label(text: str) -> dict[str, object]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.Label",
        "LocalizedLabels": [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                "Label": text,
                "LanguageCode": 1033,
            }
        ],
    }


def test_entity_definition_with_select(emu: Emulator) -> None:
    """§9: one object with the selected properties plus MetadataId."""
    response = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='lead')?$select=LogicalName,SchemaName,EntitySetName,"
        "LogicalCollectionName,PrimaryIdAttribute,PrimaryNameAttribute,ChangeTrackingEnabled,"
        "IsOptimisticConcurrencyEnabled,OwnershipType,ObjectTypeCode,IsCustomEntity",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == f"{API}/$metadata#EntityDefinitions/$entity"
    assert body["EntitySetName"] == "leads" and body["PrimaryIdAttribute"] == "leadid"
    assert body["PrimaryNameAttribute"] == "fullname" and body["ChangeTrackingEnabled"] is True
    assert body["OwnershipType"] == "UserOwned" and body["ObjectTypeCode"] == 4
    assert "MetadataId" in body and "DisplayName" not in body
    by_id = emu.request(
        "GET", f"EntityDefinitions({body['MetadataId']})?$select=LogicalName"
    ).json()
    assert by_id["LogicalName"] == "lead"
    assert (
        emu.request(
            "GET", "EntityDefinitions(LogicalName='opportunity')?$select=EntitySetName"
        ).json()["EntitySetName"]
        == "opportunities"
    )


def test_entity_definitions_filter_on_change_tracking(emu: Emulator) -> None:
    """§4: list tracked tables with $filter=ChangeTrackingEnabled eq true."""
    body = emu.request(
        "GET", "EntityDefinitions?$select=LogicalName&$filter=ChangeTrackingEnabled eq true"
    ).json()
    names = {row["LogicalName"] for row in body["value"]}
    assert {"lead", "contact", "account"} <= names and "campaign" not in names
    owned = emu.request(
        "GET",
        "EntityDefinitions?$select=LogicalName&$filter=OwnershipType eq "
        "Microsoft.Dynamics.CRM.OwnershipTypes'BusinessOwned'",
    ).json()
    assert {row["LogicalName"] for row in owned["value"]} == {"systemuser", "team"}


def test_attributes_base_properties_and_casts(emu: Emulator) -> None:
    """§9: base properties on Attributes; MaxLength needs the StringAttributeMetadata cast."""
    attrs = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='lead')/Attributes?$select=LogicalName,AttributeType,RequiredLevel,IsSecured",
    ).json()["value"]
    by_name = {a["LogicalName"]: a for a in attrs}
    assert by_name["lastname"]["RequiredLevel"]["Value"] == "ApplicationRequired"
    assert by_name["parentaccountid"]["AttributeType"] == "Lookup"
    assert by_name["revenue"]["IsSecured"] is True
    refused = emu.request(
        "GET", "EntityDefinitions(LogicalName='lead')/Attributes?$select=LogicalName,MaxLength"
    )
    assert refused.status_code == 400
    strings = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='lead')/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata"
        "?$select=LogicalName,MaxLength,FormatName,RequiredLevel",
    ).json()["value"]
    lengths = {a["LogicalName"]: a["MaxLength"] for a in strings}
    assert (
        lengths["mobilephone"] == 20
        and lengths["subject"] == 300
        and lengths["emailaddress1"] == 100
    )
    assert all(
        a["@odata.type"] == "#Microsoft.Dynamics.CRM.StringAttributeMetadata" for a in strings
    )


def test_expand_attributes_with_filter_on_type(emu: Emulator) -> None:
    """§9: $expand=Attributes($select=...;$filter=AttributeType eq ...'Picklist')."""
    body = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='lead')?$select=LogicalName&$expand=Attributes("
        "$select=LogicalName,AttributeType;"
        "$filter=AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist')",
    ).json()
    names = {a["LogicalName"] for a in body["Attributes"]}
    assert {
        "leadsourcecode",
        "leadqualitycode",
        "industrycode",
        "preferredcontactmethodcode",
    } == names


def test_picklist_options_through_the_cast(emu: Emulator) -> None:
    """§2e: option labels via PicklistAttributeMetadata + $expand=OptionSet."""
    body = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='leadsourcecode')/"
        "Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName"
        "&$expand=OptionSet($select=Options),GlobalOptionSet($select=Options)",
    ).json()
    options = {
        o["Value"]: o["Label"]["UserLocalizedLabel"]["Label"] for o in body["OptionSet"]["Options"]
    }
    assert options[8] == "Web" and len(options) == 10
    status = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='statuscode')/"
        "Microsoft.Dynamics.CRM.StatusAttributeMetadata?$select=LogicalName&$expand=OptionSet",
    ).json()
    assert {o["Value"]: o["State"] for o in status["OptionSet"]["Options"]}[3] == 1
    lookup = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='parentcustomerid')/"
        "Microsoft.Dynamics.CRM.LookupAttributeMetadata?$select=Targets",
    ).json()
    assert lookup["Targets"] == ["account", "contact"]


def test_create_use_and_delete_a_custom_column(emu: Emulator) -> None:
    """§9/§10: a custom column created via the metadata API is validated and can be deleted."""
    created = emu.request(
        "POST",
        "EntityDefinitions(LogicalName='lead')/Attributes",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": "new_BankName",
            "RequiredLevel": {"Value": "None"},
            "MaxLength": 10,
            "FormatName": {"Value": "Text"},
            "DisplayName": _label("Bank Name"),
        },
    )
    assert created.status_code == 204
    assert "/Attributes(" in created.headers["OData-EntityId"]
    lead = emu.create("leads", {"lastname": "Bank", "new_bankname": "Lloyds"})
    assert (
        emu.request("GET", f"leads({lead})?$select=new_bankname").json()["new_bankname"] == "Lloyds"
    )
    assert (
        emu.request("POST", "leads", {"new_bankname": "x" * 11}).json()["error"]["code"]
        == "0x80044331"
    )
    attribute = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='new_bankname')?$select=IsCustomAttribute",
    ).json()
    assert attribute["IsCustomAttribute"] is True
    duplicate = emu.request(
        "POST",
        "EntityDefinitions(LogicalName='lead')/Attributes",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": "new_BankName",
        },
    )
    assert duplicate.status_code == 400
    deleted = emu.request(
        "DELETE", "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='new_bankname')"
    )
    assert deleted.status_code == 204
    assert emu.request("GET", f"leads({lead})?$select=new_bankname").status_code == 400
    assert (
        emu.request(
            "DELETE", "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='lastname')"
        ).status_code
        == 400
    )


def test_custom_picklist_and_boolean_columns(emu: Emulator) -> None:
    """§9: choice and two-option columns with their options."""
    emu.request(
        "POST",
        "EntityDefinitions(LogicalName='contact')/Attributes",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
            "SchemaName": "new_Tier",
            "OptionSet": {
                "Options": [
                    {"Value": 100000000, "Label": _label("Gold")},
                    {"Value": 100000001, "Label": _label("Silver")},
                ]
            },
        },
    )
    emu.request(
        "POST",
        "EntityDefinitions(LogicalName='contact')/Attributes",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.BooleanAttributeMetadata",
            "SchemaName": "new_SyncToMkto",
            "OptionSet": {
                "TrueOption": {"Value": 1, "Label": _label("Yes")},
                "FalseOption": {"Value": 0, "Label": _label("No")},
            },
        },
    )
    contact = emu.create(
        "contacts", {"lastname": "T", "new_tier": 100000000, "new_synctomkto": True}
    )
    body = emu.request(
        "GET",
        f"contacts({contact})?$select=new_tier,new_synctomkto",
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).json()
    assert body["new_tier@OData.Community.Display.V1.FormattedValue"] == "Gold"
    assert body["new_synctomkto"] is True
    assert emu.request("POST", "contacts", {"new_tier": 7}).json()["error"]["code"] == "0x8004431A"


def test_custom_table_with_a_lookup_to_account(emu: Emulator) -> None:
    """Issue 3: custom tables with lookups to lead/contact/account through the metadata API."""
    created = emu.request(
        "POST",
        "EntityDefinitions",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
            "SchemaName": "new_BankAccount",
            "DisplayName": _label("Bank Account"),
            "DisplayCollectionName": _label("Bank Accounts"),
            "OwnershipType": "UserOwned",
            "HasActivities": False,
            "HasNotes": False,
            "IsActivity": False,
            "ChangeTrackingEnabled": True,
            "Attributes": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                    "AttributeType": "String",
                    "SchemaName": "new_Name",
                    "IsPrimaryName": True,
                    "MaxLength": 100,
                    "RequiredLevel": {"Value": "None"},
                    "DisplayName": _label("Name"),
                }
            ],
        },
    )
    assert created.status_code == 204, created.text
    relation = emu.request(
        "POST",
        "RelationshipDefinitions",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
            "SchemaName": "new_account_new_bankaccount",
            "ReferencedEntity": "account",
            "ReferencingEntity": "new_bankaccount",
            "Lookup": {
                "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
                "SchemaName": "new_AccountId",
                "DisplayName": _label("Account"),
            },
        },
    )
    assert relation.status_code == 204, relation.text
    definition = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='new_bankaccount')?$select=EntitySetName,PrimaryIdAttribute",
    ).json()
    assert (
        definition["EntitySetName"] == "new_bankaccounts"
        and definition["PrimaryIdAttribute"] == "new_bankaccountid"
    )
    account = emu.create("accounts", {"name": "Owner Co"})
    row = emu.create(
        "new_bankaccounts",
        {"new_name": "Current", "new_accountid@odata.bind": f"/accounts({account})"},
    )
    body = emu.request("GET", f"new_bankaccounts({row})?$select=new_name,new_accountid").json()
    assert body["_new_accountid_value"] == account
    delta = emu.request(
        "GET", "new_bankaccounts?$select=new_name", headers={"Prefer": "odata.track-changes"}
    ).json()
    assert "@odata.deltaLink" in delta
    assert (
        emu.request("DELETE", "EntityDefinitions(LogicalName='new_bankaccount')").status_code == 204
    )
    assert emu.request("GET", "new_bankaccounts").status_code == 404
    assert emu.request("DELETE", "EntityDefinitions(LogicalName='lead')").status_code == 400


def test_custom_metadata_survives_a_restart(tmp_path: Path) -> None:
    """A file database keeps custom columns and their values across restarts."""
    db = str(tmp_path / "org.db")
    with running_emulator(db_path=db) as emu:
        emu.request(
            "POST",
            "EntityDefinitions(LogicalName='lead')/Attributes",
            {
                "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
                "SchemaName": "new_Score",
                "MinValue": 0,
                "MaxValue": 100,
            },
        )
        lead = emu.create("leads", {"lastname": "Persisted", "new_score": 42})
        emu.request(
            "DELETE", "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='mkt_urgency')"
        )
    with running_emulator(db_path=db) as emu:
        assert emu.request("GET", f"leads({lead})?$select=new_score").json()["new_score"] == 42
        assert (
            emu.request("POST", "leads", {"new_score": 101}).json()["error"]["code"] == "0x8004432F"
        )
        assert emu.request("GET", "leads?$select=mkt_urgency").status_code == 400


def test_global_metadata_version_changes_with_the_schema(emu: Emulator) -> None:
    """§9: globalmetadataversion changes on any schema change (metadata caching)."""
    prefer = {"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.globalmetadataversion"'}
    url = "EntityDefinitions(LogicalName='lead')?$select=LogicalName"
    annotation = "@Microsoft.Dynamics.CRM.globalmetadataversion"
    before = emu.request("GET", url, headers=prefer).json()[annotation]
    assert emu.request("GET", url, headers=prefer).json()[annotation] == before
    emu.request(
        "POST",
        "EntityDefinitions(LogicalName='lead')/Attributes",
        {"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", "SchemaName": "new_Flag"},
    )
    assert emu.request("GET", url, headers=prefer).json()[annotation] != before
    assert annotation not in emu.request("GET", url).json()


def test_change_tracking_can_be_enabled_but_not_disabled(tmp_path: Path) -> None:
    """§4: ChangeTrackingEnabled switched on through PUT EntityDefinitions; it stays on."""
    db = str(tmp_path / "org.db")
    with running_emulator(db_path=db) as emu:
        track = {"Prefer": "odata.track-changes"}
        assert emu.request("GET", "campaigns?$select=name", headers=track).status_code == 400
        put = emu.request(
            "PUT", "EntityDefinitions(LogicalName='campaign')", {"ChangeTrackingEnabled": True}
        )
        assert put.status_code == 204
        assert emu.request("GET", "campaigns?$select=name", headers=track).status_code == 200
        off = emu.request(
            "PUT", "EntityDefinitions(LogicalName='campaign')", {"ChangeTrackingEnabled": False}
        )
        assert off.status_code == 400
    with running_emulator(db_path=db) as emu:
        state = emu.request(
            "GET", "EntityDefinitions(LogicalName='campaign')?$select=ChangeTrackingEnabled"
        )
        assert state.json()["ChangeTrackingEnabled"] is True
