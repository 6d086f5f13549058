"""Sync Person to Microsoft as a trigger campaign step, against the emulator over HTTP
(B31-B33, B48): the lead is in Dynamics as soon as the runner has run the event, with no sync
cycle in between; running again, or a cycle, makes no second record; Sync As = Contact makes
a contact with no account; a Dynamics rejection lands in the activity log, the sync errors and
the step's result, and the next person still gets their lead."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, select
from sync_harness import Org, activities_of, open_errors

from crmsync.dynamics.client import DynamicsClient
from crmsync.marketing.activity_types import SYNC_ERROR, SYNC_LEAD_TO_MICROSOFT
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import persons
from crmsync.sync.campaign_push import ImmediatePush, campaign_runner
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.runner import set_enabled


def _campaign(engine: Engine, **step: object) -> int:
    return (
        CampaignService(engine)
        .create(
            {
                "name": "Sync new people",
                "active": True,
                "triggers": [{"type": "person_created"}],
                "smartList": {"filters": [{"field": "crmType", "operator": "is_empty"}]},
                "flow": [{"type": "sync_person_to_microsoft", **step}],
            }
        )
        .id
    )


def _person(engine: Engine, email: str, **values: object) -> int:
    """A new person, even when another has this e-mail (created by id, not by e-mail)."""
    (outcome,) = PersonService(engine).sync(
        [{"email": email, "firstName": "Nova", "lastName": "Trigger", **values}],
        action="createOnly",
        lookup_field="id",
    )
    assert outcome.id is not None
    return outcome.id


def _crm(engine: Engine, person_id: int) -> tuple[Any, ...]:
    with engine.connect() as conn:
        row = conn.execute(
            select(persons.c.crmType, persons.c.crmLeadId, persons.c.crmContactId).where(
                persons.c.id == person_id
            )
        ).one()
    return tuple(row)


def test_trigger_creates_the_lead_at_once_and_only_once(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    org, client, cycle = synced
    set_enabled(migrated_engine, True)
    campaign_id = _campaign(migrated_engine)
    runner = campaign_runner(migrated_engine, push=ImmediatePush(migrated_engine, client))
    leads_before = org.app.state.storage.count("lead")

    started = time.monotonic()
    person_id = _person(migrated_engine, "nova.trigger@example.com")
    assert runner.run_pending() == 1
    elapsed = time.monotonic() - started

    crm_type, lead_id, _ = _crm(migrated_engine, person_id)
    assert crm_type == "Lead" and lead_id
    row = org.row("lead", lead_id)
    assert row is not None and row["lastname"] == "Trigger"
    assert elapsed < 5  # no cycle, no pause: the push happened in the runner
    logged = [a for a in activities_of(migrated_engine, person_id)]
    assert any(
        a["type_id"] == SYNC_LEAD_TO_MICROSOFT and a["campaign_id"] == campaign_id for a in logged
    )

    # again: the runner has nothing, a cycle creates nothing, a second request is a no-op
    assert runner.run_pending() == 0
    cycle.run()
    CampaignService(migrated_engine).create(
        {
            "name": "Again",
            "type": "batch",
            "smartList": {"filters": [{"field": "email", "operator": "contains", "value": "nova"}]},
            "flow": [{"type": "sync_person_to_microsoft"}],
        }
    )
    again = CampaignService(migrated_engine).find("Again")
    assert CampaignService(migrated_engine).run_batch(again.id) == 1
    assert runner.run_pending() == 1
    assert CampaignService(migrated_engine).results(again.id)[0]["status"] == "skipped"
    assert org.app.state.storage.count("lead") == leads_before + 1
    assert open_errors(migrated_engine) == []


def test_sync_as_contact_makes_a_contact_with_no_account(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    org, client, _ = synced
    set_enabled(migrated_engine, True)
    _campaign(migrated_engine, syncAs="contact")
    runner = campaign_runner(migrated_engine, push=ImmediatePush(migrated_engine, client))
    contacts_before = org.app.state.storage.count("contact")

    person_id = _person(migrated_engine, "contact.trigger@example.com")
    runner.run_pending()

    crm_type, lead_id, contact_id = _crm(migrated_engine, person_id)
    assert (crm_type, lead_id) == ("Contact", None)
    row = org.row("contact", contact_id)
    assert row is not None and row.get("_parentcustomerid_value") is None
    assert org.app.state.storage.count("contact") == contacts_before + 1


def test_a_rejected_create_is_logged_and_the_campaign_goes_on(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    """Duplicate detection refuses the first person's lead: its code and message are in the
    person's activity log, the sync errors and the step result; the second person is synced."""
    org, client, _ = synced
    set_enabled(migrated_engine, True)
    taken = org.alex().get("leads", org.alex().first_ids("leads", 1)[0], "emailaddress1")
    campaign_id = _campaign(migrated_engine)
    push = ImmediatePush(migrated_engine, client, duplicate_detection=True)
    runner = campaign_runner(migrated_engine, push=push)

    refused = _person(migrated_engine, str(taken["emailaddress1"]))
    accepted = _person(migrated_engine, "fresh.person@example.com")
    assert runner.run_pending() == 2

    results = {r["personId"]: r for r in CampaignService(migrated_engine).results(campaign_id)}
    assert results[refused]["status"] == "failed"
    assert "0x80040333" in str(results[refused]["message"])
    assert results[accepted]["status"] == "done"
    assert _crm(migrated_engine, accepted)[0] == "Lead"
    (error,) = open_errors(migrated_engine)
    assert error["local_id"] == refused and error["error_code"] == "0x80040333"
    assert SYNC_ERROR in {a["type_id"] for a in activities_of(migrated_engine, refused)}


