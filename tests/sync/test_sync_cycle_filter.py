"""The sync filter ``new_synctomkto`` when it exists in Dynamics and is selected (B9, B20):
empty or Yes syncs, an explicit No skips without deleting, No → Yes creates or updates.
The field selection is read from the store, as the admin side saves it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select
from sync_harness import Org, engine_client, person_by_crm_id, running_org, select_lead_sync_filter

from crmsync.dynamics.types import WriteRequest
from crmsync.emulator.config import default_config
from crmsync.store.tables import crm_links
from crmsync.sync.cycle import SyncCycle

pytestmark = pytest.mark.e2e


@pytest.fixture
def org_with_filter(migrated_engine: Engine) -> Iterator[tuple[Org, SyncCycle]]:
    with running_org(default_config(), 5) as org:
        client = select_lead_sync_filter(migrated_engine, org)
        cycle = SyncCycle(migrated_engine, client)
        cycle.run()
        yield org, cycle
        client.close()


def _linked(engine: Engine, crm_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(crm_links).where(crm_links.c.crm_id == crm_id)
            ).scalar_one()
        )


def test_sync_filter_no_skips_and_yes_resumes(
    migrated_engine: Engine, org_with_filter: tuple[Org, SyncCycle]
) -> None:
    """B20/R63–R65: empty → synced; Yes→No → later edits skipped, the person kept; No→Yes →
    updated; a lead created with No gets no person until it is switched to Yes."""
    org, cycle = org_with_filter
    alex = org.alex()
    lead_id = alex.first_ids("leads", 1)[0]
    assert _linked(migrated_engine, lead_id) == 1  # empty filter value: synced
    person = person_by_crm_id(migrated_engine, "lead", lead_id)

    assert alex.patch("leads", lead_id, {"new_synctomkto": False, "jobtitle": "Hidden"}).is_success
    report = cycle.run()
    assert {e.entity: e.skipped for e in report.entities}["lead"] == 1
    kept = person_by_crm_id(migrated_engine, "lead", lead_id)
    assert kept["id"] == person["id"] and kept["title"] != "Hidden"
    assert kept["crmIsDeleted"] is False

    assert alex.patch("leads", lead_id, {"new_synctomkto": True}).is_success
    cycle.run()
    assert person_by_crm_id(migrated_engine, "lead", lead_id)["title"] == "Hidden"

    new_id = str(uuid.uuid4())
    client = engine_client(org.base)
    (created,) = client.write_batch(
        [WriteRequest.create("lead", new_id, {"lastname": "Filtered", "new_synctomkto": False})]
    )
    assert created.ok, created
    cycle.run()
    assert _linked(migrated_engine, new_id) == 0
    assert alex.patch("leads", new_id, {"new_synctomkto": True}).is_success
    cycle.run()
    assert person_by_crm_id(migrated_engine, "lead", new_id)["lastName"] == "Filtered"
    client.close()
