"""The service document at the Web API root and the CSDL ``$metadata`` document.

Microsoft Learn, "Web API service documents"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/web-api-service-documents):
``GET [Organization URI]/api/data/v9.2/`` lists the entity sets; ``$metadata`` is the CSDL
(OData CSDL XML 4.01) with entity types, properties, navigation properties, functions and
actions. Change tracking annotations: "Use change tracking to synchronize data with external
systems" (``$metadata?annotations=true``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from data_plane_support import API, Emulator, running_emulator

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _schema(emu: Emulator, query: str = "") -> ET.Element:
    response = emu.request("GET", f"$metadata{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)  # noqa: S314 - our own document
    schema = root.find(f"./{{http://docs.oasis-open.org/odata/ns/edmx}}DataServices/{EDM}Schema")
    assert schema is not None
    assert schema.get("Namespace") == "Microsoft.Dynamics.CRM"
    return schema


def _entity_type(schema: ET.Element, name: str) -> ET.Element:
    found = schema.find(f"{EDM}EntityType[@Name='{name}']")
    assert found is not None, name
    return found


def test_service_root_lists_the_entity_sets(emu: Emulator) -> None:
    """GET /api/data/v9.2/ answers the service document (it was a 404)."""
    response = emu.request("GET", f"{API}/")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"] == f"{API}/$metadata"
    sets = {entry["name"]: entry for entry in body["value"]}
    assert sets["leads"] == {"name": "leads", "kind": "EntitySet", "url": "leads"}
    assert {"contacts", "accounts", "campaigns", "lists", "tasks"} <= set(sets)


def test_service_root_without_slash_and_without_token(emu: Emulator) -> None:
    """The root answers without a trailing slash too; it needs a bearer token like any call."""
    assert emu.request("GET", API).status_code == 200
    assert emu.client.get(f"{API}/").status_code == 401


def test_metadata_declares_keys_properties_and_max_lengths(emu: Emulator) -> None:
    """lead: key leadid, emailaddress1 Edm.String MaxLength 100, revenue Edm.Decimal, lookups."""
    lead = _entity_type(_schema(emu), "lead")
    key = lead.find(f"{EDM}Key/{EDM}PropertyRef")
    assert key is not None and key.get("Name") == "leadid"
    properties = {p.get("Name"): p for p in lead.findall(f"{EDM}Property")}
    assert properties["emailaddress1"].get("Type") == "Edm.String"
    assert properties["emailaddress1"].get("MaxLength") == "100"
    assert properties["revenue"].get("Type") == "Edm.Decimal"
    assert properties["statecode"].get("Type") == "Edm.Int32"
    assert properties["_parentaccountid_value"].get("Type") == "Edm.Guid"
    assert "parentaccountid" not in properties


def test_metadata_declares_navigation_properties_both_ways(emu: Emulator) -> None:
    """Single-valued parentcustomerid_account on contact; contact_customer_accounts on account."""
    schema = _schema(emu)
    contact = _entity_type(schema, "contact")
    navigation = contact.find(f"{EDM}NavigationProperty[@Name='parentcustomerid_account']")
    assert navigation is not None and navigation.get("Type") == "mscrm.account"
    constraint = navigation.find(f"{EDM}ReferentialConstraint")
    assert constraint is not None
    assert constraint.get("Property") == "_parentcustomerid_value"
    assert constraint.get("ReferencedProperty") == "accountid"
    account = _entity_type(schema, "account")
    contacts = account.find(f"{EDM}NavigationProperty[@Name='contact_customer_accounts']")
    assert contacts is not None and contacts.get("Type") == "Collection(mscrm.contact)"


def test_metadata_declares_the_operations_it_serves(emu: Emulator) -> None:
    """WhoAmI is a function, QualifyLead an action bound to lead, AddMemberList unbound."""
    schema = _schema(emu)
    who = schema.find(f"{EDM}Function[@Name='WhoAmI']")
    assert who is not None and who.find(f"{EDM}ReturnType") is not None
    qualify = schema.find(f"{EDM}Action[@Name='QualifyLead']")
    assert qualify is not None and qualify.get("IsBound") == "true"
    binding = qualify.find(f"{EDM}Parameter")
    assert binding is not None and binding.get("Type") == "mscrm.lead"
    container = schema.find(f"{EDM}EntityContainer")
    assert container is not None
    assert container.find(f"{EDM}ActionImport[@Name='AddMemberList']") is not None
    assert container.find(f"{EDM}FunctionImport[@Name='WhoAmI']") is not None
    leads = container.find(f"{EDM}EntitySet[@Name='leads']")
    assert leads is not None and leads.get("EntityType") == "Microsoft.Dynamics.CRM.lead"


def test_metadata_annotations_mark_tracked_entity_sets(emu: Emulator) -> None:
    """With annotations=true, lead (tracked) carries ChangeTracking Supported; campaign not."""
    container = _schema(emu, "?annotations=true").find(f"{EDM}EntityContainer")
    assert container is not None
    term = "Org.OData.Capabilities.V1.ChangeTracking"
    leads = container.find(f"{EDM}EntitySet[@Name='leads']")
    campaigns = container.find(f"{EDM}EntitySet[@Name='campaigns']")
    assert leads is not None and campaigns is not None
    assert leads.find(f"{EDM}Annotation[@Term='{term}']") is not None
    assert campaigns.find(f"{EDM}Annotation[@Term='{term}']") is None


def test_metadata_follows_a_new_custom_column(emu: Emulator) -> None:
    """A column added through the metadata API appears in the next $metadata."""
    created = emu.request(
        "POST",
        "EntityDefinitions(LogicalName='lead')/Attributes",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": "new_Nickname",
            "MaxLength": 40,
            "DisplayName": {"LocalizedLabels": [{"Label": "Nickname", "LanguageCode": 1033}]},
            "RequiredLevel": {"Value": "None"},
        },
    )
    assert created.status_code == 204, created.text
    lead = _entity_type(_schema(emu), "lead")
    nickname = lead.find(f"{EDM}Property[@Name='new_nickname']")
    assert nickname is not None and nickname.get("MaxLength") == "40"
