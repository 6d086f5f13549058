"""WhoAmI, privileges, attribute privileges and QualifyLead (spec §9, §12)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from data_plane_support import API, Emulator, running_emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


@pytest.mark.parametrize("path", ["WhoAmI", "WhoAmI()"])
def test_who_am_i(emu: Emulator, path: str) -> None:
    """§9: WhoAmI -> BusinessUnitId, UserId (the acting user), OrganizationId."""
    body = emu.request("GET", path, user=emu.salesperson).json()
    assert body["@odata.context"] == f"{API}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
    assert body["UserId"] == emu.salesperson.systemuserid
    assert body["OrganizationId"] == emu.config.organization_id
    assert body["BusinessUnitId"] == emu.config.business_unit_id


def test_configured_users_exist_as_systemuser_rows(emu: Emulator) -> None:
    """Users from the configuration are rows of systemusers."""
    body = emu.request("GET", "systemusers?$select=fullname,domainname").json()
    assert {row["fullname"] for row in body["value"]} == {u.fullname for u in emu.config.users}


def test_retrieve_user_privileges(emu: Emulator) -> None:
    """§9: RolePrivileges with prv<Verb><Entity> names and Global depth."""
    user = emu.salesperson.systemuserid
    body = emu.request(
        "GET", f"systemusers({user})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges"
    ).json()
    names = {p["PrivilegeName"] for p in body["RolePrivileges"]}
    assert {"prvReadLead", "prvWriteContact", "prvCreateLead", "prvReadSystemUser"} <= names
    assert "prvDeleteLead" not in names
    assert {p["Depth"] for p in body["RolePrivileges"]} == {"Global"}
    missing = emu.request(
        "GET",
        "systemusers(00000000-0000-0000-0000-00000000abcd)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges",
    )
    assert missing.status_code == 404


def test_retrieve_principal_attribute_privileges(emu: Emulator) -> None:
    """§9: AttributePrivileges per secured column; 4 allowed, 0 not; AttributeId = MetadataId."""
    revenue_id = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='revenue')?$select=MetadataId",
    ).json()["MetadataId"]
    app = emu.request(
        "GET",
        f"systemusers({emu.app_user.systemuserid})/Microsoft.Dynamics.CRM.RetrievePrincipalAttributePrivileges()",
    ).json()
    assert app["AttributePrivileges"] == [
        {"AttributeId": revenue_id, "CanCreate": 4, "CanRead": 4, "CanUpdate": 4}
    ]
    sales = emu.request(
        "GET",
        f"systemusers({emu.salesperson.systemuserid})/Microsoft.Dynamics.CRM.RetrievePrincipalAttributePrivileges()",
    ).json()
    assert sales["AttributePrivileges"] == [
        {"AttributeId": revenue_id, "CanCreate": 0, "CanRead": 0, "CanUpdate": 0}
    ]


def test_qualify_lead_creates_linked_records_and_closes_the_lead(emu: Emulator) -> None:
    """QualifyLead: account/contact/opportunity with originatingleadid; lead state Qualified."""
    lead = emu.create(
        "leads",
        {
            "firstname": "Ada",
            "lastname": "Lovelace",
            "companyname": "Analytical Engines",
            "emailaddress1": "ada@example.com",
            "subject": "Difference engine",
        },
    )
    response = emu.request(
        "POST",
        f"leads({lead})/Microsoft.Dynamics.CRM.QualifyLead",
        {"CreateAccount": True, "CreateContact": True, "CreateOpportunity": True, "Status": 3},
    )
    assert response.status_code == 200, response.text
    created = {v["@odata.type"]: v for v in response.json()["value"]}
    account = created["#Microsoft.Dynamics.CRM.account"]["accountid"]
    contact = created["#Microsoft.Dynamics.CRM.contact"]["contactid"]
    opportunity = created["#Microsoft.Dynamics.CRM.opportunity"]["opportunityid"]
    account_row = emu.request("GET", f"accounts({account})?$select=name,originatingleadid").json()
    assert (
        account_row["name"] == "Analytical Engines"
        and account_row["_originatingleadid_value"] == lead
    )
    contact_row = emu.request(
        "GET", f"contacts({contact})?$select=emailaddress1,parentcustomerid,originatingleadid"
    ).json()
    assert contact_row["emailaddress1"] == "ada@example.com"
    assert (
        contact_row["_parentcustomerid_value"] == account
        and contact_row["_originatingleadid_value"] == lead
    )
    opportunity_row = emu.request(
        "GET", f"opportunities({opportunity})?$select=name,customerid,originatingleadid"
    ).json()
    assert (
        opportunity_row["_customerid_value"] == account
        and opportunity_row["name"] == "Difference engine"
    )
    lead_row = emu.request(
        "GET", f"leads({lead})?$select=statecode,statuscode,qualifyingopportunityid"
    ).json()
    assert (lead_row["statecode"], lead_row["statuscode"]) == (1, 3)
    assert lead_row["_qualifyingopportunityid_value"] == opportunity
    again = emu.request(
        "POST",
        f"leads({lead})/Microsoft.Dynamics.CRM.QualifyLead",
        {"CreateAccount": False, "CreateContact": False, "CreateOpportunity": False, "Status": 3},
    )
    assert again.status_code == 400


def test_qualify_lead_rejects_a_status_of_another_state(emu: Emulator) -> None:
    """QualifyLead Status must be a Qualified status reason (3)."""
    lead = emu.create("leads", {"lastname": "Nope"})
    response = emu.request(
        "POST",
        f"leads({lead})/Microsoft.Dynamics.CRM.QualifyLead",
        {"CreateAccount": False, "CreateContact": True, "CreateOpportunity": False, "Status": 4},
    )
    assert response.status_code == 400
    assert emu.request("GET", "contacts/$count").text == "0"
