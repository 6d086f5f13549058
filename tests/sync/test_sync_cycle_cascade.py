"""Deletes Dynamics cascades to related rows (Cascade / RemoveLink per relationship) reach the
marketing side without a dangling link: an account deleted in Dynamics takes its contacts with
it (flagged CRM-deleted, B26/B29) and unlinks its leads (their company link is cleared)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sync_harness import engine_client, person_by_crm_id, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import WriteRequest
from crmsync.emulator.config import default_config
from crmsync.store.tables import companies
from crmsync.sync.cycle import SyncCycle

pytestmark = pytest.mark.e2e


@pytest.fixture
def synced(migrated_engine: Engine) -> Iterator[tuple[DynamicsClient, SyncCycle]]:
    with running_org(default_config(), 60) as org:
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        cycle.run()
        yield client, cycle
        client.close()


def test_an_account_deleted_in_dynamics_leaves_no_dangling_link(
    migrated_engine: Engine, synced: tuple[DynamicsClient, SyncCycle]
) -> None:
    client, cycle = synced
    contacts = list(client.iter_records("contacts", ["parentcustomerid"]))
    leads = list(client.iter_records("leads", ["parentaccountid"]))
    by_account: dict[str, tuple[list[str], list[str]]] = {}
    for contact in contacts:
        parent = contact.values.get("parentcustomerid")
        if parent is not None and getattr(parent, "entity", "account") == "account":
            by_account.setdefault(str(parent.id), ([], []))[0].append(contact.id)
    for lead in leads:
        parent = lead.values.get("parentaccountid")
        if parent is not None:
            by_account.setdefault(str(parent.id), ([], []))[1].append(lead.id)
    account_id, (its_contacts, its_leads) = max(
        by_account.items(), key=lambda item: (bool(item[1][1]), len(item[1][0]))
    )
    assert its_contacts, "the seeded org gives accounts contacts"
    assert its_leads, "and leads whose parent account it is"

    (deleted,) = client.write_batch([WriteRequest.delete("account", account_id)])
    assert deleted.ok
    cycle.run()

    with migrated_engine.connect() as conn:
        company = conn.execute(
            select(companies.c.id, companies.c.crmIsDeleted).where(
                companies.c.externalCompanyId == account_id
            )
        ).one()
    assert company.crmIsDeleted is True  # B29: flagged, kept
    for contact_id in its_contacts:  # Cascade: the contacts went with their account
        person = person_by_crm_id(migrated_engine, "contact", contact_id)
        assert person["crmIsDeleted"] is True
    for lead_id in its_leads:  # RemoveLink: the lead stays, no longer linked to the account
        person = person_by_crm_id(migrated_engine, "lead", lead_id)
        assert person["crmIsDeleted"] is False
        assert person["company_id"] is None
        assert person["externalCompanyId"] is None
