"""One-way entities and owners over real HTTP: accounts deleted in Dynamics are flagged (B29),
an opportunity whose potential customer is a contact gets that contact's company and a role
for its person (B6), and owners link sales users only when they are users (B5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sync_harness import engine_client, person_by_crm_id, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import LookupValue, WriteRequest
from crmsync.emulator.config import default_config
from crmsync.store.tables import companies, opportunities, opportunity_roles, sales_persons
from crmsync.sync.cycle import SyncCycle

pytestmark = pytest.mark.e2e


@pytest.fixture
def synced(migrated_engine: Engine) -> Iterator[tuple[DynamicsClient, SyncCycle]]:
    with running_org(default_config(), 10) as org:
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        cycle.run()
        yield client, cycle
        client.close()


def test_deleted_account_is_flagged_not_removed(
    migrated_engine: Engine, synced: tuple[DynamicsClient, SyncCycle]
) -> None:
    """B29: the company of an account deleted in Dynamics stays, marked CRM-deleted."""
    client, cycle = synced
    account = next(iter(client.iter_records("accounts", ["name"])))
    (deleted,) = client.write_batch([WriteRequest.delete("account", account.id)])
    assert deleted.ok
    report = cycle.run()
    assert {e.entity: e.deleted_flags for e in report.entities}["account"] == 1
    with migrated_engine.connect() as conn:
        row = conn.execute(
            select(companies.c.company, companies.c.crmIsDeleted).where(
                companies.c.externalCompanyId == account.id
            )
        ).one()
    assert row.company == account.values["name"] and row.crmIsDeleted is True


def test_contact_customer_gives_role_and_company(
    migrated_engine: Engine, synced: tuple[DynamicsClient, SyncCycle]
) -> None:
    """B6/R42: a contact as potential customer → an opportunity role for the contact's person,
    and the opportunity's company is the contact's account."""
    client, cycle = synced
    contact = next(
        r
        for r in client.iter_records("contacts", ["parentcustomerid"])
        if isinstance(r.values.get("parentcustomerid"), LookupValue)
    )
    account = contact.values["parentcustomerid"]
    assert isinstance(account, LookupValue)
    opportunity_id = str(uuid.uuid4())
    (created,) = client.write_batch(
        [
            WriteRequest.create(
                "opportunity",
                opportunity_id,
                {"name": "Contact deal", "customerid": LookupValue(contact.id, "contact")},
            )
        ]
    )
    assert created.ok, created
    cycle.run()
    person = person_by_crm_id(migrated_engine, "contact", contact.id)
    with migrated_engine.connect() as conn:
        opportunity = conn.execute(
            select(opportunities.c.name, opportunities.c.externalCompanyId).where(
                opportunities.c.externalOpportunityId == opportunity_id
            )
        ).one()
        roles = conn.execute(
            select(opportunity_roles.c.leadId, opportunity_roles.c.role).where(
                opportunity_roles.c.externalOpportunityId == opportunity_id
            )
        ).all()
    assert tuple(opportunity) == ("Contact deal", account.id)
    assert [tuple(r) for r in roles] == [(person["id"], "Customer")]
    assert _opportunity_company(migrated_engine, opportunity_id) == _company_id(
        migrated_engine, account.id
    )
    assert person["company_id"] == _company_id(migrated_engine, account.id)


def test_account_customer_gives_the_company_only(
    migrated_engine: Engine, synced: tuple[DynamicsClient, SyncCycle]
) -> None:
    """B6/R42: an account as potential customer → the opportunity's company is that account's
    company, and no opportunity role is made."""
    client, cycle = synced
    account = next(iter(client.iter_records("accounts", ["name"])))
    opportunity_id = str(uuid.uuid4())
    (created,) = client.write_batch(
        [
            WriteRequest.create(
                "opportunity",
                opportunity_id,
                {"name": "Account deal", "customerid": LookupValue(account.id, "account")},
            )
        ]
    )
    assert created.ok, created
    cycle.run()
    with migrated_engine.connect() as conn:
        roles = conn.execute(
            select(opportunity_roles.c.id).where(
                opportunity_roles.c.externalOpportunityId == opportunity_id
            )
        ).all()
    company = _company_id(migrated_engine, account.id)
    assert company is not None
    assert _opportunity_company(migrated_engine, opportunity_id) == company
    assert roles == []


def _company_id(engine: Engine, account_id: str) -> int | None:
    with engine.connect() as conn:
        found = conn.execute(
            select(companies.c.id).where(companies.c.externalCompanyId == account_id)
        ).scalar_one_or_none()
    return None if found is None else int(found)


def _opportunity_company(engine: Engine, opportunity_id: str) -> int | None:
    with engine.connect() as conn:
        found = conn.execute(
            select(opportunities.c.company_id).where(
                opportunities.c.externalOpportunityId == opportunity_id
            )
        ).scalar_one()
    return None if found is None else int(found)


def test_user_owner_links_the_sales_user_and_team_owner_does_not(
    migrated_engine: Engine, synced: tuple[DynamicsClient, SyncCycle]
) -> None:
    """B5: a lead owned by a systemuser links its person to that sales user; reassigned to a
    team, the sales-user link is empty."""
    client, cycle = synced
    lead = next(iter(client.iter_records("leads", ["ownerid"])))
    user = next(iter(client.iter_records("systemusers", ["fullname"])))
    team = next(iter(client.iter_records("teams", ["name"])))
    (to_user,) = client.write_batch(
        [WriteRequest.update("lead", lead.id, {"ownerid": LookupValue(user.id, "systemuser")})]
    )
    assert to_user.ok, to_user
    cycle.run()
    person = person_by_crm_id(migrated_engine, "lead", lead.id)
    with migrated_engine.connect() as conn:
        seller = conn.execute(
            select(sales_persons.c.id).where(sales_persons.c.externalSalesPersonId == user.id)
        ).scalar_one()
    assert person["externalSalesPersonId"] == user.id and person["sales_person_id"] == seller

    (to_team,) = client.write_batch(
        [WriteRequest.update("lead", lead.id, {"ownerid": LookupValue(team.id, "team")})]
    )
    assert to_team.ok, to_team
    cycle.run()
    person = person_by_crm_id(migrated_engine, "lead", lead.id)
    assert person["externalSalesPersonId"] is None and person["sales_person_id"] is None