class _Crash(BaseException):
    """The process dying between the step's commit and the push (not an Exception: nothing
    in the runner may catch it)."""


def test_a_crash_after_the_step_leaves_one_lead_and_the_step_done(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    """The first runner dies right after the step committed; once its claim expires a second
    runner takes the event over: the step is not run again, its create is pushed, and there
    is exactly one new lead; a later cycle adds none."""
    org, client, cycle = synced
    set_enabled(migrated_engine, True)
    campaign_id = _campaign(migrated_engine)
    leads_before = org.app.state.storage.count("lead")

    def die(_: object) -> None:
        raise _Crash

    person_id = _person(migrated_engine, "crash.test@example.com")
    dying = campaign_runner(migrated_engine, push=die, claim_seconds=0.2)
    try:
        dying.run_pending()
    except _Crash:
        pass
    else:  # pragma: no cover - the push must have been reached
        raise AssertionError("the step did not ask for a push")
    assert org.app.state.storage.count("lead") == leads_before  # nothing sent yet

    time.sleep(0.3)  # the dead runner's claim expires
    survivor = campaign_runner(migrated_engine, push=ImmediatePush(migrated_engine, client))
    assert survivor.run_pending() == 1

    assert org.app.state.storage.count("lead") == leads_before + 1
    assert _crm(migrated_engine, person_id)[0] == "Lead"
    results = CampaignService(migrated_engine).results(campaign_id)
    assert [(r["personId"], r["status"]) for r in results] == [(person_id, "done")]
    cycle.run()
    assert org.app.state.storage.count("lead") == leads_before + 1


def test_changes_from_dynamics_fire_triggers(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    """The sync applying a Dynamics edit writes the trigger event in the same transaction:
    'Data Value Changes' on the job title fires for the edited lead's person only."""
    org, _, cycle = synced
    CampaignService(migrated_engine).create(
        {
            "name": "Title changed in Dynamics",
            "active": True,
            "qualification": "every_time",
            "triggers": [{"type": "data_value_changes", "field": "title", "to": "CFO"}],
            "flow": [{"type": "change_data_value", "field": "leadStatus", "value": "Title CFO"}],
        }
    )
    alex = org.alex()
    edited, untouched = alex.first_ids("leads", 2)
    assert alex.patch("leads", edited, {"jobtitle": "CFO"}).is_success
    assert alex.patch("leads", untouched, {"jobtitle": "CTO"}).is_success

    cycle.run()
    assert campaign_runner(migrated_engine).run_pending() == 1

    with migrated_engine.connect() as conn:
        statuses = dict(
            conn.execute(
                select(persons.c.crmLeadId, persons.c.leadStatus).where(
                    persons.c.crmLeadId.in_([edited, untouched])
                )
            ).all()
        )
    assert statuses == {edited: "Title CFO", untouched: statuses[untouched]}
    assert statuses[untouched] != "Title CFO"
