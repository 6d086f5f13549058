"""Alternate keys: defined through metadata, then used to retrieve, upsert, bind and delete.

Microsoft Learn: "Define alternate keys using the Web API" (https://learn.microsoft.com/
power-apps/developer/data-platform/define-alternate-keys-entity), "Use an alternate key to
reference a record" (.../use-alternate-key-reference-record) and "Upsert a table row using the
Web API" (.../webapi/update-delete-entities-using-web-api#upsert-a-table-row).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from data_plane_support import Emulator, running_emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _define(emu: Emulator, table: str, schema: str, *columns: str) -> Any:
    return emu.request(
        "POST",
        f"EntityDefinitions(LogicalName='{table}')/Keys",
        {
            "SchemaName": schema,
            "DisplayName": {"LocalizedLabels": [{"Label": schema, "LanguageCode": 1033}]},
            "KeyAttributes": list(columns),
        },
    )


def test_a_key_is_defined_and_listed(emu: Emulator) -> None:
    """POST .../Keys -> 204; GET .../Keys and $expand=Keys show it Active."""
    created = _define(emu, "account", "new_AccountNumberKey", "accountnumber")
    assert created.status_code == 204, created.text
    assert "/Keys(" in created.headers["OData-EntityId"]
    listed = emu.request(
        "GET", "EntityDefinitions(LogicalName='account')/Keys?$select=LogicalName,KeyAttributes"
    ).json()["value"]
    assert [(k["LogicalName"], k["KeyAttributes"]) for k in listed] == [
        ("new_accountnumberkey", ["accountnumber"])
    ]
    expanded = emu.request(
        "GET",
        "EntityDefinitions(LogicalName='account')?$select=LogicalName"
        "&$expand=Keys($select=KeyAttributes,EntityKeyIndexStatus)",
    ).json()
    assert expanded["Keys"][0]["EntityKeyIndexStatus"] == "Active"


def test_retrieve_upsert_and_delete_by_key(emu: Emulator) -> None:
    """GET accounts(accountnumber='A-1'); PATCH by key creates then updates; DELETE by key."""
    assert _define(emu, "account", "new_AccountNumberKey", "accountnumber").status_code == 204
    assert emu.request("GET", "accounts(accountnumber='A-1')").status_code == 404
    created = emu.request(
        "PATCH",
        "accounts(accountnumber='A-1')",
        {"name": "Keyed Co"},
        headers={"Prefer": "return=representation"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["accountnumber"] == "A-1"
    updated = emu.request(
        "PATCH",
        "accounts(accountnumber='A-1')",
        {"name": "Keyed Co Renamed", "accountnumber": "ignored"},
        headers={"Prefer": "return=representation"},
    )
    assert updated.status_code == 200, updated.text
    body = emu.request("GET", "accounts(accountnumber='A-1')?$select=name,accountnumber").json()
    assert (body["name"], body["accountnumber"]) == ("Keyed Co Renamed", "A-1")
    assert emu.request("DELETE", "accounts(accountnumber='A-1')").status_code == 204
    assert emu.request("GET", "accounts(accountnumber='A-1')").status_code == 404


def test_multi_part_key_and_quotes(emu: Emulator) -> None:
    """contacts(firstname='Joe',lastname='O''Neil') addresses by both columns."""
    assert _define(emu, "contact", "new_NameKey", "firstname", "lastname").status_code == 204
    contact = emu.create("contacts", {"firstname": "Joe", "lastname": "O'Neil"})
    found = emu.request("GET", "contacts(lastname='O''Neil',firstname='Joe')?$select=contactid")
    assert found.status_code == 200, found.text
    assert found.json()["contactid"] == contact
    partial = emu.request("GET", "contacts(firstname='Joe')")
    assert partial.status_code == 400


def test_a_column_that_is_no_key_is_the_documented_400(emu: Emulator) -> None:
    """Without a key on emailaddress1: 400 'The key in the request URI is not valid'."""
    refused = emu.request("GET", "leads(emailaddress1='a@b.example')")
    assert refused.status_code == 400
    assert "key in the request URI is not valid" in refused.json()["error"]["message"]


def test_duplicate_key_values_are_refused(emu: Emulator) -> None:
    """A second account with the same accountnumber: 412 0x80060892; an update likewise."""
    assert _define(emu, "account", "new_AccountNumberKey", "accountnumber").status_code == 204
    emu.create("accounts", {"name": "First", "accountnumber": "DUP"})
    second = emu.request("POST", "accounts", {"name": "Second", "accountnumber": "DUP"})
    assert second.status_code == 412
    assert second.json()["error"]["code"] == "0x80060892"
    other = emu.create("accounts", {"name": "Other", "accountnumber": "OTHER"})
    clash = emu.request("PATCH", f"accounts({other})", {"accountnumber": "DUP"})
    assert clash.status_code == 412
    assert emu.request("PATCH", f"accounts({other})", {"name": "Fine"}).status_code == 204


def test_a_key_over_duplicated_data_fails(emu: Emulator) -> None:
    """Existing duplicates: the key is Failed and cannot address rows."""
    emu.create("accounts", {"name": "Twin", "accountnumber": "T"})
    emu.create("accounts", {"name": "Twin", "accountnumber": "T2"})
    assert _define(emu, "account", "new_NameKey", "name").status_code == 204
    key = emu.request("GET", "EntityDefinitions(LogicalName='account')/Keys").json()["value"][0]
    assert key["EntityKeyIndexStatus"] == "Failed"
    assert emu.request("GET", "accounts(name='Twin')").status_code == 400


def test_bind_and_upsert_multiple_by_key(emu: Emulator) -> None:
    """@odata.bind to /accounts(accountnumber='B-1'); UpsertMultiple with keyed @odata.id."""
    assert _define(emu, "account", "new_AccountNumberKey", "accountnumber").status_code == 204
    account = emu.create("accounts", {"name": "Bound", "accountnumber": "B-1"})
    contact = emu.create(
        "contacts",
        {
            "lastname": "Linked",
            "parentcustomerid_account@odata.bind": "/accounts(accountnumber='B-1')",
        },
    )
    linked = emu.request("GET", f"contacts({contact})?$select=_parentcustomerid_value").json()
    assert linked["_parentcustomerid_value"] == account
    missing = emu.request(
        "POST",
        "contacts",
        {"lastname": "X", "parentcustomerid_account@odata.bind": "/accounts(accountnumber='NO')"},
    )
    assert missing.status_code == 404
    upserted = emu.request(
        "POST",
        "accounts/Microsoft.Dynamics.CRM.UpsertMultiple",
        {
            "Targets": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.account",
                    "@odata.id": "accounts(accountnumber='B-1')",
                    "name": "Bound Renamed",
                },
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.account",
                    "@odata.id": "accounts(accountnumber='B-2')",
                    "name": "Brand New",
                },
            ]
        },
    )
    assert upserted.status_code == 200, upserted.text
    assert upserted.json()["Ids"][0] == account
    new = emu.request("GET", "accounts(accountnumber='B-2')?$select=name").json()
    assert new["name"] == "Brand New"


def test_keys_refuse_bad_definitions_and_can_be_deleted(emu: Emulator) -> None:
    """Unsupported column types and secured columns are refused; DELETE .../Keys(...) works."""
    assert _define(emu, "lead", "new_BadKey", "donotemail").status_code == 400
    assert _define(emu, "lead", "new_SecretKey", "revenue").status_code == 400
    assert _define(emu, "lead", "new_EmailKey", "emailaddress1").status_code == 204
    deleted = emu.request(
        "DELETE", "EntityDefinitions(LogicalName='lead')/Keys(LogicalName='new_emailkey')"
    )
    assert deleted.status_code == 204
    assert emu.request("GET", "leads(emailaddress1='a@b.example')").status_code == 400


def test_a_key_survives_a_restart(tmp_path: Path) -> None:
    """A file database keeps its keys: after a restart the row is found by key."""
    db = str(tmp_path / "org.db")
    with running_emulator(db_path=db) as first:
        assert _define(first, "account", "new_AccountNumberKey", "accountnumber").status_code == 204
        first.create("accounts", {"name": "Persisted", "accountnumber": "P-1"})
    with running_emulator(db_path=db) as second:
        found = second.request("GET", "accounts(accountnumber='P-1')?$select=name")
        assert found.status_code == 200, found.text
        assert found.json()["name"] == "Persisted"
