"""sdkmessages / sdkmessagefilters, RetrieveAvailableLanguages and filters through lookups.

Microsoft Learn: "Use bulk operation messages" (https://learn.microsoft.com/power-apps/
developer/data-platform/bulk-operations) gives the sdkmessagefilters query clients send to learn
whether CreateMultiple exists for a table; "RetrieveAvailableLanguages Function"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/
retrieveavailablelanguages) its response (LocaleIds, OrganizationVersion); "Query data using the
Web API" > "Filter rows based on values of lookup columns" and OData parameter aliases.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from data_plane_support import Emulator, running_emulator

BULK_QUERY = (
    "sdkmessagefilters?$select=sdkmessagefilterid"
    "&$filter=sdkmessageid/name eq @message and primaryobjecttypecode eq @table"
    "&@message='{message}'&@table='{table}'"
)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def test_bulk_message_filter_query_finds_create_multiple_for_lead(emu: Emulator) -> None:
    """The documented query answers one row for CreateMultiple on lead."""
    response = emu.request("GET", BULK_QUERY.format(message="CreateMultiple", table="lead"))
    assert response.status_code == 200, response.text
    assert len(response.json()["value"]) == 1


def test_bulk_message_filter_query_is_empty_for_what_is_not_served(emu: Emulator) -> None:
    """No CreateMultiple row for the systemuser table; no row at all for an unknown message."""
    for message, table in (("CreateMultiple", "systemuser"), ("DeleteMultiple", "lead")):
        response = emu.request("GET", BULK_QUERY.format(message=message, table=table))
        assert response.status_code == 200, response.text
        assert response.json()["value"] == []


def test_sdkmessages_list_the_served_messages(emu: Emulator) -> None:
    """sdkmessages has rows for the CRUD messages and each served action and function."""
    response = emu.request("GET", "sdkmessages?$select=name&$orderby=name")
    assert response.status_code == 200, response.text
    names = {row["name"] for row in response.json()["value"]}
    assert {"Create", "Update", "Delete", "CreateMultiple", "UpdateMultiple"} <= names
    assert {"QualifyLead", "WhoAmI", "AddMemberList", "RetrieveAvailableLanguages"} <= names


def test_a_new_custom_table_gets_its_message_filters(emu: Emulator) -> None:
    """After POST EntityDefinitions, CreateMultiple is listed for the new table."""
    label = {"LocalizedLabels": [{"Label": "Project", "LanguageCode": 1033}]}
    created = emu.request(
        "POST",
        "EntityDefinitions",
        {
            "SchemaName": "new_Project",
            "DisplayName": label,
            "DisplayCollectionName": label,
            "OwnershipType": "UserOwned",
            "Attributes": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                    "SchemaName": "new_Name",
                    "IsPrimaryName": True,
                    "MaxLength": 100,
                    "DisplayName": label,
                }
            ],
        },
    )
    assert created.status_code == 204, created.text
    response = emu.request("GET", BULK_QUERY.format(message="CreateMultiple", table="new_project"))
    assert len(response.json()["value"]) == 1


def test_retrieve_available_languages(emu: Emulator) -> None:
    """GET RetrieveAvailableLanguages -> LocaleIds [1033] and an organization version."""
    for path in ("RetrieveAvailableLanguages", "RetrieveAvailableLanguages()"):
        response = emu.request("GET", path)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["@odata.context"].endswith(
            "$metadata#Microsoft.Dynamics.CRM.RetrieveAvailableLanguagesResponse"
        )
        assert body["LocaleIds"] == [1033]
        assert body["OrganizationVersion"].startswith("9.2.")


def test_filter_through_a_lookup_to_the_related_row(emu: Emulator) -> None:
    """contacts?$filter=parentcustomerid_account/name eq 'Fabrikam' finds Fabrikam's contacts."""
    fabrikam = emu.create("accounts", {"name": "Fabrikam"})
    contoso = emu.create("accounts", {"name": "Contoso"})
    emu.create(
        "contacts",
        {"lastname": "Ito", "parentcustomerid_account@odata.bind": f"/accounts({fabrikam})"},
    )
    emu.create(
        "contacts",
        {"lastname": "Berg", "parentcustomerid_account@odata.bind": f"/accounts({contoso})"},
    )
    response = emu.request(
        "GET", "contacts?$select=lastname&$filter=parentcustomerid_account/name eq 'Fabrikam'"
    )
    assert response.status_code == 200, response.text
    assert [row["lastname"] for row in response.json()["value"]] == ["Ito"]
    unknown = emu.request("GET", "contacts?$filter=parentcustomerid_account/nope eq 'x'")
    assert unknown.status_code == 400


def test_parameter_alias_inside_a_string_is_left_alone(emu: Emulator) -> None:
    """'@x' inside a quoted literal is text, not an alias."""
    emu.create("accounts", {"name": "@home"})
    response = emu.request("GET", "accounts?$select=name&$filter=name eq '@home'&@home='nope'")
    assert [row["name"] for row in response.json()["value"]] == ["@home"]
