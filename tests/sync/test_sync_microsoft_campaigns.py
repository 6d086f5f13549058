"""Campaign Sync (B47, R44) against the emulator over HTTP: Dynamics campaigns are read into
the marketing database with their state, crmsync's marketing lists are found again after the
database forgot them, campaigns gone from Dynamics are dropped, an inactive one is refused by
the step; and the trigger 'Person is Synced to Microsoft' fires."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sync_harness import Org

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import WriteRequest
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import microsoft_campaigns, persons
from crmsync.sync.campaign_push import ImmediatePush, campaign_runner
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.microsoft_campaigns import (
    chosen_list_id,
    list_campaigns,
    list_name,
    refresh_microsoft_campaigns,
)
from crmsync.sync.runner import set_enabled

Synced = tuple[Org, DynamicsClient, SyncCycle]


def _stored(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(microsoft_campaigns)).mappings()
        return {str(r["name"]): dict(r) for r in rows}


def test_campaigns_and_crmsync_lists_are_read_one_way(
    migrated_engine: Engine, synced: Synced
) -> None:
    _, client, _ = synced
    with migrated_engine.begin() as conn:
        assert refresh_microsoft_campaigns(conn, client) == 4
    stored = _stored(migrated_engine)
    assert set(stored) == {
        "Spring Product Launch",
        "Webinar Series: Data Platform",
        "Partner Co-marketing",
        "Autumn Trade Show",
    }
    spring = stored["Spring Product Launch"]
    assert spring["statecode"] == 0 and spring["leads_list_id"] is None

    # a list crmsync made earlier (a lost database, another install) is found by its name
    list_id = chosen_list_id(spring["crm_id"], "lead")
    values = {"listname": list_name(spring["crm_id"], "lead"), "createdfromcode": 4}
    (made,) = client.write_batch([WriteRequest.create("list", list_id, values)])
    assert made.ok
    # a campaign deactivated and one deleted in Dynamics
    webinar = stored["Webinar Series: Data Platform"]["crm_id"]
    partner = stored["Partner Co-marketing"]["crm_id"]
    (deactivated, deleted) = client.write_batch(
        [
            WriteRequest.update("campaign", webinar, {"statecode": 1, "statuscode": 6}),
            WriteRequest.delete("campaign", partner),
        ]
    )
    assert deactivated.ok and deleted.ok
    with migrated_engine.begin() as conn:
        assert refresh_microsoft_campaigns(conn, client) == 3
        active = [c.name for c in list_campaigns(conn)]
    stored = _stored(migrated_engine)
    assert stored["Spring Product Launch"]["leads_list_id"] == list_id
    assert "Partner Co-marketing" not in stored
    assert stored["Webinar Series: Data Platform"]["statecode"] == 1
    assert active == ["Autumn Trade Show", "Spring Product Launch"]


def test_an_inactive_dynamics_campaign_is_refused(migrated_engine: Engine, synced: Synced) -> None:
    _, client, _ = synced
    set_enabled(migrated_engine, True)
    with migrated_engine.begin() as conn:
        refresh_microsoft_campaigns(conn, client)
    webinar = _stored(migrated_engine)["Webinar Series: Data Platform"]["crm_id"]
    (done,) = client.write_batch(
        [WriteRequest.update("campaign", webinar, {"statecode": 1, "statuscode": 6})]
    )
    assert done.ok
    with migrated_engine.begin() as conn:
        refresh_microsoft_campaigns(conn, client)
    campaign_id = (
        CampaignService(migrated_engine)
        .create(
            {
                "name": "Webinar",
                "active": True,
                "triggers": [{"type": "person_created"}],
                "flow": [
                    {
                        "type": "add_to_microsoft_campaign",
                        "campaign": "Webinar Series: Data Platform",
                    }
                ],
            }
        )
        .id
    )
    PersonService(migrated_engine).sync([{"email": "late@example.com"}], action="createOnly")
    campaign_runner(
        migrated_engine, push=ImmediatePush(migrated_engine, client), client=client
    ).run_pending()
    (result,) = CampaignService(migrated_engine).results(campaign_id)
    assert result["status"] == "failed"
    assert "no active Dynamics campaign called" in str(result["message"])


def test_person_is_synced_to_microsoft_fires_other_campaigns(
    migrated_engine: Engine, synced: Synced
) -> None:
    _, client, _ = synced
    set_enabled(migrated_engine, True)
    service = CampaignService(migrated_engine)
    service.create(
        {
            "name": "Sync",
            "active": True,
            "triggers": [{"type": "person_created"}],
            "flow": [{"type": "sync_person_to_microsoft"}],
        }
    )
    follow = service.create(
        {
            "name": "After sync",
            "active": True,
            "triggers": [{"type": "person_synced_to_microsoft"}],
            "flow": [{"type": "change_data_value", "field": "leadStatus", "value": "In Dynamics"}],
        }
    )
    (outcome,) = PersonService(migrated_engine).sync(
        [{"email": "synced.trigger@example.com"}], action="createOnly"
    )
    runner = campaign_runner(
        migrated_engine, push=ImmediatePush(migrated_engine, client), client=client
    )
    assert runner.run_pending() == 2
    assert [r["status"] for r in service.results(follow.id)] == ["done"]
    with migrated_engine.connect() as conn:
        status = conn.execute(
            select(persons.c.leadStatus).where(persons.c.id == outcome.id)
        ).scalar_one()
    assert status == "In Dynamics"


def test_every_cycle_reads_the_campaigns_changed_in_dynamics_once_campaign_sync_is_in_use(
    migrated_engine: Engine, synced: Synced
) -> None:
    """Campaign Sync in the regular cycle: nothing is read before it is in use; once a saved
    smart campaign steps into Microsoft campaigns, the next cycle reads them all, a cycle
    with no campaign change costs one request more than before, and a campaign renamed,
    deactivated or created in Dynamics is in the marketing database after the next cycle,
    with no step asking for it."""
    _, client, cycle = synced
    quiet = cycle.run().api_calls
    assert _stored(migrated_engine) == {}
    CampaignService(migrated_engine).create(
        {
            "name": "Launch attendees",
            "type": "trigger",
            "triggers": [{"type": "person_created"}],
            "flow": [{"type": "add_to_microsoft_campaign", "campaign": "Spring Product Launch"}],
        }
    )
    cycle.run()
    stored = _stored(migrated_engine)
    assert len(stored) == 4
    assert cycle.run().api_calls == quiet + 1

    webinar = stored["Webinar Series: Data Platform"]["crm_id"]
    spring = stored["Spring Product Launch"]["crm_id"]
    new_id = "6b0f5d1e-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
    results = client.write_batch(
        [
            WriteRequest.update("campaign", webinar, {"statecode": 1, "statuscode": 6}),
            WriteRequest.update("campaign", spring, {"name": "Spring Launch 2027"}),
            WriteRequest.create("campaign", new_id, {"name": "Winter Roadshow"}),
        ]
    )
    assert all(r.ok for r in results), results
    cycle.run()

    stored = _stored(migrated_engine)
    assert stored["Webinar Series: Data Platform"]["statecode"] == 1
    assert "Spring Product Launch" not in stored
    assert stored["Spring Launch 2027"]["crm_id"] == spring
    assert stored["Winter Roadshow"]["crm_id"] == new_id
    with migrated_engine.connect() as conn:
        assert [c.name for c in list_campaigns(conn)] == [
            "Autumn Trade Show",
            "Partner Co-marketing",
            "Spring Launch 2027",
            "Winter Roadshow",
        ]
