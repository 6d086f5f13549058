"""Deleting a row applies each relationship's CascadeConfiguration.Delete.

Microsoft Learn, "Configure table relationship cascading behavior"
(https://learn.microsoft.com/power-apps/maker/data-platform/configure-entity-relationship-
cascading-behavior): Cascade deletes the related rows, RemoveLink clears their lookup,
Restrict prevents the delete. "Use change tracking to synchronize data with external systems":
deleted rows come back as ``$deletedEntity`` with ``reason: deleted``, changed rows as rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from data_plane_support import Emulator, running_emulator

TRACK = {"Prefer": "odata.track-changes"}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _delta_link(emu: Emulator, set_and_select: str) -> str:
    body = emu.request("GET", set_and_select, headers=TRACK).json()
    return str(body["@odata.deltaLink"])


def _delta(emu: Emulator, link: str) -> list[dict[str, Any]]:
    response = emu.request("GET", link)
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


def test_deleting_an_account_cascades_to_contacts_and_unlinks_leads(emu: Emulator) -> None:
    """contact_customer_accounts is Cascade, lead_parent_account RemoveLink, Account_Tasks
    Cascade; the change feeds show the deleted contacts and the unlinked leads."""
    account = emu.create("accounts", {"name": "Gone Co"})
    other = emu.create("accounts", {"name": "Stays Co"})
    bind = f"/accounts({account})"
    child = emu.create(
        "contacts", {"lastname": "Child", "parentcustomerid_account@odata.bind": bind}
    )
    keeper = emu.create(
        "contacts",
        {"lastname": "Keeper", "parentcustomerid_account@odata.bind": f"/accounts({other})"},
    )
    lead = emu.create("leads", {"lastname": "Prospect", "parentaccountid@odata.bind": bind})
    task = emu.create(
        "tasks", {"subject": "Call", "regardingobjectid_account_task@odata.bind": bind}
    )
    contacts_link = _delta_link(emu, "contacts?$select=lastname")
    leads_link = _delta_link(emu, "leads?$select=lastname,_parentaccountid_value")

    assert emu.request("DELETE", f"accounts({account})").status_code == 204

    assert emu.request("GET", f"contacts({child})").status_code == 404
    assert emu.request("GET", f"contacts({keeper})").status_code == 200
    assert emu.request("GET", f"tasks({task})").status_code == 404
    unlinked = emu.request("GET", f"leads({lead})?$select=_parentaccountid_value").json()
    assert unlinked["_parentaccountid_value"] is None
    contact_changes = _delta(emu, contacts_link)
    assert [(c.get("id"), c.get("reason")) for c in contact_changes] == [(child, "deleted")]
    assert contact_changes[0]["@odata.context"].endswith("$metadata#contacts/$deletedEntity")
    lead_changes = _delta(emu, leads_link)
    assert [(c["leadid"], c["_parentaccountid_value"]) for c in lead_changes] == [(lead, None)]


def test_cascade_goes_down_more_than_one_level(emu: Emulator) -> None:
    """A contact under a contact under the account goes too (contact_customer_contacts)."""
    account = emu.create("accounts", {"name": "Top"})
    middle = emu.create(
        "contacts",
        {"lastname": "Middle", "parentcustomerid_account@odata.bind": f"/accounts({account})"},
    )
    bottom = emu.create(
        "contacts",
        {"lastname": "Bottom", "parentcustomerid_contact@odata.bind": f"/contacts({middle})"},
    )
    assert emu.request("DELETE", f"accounts({account})").status_code == 204
    assert emu.request("GET", f"contacts({bottom})").status_code == 404


def test_a_self_reference_does_not_loop(emu: Emulator) -> None:
    """An account that is its own parent is deleted once, without recursion trouble."""
    account = emu.create("accounts", {"name": "Loop"})
    patched = emu.request(
        "PATCH", f"accounts({account})", {"parentaccountid@odata.bind": f"/accounts({account})"}
    )
    assert patched.status_code == 204
    assert emu.request("DELETE", f"accounts({account})").status_code == 204
    assert emu.request("GET", f"accounts({account})").status_code == 404


def _custom_child_table(emu: Emulator, delete: str) -> None:
    label = {"LocalizedLabels": [{"Label": "Contract", "LanguageCode": 1033}]}
    created = emu.request(
        "POST",
        "EntityDefinitions",
        {
            "SchemaName": "new_Contract",
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
    relation = emu.request(
        "POST",
        "RelationshipDefinitions",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
            "SchemaName": "new_account_new_contract",
            "ReferencedEntity": "account",
            "ReferencingEntity": "new_contract",
            "CascadeConfiguration": {"Delete": delete},
            "Lookup": {"SchemaName": "new_AccountId", "DisplayName": label},
        },
    )
    assert relation.status_code == 204, relation.text


def test_restrict_refuses_the_delete_and_changes_nothing(emu: Emulator) -> None:
    """Restrict: 400 with the association error; the account, its contacts and rows remain."""
    _custom_child_table(emu, "Restrict")
    account = emu.create("accounts", {"name": "Bound"})
    contact = emu.create(
        "contacts",
        {"lastname": "Near", "parentcustomerid_account@odata.bind": f"/accounts({account})"},
    )
    emu.create(
        "new_contracts", {"new_name": "C-1", "new_accountid@odata.bind": f"/accounts({account})"}
    )
    refused = emu.request("DELETE", f"accounts({account})")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "0x80040227"
    assert "associated with another object" in error["message"]
    assert emu.request("GET", f"accounts({account})").status_code == 200
    assert emu.request("GET", f"contacts({contact})").status_code == 200


def test_custom_cascade_deletes_the_custom_rows(emu: Emulator) -> None:
    """A custom relationship made with Delete: Cascade takes its rows with the account."""
    _custom_child_table(emu, "Cascade")
    account = emu.create("accounts", {"name": "Parent"})
    row = emu.create(
        "new_contracts", {"new_name": "C-2", "new_accountid@odata.bind": f"/accounts({account})"}
    )
    assert emu.request("DELETE", f"accounts({account})").status_code == 204
    assert emu.request("GET", f"new_contracts({row})").status_code == 404


def test_a_currency_in_use_cannot_be_deleted(emu: Emulator) -> None:
    """TransactionCurrency_* relationships are Restrict: the base currency of a lead stays."""
    lead = emu.create("leads", {"lastname": "Rich", "revenue": 1000})
    currency = emu.request("GET", f"leads({lead})?$select=_transactioncurrencyid_value").json()[
        "_transactioncurrencyid_value"
    ]
    refused = emu.request("DELETE", f"transactioncurrencies({currency})")
    assert refused.status_code == 400
    assert emu.request("GET", f"transactioncurrencies({currency})").status_code == 200


def test_deleting_a_marketing_list_deletes_its_memberships(emu: Emulator) -> None:
    """list_listmember is Cascade: the listmember rows go with the list; the lead stays."""
    marketing_list = emu.create(
        "lists", {"listname": "Spring", "createdfromcode": 4, "type": False}
    )
    lead = emu.create("leads", {"lastname": "Member"})
    added = emu.request(
        "POST",
        f"lists({marketing_list})/listlead_association/$ref",
        {"@odata.id": f"leads({lead})"},
    )
    assert added.status_code == 204, added.text
    assert len(emu.request("GET", "listmembers").json()["value"]) == 1
    assert emu.request("DELETE", f"lists({marketing_list})").status_code == 204
    assert emu.request("GET", "listmembers").json()["value"] == []
    assert emu.request("GET", f"leads({lead})").status_code == 200
