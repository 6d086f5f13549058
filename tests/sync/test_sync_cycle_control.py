"""Running the sync: disabled means waiting without loss (B21), creates are exactly once
(B33), and a person whose Dynamics record is gone is not written back (B28). Real HTTP against
the emulator, SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, delete, select
from sync_harness import (
    activities_of,
    edit_person,
    engine_client,
    open_errors,
    outbox_count,
    person_by_crm_id,
)

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import WriteRequest
from crmsync.marketing.persons import PersonService
from crmsync.settings import SyncSettings
from crmsync.store import outbox
from crmsync.store.tables import persons, sync_baselines
from crmsync.sync.crm_create import request_crm_create
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.push import OutboxPusher, round_size
from crmsync.sync.runner import SyncRunner, set_enabled

pytestmark = pytest.mark.e2e


def test_disabled_sync_exchanges_nothing_and_loses_nothing(
    migrated_engine: Engine, synced: tuple[object, DynamicsClient, SyncCycle]
) -> None:
    """B21: while disabled the runner only waits (no request reaches Dynamics); marketing
    changes wait in the outbox and Dynamics changes in change tracking; enabling delivers
    both."""
    org, client, _ = synced
    alex = org.alex()  # type: ignore[attr-defined]
    lead_a, lead_b = alex.first_ids("leads", 2)
    person_b = person_by_crm_id(migrated_engine, "lead", lead_b)
    assert alex.patch("leads", lead_a, {"jobtitle": "While disabled"}).is_success
    edit_person(migrated_engine, person_b["id"], city="Waiting City")

    runner = SyncRunner(migrated_engine, client, SyncSettings(pause_seconds=0.01))
    stop = threading.Event()
    idle: list[str] = []
    before = client.stats().requests

    def on_idle(message: str) -> None:
        idle.append(message)
        if len(idle) >= 3:
            stop.set()

    assert runner.run(stop, on_idle=on_idle) == 0
    assert client.stats().requests == before
    assert "disabled" in idle[0]
    assert person_by_crm_id(migrated_engine, "lead", lead_a)["title"] != "While disabled"
    assert outbox_count(migrated_engine) == 1

    set_enabled(migrated_engine, True)
    assert runner.run(threading.Event(), max_cycles=1) == 1
    assert person_by_crm_id(migrated_engine, "lead", lead_a)["title"] == "While disabled"
    assert alex.get("leads", lead_b, "address1_city")["address1_city"] == "Waiting City"


def test_creates_are_exactly_once_with_the_stored_id(
    migrated_engine: Engine, synced: tuple[object, DynamicsClient, SyncCycle]
) -> None:
    """B33 (B31's create): the lead id is chosen and stored before sending; the person gets it,
    and sending again (a retry after a lost answer) finds the record instead of creating a
    second one."""
    org, client, cycle = synced
    (outcome,) = PersonService(migrated_engine).sync(
        [{"email": "new.person@example.com", "firstName": "Nova", "lastName": "Person"}]
    )
    assert outcome.id is not None
    person_id = outcome.id
    with migrated_engine.begin() as conn:
        asked = request_crm_create(conn, person_id, "lead")
        crm_id = asked.crm_id
        assert asked.queued and asked.entity == "lead"
        again = request_crm_create(conn, person_id, "contact")  # has a lead: nothing to do
        assert (again.entity, again.crm_id, again.queued) == ("lead", crm_id, False)
    leads_before = org.app.state.storage.count("lead")  # type: ignore[attr-defined]

    report = cycle.run()

    assert report.push.created == 1
    row = org.row("lead", crm_id)  # type: ignore[attr-defined]
    assert row is not None and row["lastname"] == "Person"
    with migrated_engine.connect() as conn:
        person = conn.execute(
            select(persons.c.crmLeadId, persons.c.crmType).where(persons.c.id == outcome.id)
        ).one()
    assert tuple(person) == (crm_id, "Lead")

    # The process died after Dynamics created the record but before the answer was stored:
    # the link is pending again and the create is still queued. Sending it again must not
    # create a second lead.
    with migrated_engine.begin() as conn:
        conn.execute(delete(sync_baselines).where(sync_baselines.c.crm_id == crm_id))
        outbox.enqueue(conn, [person_id], operation="create", source="retry")
    pushed = OutboxPusher(migrated_engine, client, cycle.mappings()).push()
    assert pushed.created == 1 and pushed.failed == 0
    cycle.run()
    assert org.app.state.storage.count("lead") == leads_before + 1  # type: ignore[attr-defined]
    assert person_by_crm_id(migrated_engine, "lead", crm_id)["id"] == outcome.id
    assert open_errors(migrated_engine) == []


def _lead_deleted_in_dynamics(
    engine: Engine, synced: tuple[object, DynamicsClient, SyncCycle]
) -> tuple[str, dict[str, object]]:
    """Delete a synced lead in Dynamics and sync: its id and the person, now flagged (B26)."""
    org, client, cycle = synced
    lead_id = org.alex().first_ids("leads", 1)[0]  # type: ignore[attr-defined]
    (deleted,) = client.write_batch([WriteRequest.delete("lead", lead_id)])
    assert deleted.ok
    cycle.run()
    person = person_by_crm_id(engine, "lead", lead_id)
    assert person["crmIsDeleted"] is True
    return str(lead_id), person


def test_a_person_whose_record_was_deleted_is_not_written_back(
    migrated_engine: Engine, synced: tuple[object, DynamicsClient, SyncCycle]
) -> None:
    """B26/B28: after its lead is deleted in Dynamics, editing the person sends nothing (no
    new lead is created by an edit) and fails nothing; the change stays local."""
    org, _, cycle = synced
    lead_id, person = _lead_deleted_in_dynamics(migrated_engine, synced)
    leads_before = org.app.state.storage.count("lead")  # type: ignore[attr-defined]

    edit_person(migrated_engine, person["id"], city="Still here")
    report = cycle.run()

    assert report.push.sent == 0 and report.push.dropped == 1
    assert org.app.state.storage.count("lead") == leads_before  # type: ignore[attr-defined]
    assert open_errors(migrated_engine) == []
    assert outbox_count(migrated_engine) == 0
    assert person_by_crm_id(migrated_engine, "lead", lead_id)["city"] == "Still here"
    assert activities_of(migrated_engine, person["id"])


def test_sync_person_to_microsoft_again_gives_a_deleted_lead_a_new_one(
    migrated_engine: Engine, synced: tuple[object, DynamicsClient, SyncCycle]
) -> None:
    """B28: a person whose lead was deleted in Dynamics gets a new lead, with its values, when
    run through Sync Person to Microsoft again; the person keeps its id and is live again."""
    org, _, cycle = synced
    old_id, person = _lead_deleted_in_dynamics(migrated_engine, synced)
    edit_person(migrated_engine, person["id"], city="Reborn City")
    leads_before = org.app.state.storage.count("lead")  # type: ignore[attr-defined]

    with migrated_engine.begin() as conn:
        asked = request_crm_create(conn, person["id"], "lead")
        new_id = asked.crm_id
        assert asked.queued
        again = request_crm_create(conn, person["id"], "lead")  # asked twice: one lead
        assert (again.crm_id, again.queued) == (new_id, False)
    report = cycle.run()

    assert new_id != old_id
    assert report.push.created == 1 and report.push.failed == 0
    assert org.app.state.storage.count("lead") == leads_before + 1  # type: ignore[attr-defined]
    row = org.row("lead", new_id)  # type: ignore[attr-defined]
    assert row is not None
    assert row["address1_city"] == "Reborn City" and row["lastname"] == person["lastName"]
    reborn = person_by_crm_id(migrated_engine, "lead", new_id)
    assert reborn["id"] == person["id"] and reborn["crmIsDeleted"] is False
    assert reborn["crmLeadId"] == new_id
    assert open_errors(migrated_engine) == [] and outbox_count(migrated_engine) == 0


def test_a_person_edited_again_while_its_write_is_in_flight_waits_for_it(
    migrated_engine: Engine, synced: tuple[object, DynamicsClient, SyncCycle]
) -> None:
    """B18/B25: push rounds overlap, but a person's next write is prepared only after its
    previous one was answered, from the baseline and ETag that one left: both edits reach
    Dynamics with no precondition failure and nothing stays queued."""
    org, _, _ = synced
    client = engine_client(org.base, batch_size=2)  # type: ignore[attr-defined]
    cycle = SyncCycle(migrated_engine, client)
    leads = org.alex().first_ids("leads", 5)  # type: ignore[attr-defined]
    people = [person_by_crm_id(migrated_engine, "lead", lead)["id"] for lead in leads]
    # the first four entries make the first round
    assert round_size(client.batch_size, client.budget.limit) == 4
    for n, person_id in enumerate(people[:4]):
        edit_person(migrated_engine, person_id, title=f"First edit {n}")
    edit_person(migrated_engine, people[0], city="Second edit")  # in the second round
    edit_person(migrated_engine, people[4], city="Other person")

    report = cycle.run()
    client.close()

    # Both of the first person's edits went with its first write (the values are read when a
    # round is prepared); its second entry then finds nothing left to send, instead of
    # sending again against the ETag its first write replaced.
    assert report.push.failed == 0 and report.push.remerged == 0
    assert report.push.updated == 5
    alex = org.alex()  # type: ignore[attr-defined]
    first = alex.get("leads", leads[0], "jobtitle,address1_city")
    assert (first["jobtitle"], first["address1_city"]) == ("First edit 0", "Second edit")
    assert alex.get("leads", leads[3], "jobtitle")["jobtitle"] == "First edit 3"
    assert alex.get("leads", leads[4], "address1_city")["address1_city"] == "Other person"
    assert outbox_count(migrated_engine) == 0 and open_errors(migrated_engine) == []
