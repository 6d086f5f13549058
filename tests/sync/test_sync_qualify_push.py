"""A marketing edit made around a lead's qualification must reach the contact (B30, B18).

The person continues as the contact made from its lead, merged against the lead's baseline.
The contact holds a copy of the lead's values at the moment of qualification; if the sync
pushes the edit to the (now read-only) lead before it has read the contact, the lead's
baseline gets ahead of that copy and the contact's older value looked like a Dynamics change
that overwrote the edit on both sides. The soak found this on PostgreSQL under load: one
person's job title back at its starting value on the person and the contact.

Two deterministic ways into that window, each on both databases:

* the contact read fails for the length of a cycle (a 5xx burst on contacts only), so the
  cycle that reads the qualified lead goes on to its push;
* the qualification lands after the cycle's reads and before its push (stepped in process
  through the cycle's progress callback, which runs after each applied page).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sync_harness import Org, edit_person, engine_client, person_by_crm_id, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import WriteRequest
from crmsync.emulator.config import default_config
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.reports import Progress

pytestmark = pytest.mark.e2e

NEW_TITLE = "Edited around the qualification"


@pytest.fixture
def org_and_client(migrated_engine: Engine) -> Iterator[tuple[Org, DynamicsClient]]:
    """An emulated org of three leads, synced once."""
    with running_org(default_config(), 3) as org:
        client = engine_client(org.base)
        assert SyncCycle(migrated_engine, client).run().status == "ok"
        yield org, client
        client.close()


def _open_lead(org: Org, client: DynamicsClient) -> str:
    for lead_id in org.alex().first_ids("leads", 10):
        if client.get("leads", lead_id, ["statecode"]).values.get("statecode") == 0:
            return lead_id
    raise AssertionError("the seeded org has no open lead")


def _qualify(client: DynamicsClient, lead_id: str) -> str:
    """QualifyLead (a salesperson's action) creating a contact; returns the contact's id."""
    (qualified,) = client.write_batch([WriteRequest.qualify_lead(lead_id)])
    assert qualified.ok, qualified.message
    return qualified.created[0].id


def _both_sides_have_the_edit(
    engine: Engine, client: DynamicsClient, person_id: int, contact_id: str
) -> None:
    continued = person_by_crm_id(engine, "contact", contact_id)
    assert continued["id"] == person_id
    assert (continued["crmType"], continued["title"]) == ("Contact", NEW_TITLE)
    assert client.get("contacts", contact_id, ["jobtitle"]).values["jobtitle"] == NEW_TITLE


def test_an_edit_made_while_the_contact_cannot_be_read_reaches_the_contact(
    migrated_engine: Engine, org_and_client: tuple[Org, DynamicsClient]
) -> None:
    """The cycle that reads the qualified lead cannot read contacts (every contacts request
    fails) and goes on to its push; the next cycles read the contact: the edit must win on
    the person and the contact, and the read-only lead is left as it was qualified."""
    org, client = org_and_client
    lead_id = _open_lead(org, client)
    person = person_by_crm_id(migrated_engine, "lead", lead_id)
    old_title = person["title"]
    assert old_title != NEW_TITLE
    contact_id = _qualify(client, lead_id)
    edit_person(migrated_engine, int(person["id"]), title=NEW_TITLE)

    org.admin("PUT", "faults", {"error_rate": 1.0, "path_contains": "/contacts"})
    cycle = SyncCycle(migrated_engine, client)
    report = cycle.run()
    assert [e.entity for e in report.entities if e.error] == ["contact"]
    org.admin("PUT", "faults", {})
    assert cycle.run().status == "ok"
    assert cycle.run().status == "ok"

    _both_sides_have_the_edit(migrated_engine, client, int(person["id"]), contact_id)
    assert client.get("leads", lead_id, ["jobtitle"]).values["jobtitle"] == old_title


def test_an_edit_made_while_the_lead_is_qualified_mid_cycle_reaches_the_contact(
    migrated_engine: Engine, org_and_client: tuple[Org, DynamicsClient]
) -> None:
    """The salesperson qualifies the lead and the marketer edits the person after the cycle
    read contacts and before it pushes: the push meets the qualified lead (its write is
    refused as stale and the lead read again); the next cycles must bring the edit to the
    contact."""
    org, client = org_and_client
    lead_id = _open_lead(org, client)
    person = person_by_crm_id(migrated_engine, "lead", lead_id)
    contact_ids: list[str] = []

    def after_page(progress: Progress) -> None:
        if progress.entity == "opportunity" and progress.done and not contact_ids:
            contact_ids.append(_qualify(client, lead_id))
            edit_person(migrated_engine, int(person["id"]), title=NEW_TITLE)

    assert SyncCycle(migrated_engine, client, progress=after_page).run().status == "ok"
    assert contact_ids, "the cycle read no opportunity page"
    cycle = SyncCycle(migrated_engine, client)
    assert cycle.run().status == "ok"
    assert cycle.run().status == "ok"

    _both_sides_have_the_edit(migrated_engine, client, int(person["id"]), contact_ids[0])
