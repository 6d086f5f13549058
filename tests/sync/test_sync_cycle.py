"""Sync cycles between the marketing store and the emulated org over real HTTP.

Each test starts an emulator on 127.0.0.1, runs the initial sync, edits one or both sides
(a salesperson through the Web API with their own token; the marketing side through the person
service that backs the REST API), runs a cycle and checks both sides. SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, func, select
from sync_harness import (
    Org,
    Salesperson,
    activities_of,
    edit_person,
    engine_client,
    open_errors,
    outbox_count,
    person_by_crm_id,
    running_org,
)

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import WriteRequest
from crmsync.emulator.config import PluginRule, default_config
from crmsync.marketing.activity_types import (
    CHANGE_DATA_VALUE,
    DELETE_LEAD_FROM_MICROSOFT,
    NEW_LEAD,
    SYNC_COLLISION,
    SYNC_ERROR,
)
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import (
    companies,
    crm_links,
    notifications,
    opportunities,
    persons,
    sales_persons,
    sync_history,
    teams,
)
from crmsync.sync.crm_create import request_crm_create
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.reports import Progress

pytestmark = pytest.mark.e2e

PHONE_RULE = PluginRule(
    entity="lead",
    attribute="telephone1",
    kind="regex",
    pattern=r"[0-9 +()-]*",
    message="Business phone may contain digits only.",
)


@dataclass
class World:
    org: Org
    engine: Engine
    client: DynamicsClient
    cycle: SyncCycle
    alex: Salesperson

    def count(self, table: object) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


@pytest.fixture
def world(migrated_engine: Engine) -> Iterator[World]:
    config = dataclasses.replace(default_config(), plugin_rules=(PHONE_RULE,))
    with running_org(config, 12) as org:
        client = engine_client(org.base, page_size=7, batch_size=10)
        cycle = SyncCycle(migrated_engine, client)
        report = cycle.run()
        assert report.status == "ok", report.as_dict()
        alex = org.alex()
        yield World(org, migrated_engine, client, cycle, alex)
        alex.http.close()
        client.close()


def test_initial_sync_brings_every_entity_with_system_fields_and_owners(world: World) -> None:
    """B1/B2/B4/B5/B6/B7/B16: every record of every entity arrives once, in pages, with CRM
    type, created date and ids; owners link sales users; roles follow the customer; a
    notification says the initial sync is done; the next cycle costs one request per entity."""
    storage = world.org.app.state.storage
    assert world.count(persons) == storage.count("lead") + storage.count("contact")
    assert world.count(companies) == storage.count("account")
    assert world.count(sales_persons) == storage.count("systemuser")
    assert world.count(teams) == storage.count("team")
    assert world.count(opportunities) == storage.count("opportunity")
    lead_id = world.alex.first_ids("leads", 1)[0]
    person = person_by_crm_id(world.engine, "lead", lead_id)
    row = world.org.row("lead", lead_id)
    assert row is not None
    assert person["crmType"] == "Lead" and person["crmLeadId"] == lead_id
    assert person["crmCreatedAt"] and person["crmIsDeleted"] is False
    assert person["lastName"] == row["lastname"]
    owner = row.get("_ownerid_value") or row.get("ownerid")
    if person["externalSalesPersonId"]:
        assert person["sales_person_id"] is not None
    assert owner is not None
    assert [a["type_id"] for a in activities_of(world.engine, person["id"])] == [NEW_LEAD]
    with world.engine.connect() as conn:
        kinds = conn.execute(select(notifications.c.kind)).scalars().all()
    assert kinds == ["initial_sync_done"]

    again = world.cycle.run()
    assert again.api_calls == 6
    assert again.records_synced == 0
    assert [e.mode for e in again.entities] == ["delta"] * 6


def test_lead_collision_marketing_wins_and_both_sides_end_equal(world: World) -> None:
    """Seed lead-sync page, B22/B23/B24: the same lead field edited on both sides → the
    marketing value wins for a lead; a field edited on one side only takes that side's value;
    the collision is in the activity log and the sync history."""
    lead_id = world.alex.first_ids("leads", 1)[0]
    person = person_by_crm_id(world.engine, "lead", lead_id)
    assert world.alex.patch(
        "leads", lead_id, {"address1_city": "Dynamics City", "jobtitle": "Buyer"}
    ).is_success
    edit_person(world.engine, person["id"], city="Marketing City", phone="555 0100")

    report = world.cycle.run()

    assert report.push.updated == 1
    after = person_by_crm_id(world.engine, "lead", lead_id)
    crm = world.alex.get("leads", lead_id, "address1_city,jobtitle,telephone1")
    assert after["city"] == crm["address1_city"] == "Marketing City"
    assert after["title"] == crm["jobtitle"] == "Buyer"
    assert after["phone"] == crm["telephone1"] == "555 0100"
    collisions = [
        a for a in activities_of(world.engine, person["id"]) if a["type_id"] == SYNC_COLLISION
    ]
    assert [(c["primary_value"], c["attributes"]["Winner"]) for c in collisions] == [
        ("city", "Marketing")
    ]
    with world.engine.connect() as conn:
        history = conn.execute(
            select(sync_history.c.details).where(sync_history.c.kind == "collision")
        ).scalars()
        assert [h["rule"] for h in history] == ["marketing_wins_for_leads"]
    assert outbox_count(world.engine) == 0
    # B19: our own write comes back in the next delta read and changes nothing.
    echo = world.cycle.run()
    assert echo.records_synced == 0 and echo.push.sent == 0


def test_contact_collision_dynamics_wins(world: World) -> None:
    """Seed field-sync page, B23: for a contact the Dynamics value wins a collision, and the
    losing marketing value is overwritten locally (nothing is sent back)."""
    contact_id = world.alex.first_ids("contacts", 1)[0]
    person = person_by_crm_id(world.engine, "contact", contact_id)
    assert world.alex.patch("contacts", contact_id, {"jobtitle": "CRM Title"}).is_success
    edit_person(world.engine, person["id"], title="Marketing Title")

    report = world.cycle.run()

    assert report.push.updated == 0
    after = person_by_crm_id(world.engine, "contact", contact_id)
    assert after["title"] == "CRM Title"
    assert world.alex.get("contacts", contact_id, "jobtitle")["jobtitle"] == "CRM Title"
    winners = [
        a["attributes"]["Winner"]
        for a in activities_of(world.engine, person["id"])
        if a["type_id"] == SYNC_COLLISION
    ]
    assert winners == ["Dynamics"]
    (changed,) = [
        a
        for a in activities_of(world.engine, person["id"])
        if a["type_id"] == CHANGE_DATA_VALUE and a["attributes"]["Source"] != "Web service API"
    ]
    assert changed["primary_value"] == "Job Title"
    assert changed["attributes"]["Old Value"] == "Marketing Title"
    assert changed["attributes"]["New Value"] == "CRM Title"


def test_one_way_company_edit_stays_local_until_dynamics_overwrites_it(world: World) -> None:
    """B2/B3: a company edited on the marketing side is never sent to Dynamics, and the next
    Dynamics update of the account overwrites it."""
    account_id = world.alex.first_ids("accounts", 1)[0]
    original = world.alex.get("accounts", account_id, "name,address1_city")
    with world.engine.begin() as conn:
        conn.execute(
            companies.update()
            .where(companies.c.externalCompanyId == account_id)
            .values(billingCity="Local Only")
        )
    world.cycle.run()
    assert world.alex.get("accounts", account_id, "address1_city") == {
        **world.alex.get("accounts", account_id, "address1_city"),
        "address1_city": original["address1_city"],
    }

    assert world.alex.patch("accounts", account_id, {"telephone1": "+1 555 0199"}).is_success
    world.cycle.run()
    with world.engine.connect() as conn:
        row = conn.execute(
            select(companies.c.billingCity, companies.c.mainPhone).where(
                companies.c.externalCompanyId == account_id
            )
        ).one()
    assert row.billingCity == original["address1_city"]
    assert row.mainPhone == "+1 555 0199"


def test_a_company_collision_is_in_the_sync_history(world: World) -> None:
    """B23/B24: a company field edited on both sides takes Dynamics' value (one-way entity),
    and the collision is recorded in the sync history with both values, winner and rule."""
    account_id = world.alex.first_ids("accounts", 1)[0]
    with world.engine.begin() as conn:
        conn.execute(
            companies.update()
            .where(companies.c.externalCompanyId == account_id)
            .values(billingCity="Marketing City")
        )
    assert world.alex.patch("accounts", account_id, {"address1_city": "CRM City"}).is_success
    world.cycle.run()

    with world.engine.connect() as conn:
        city = conn.execute(
            select(companies.c.billingCity).where(companies.c.externalCompanyId == account_id)
        ).scalar_one()
        rows = conn.execute(
            select(sync_history.c.entity, sync_history.c.crm_id, sync_history.c.details).where(
                sync_history.c.kind == "collision"
            )
        ).all()
    assert city == "CRM City"
    assert len(rows) == 1
    entity, crm_id, details = rows[0]
    assert (entity, crm_id) == ("account", account_id)
    assert details["field"] == "billingCity" and details["winner"] == "crm"
    assert details["crmValue"] == "CRM City" and details["marketingValue"] == "Marketing City"


def test_dynamics_delete_flags_the_person_and_local_delete_then_update_makes_a_new_one(
    world: World,
) -> None:
    """B26: a lead deleted in Dynamics sets crmIsDeleted, the person stays. B27: a person deleted
    in the marketing database is not deleted in Dynamics; when its record changes later, a new
    person is created for it."""
    first, second = world.alex.first_ids("leads", 2)
    flagged = person_by_crm_id(world.engine, "lead", first)
    (deleted,) = world.client.write_batch([WriteRequest.delete("lead", first)])
    assert deleted.ok

    gone = person_by_crm_id(world.engine, "lead", second)
    PersonService(world.engine).delete([gone["id"]])
    world.cycle.run()
    assert world.org.row("lead", second) is not None  # never deleted in Dynamics

    after = person_by_crm_id(world.engine, "lead", first)
    assert after["id"] == flagged["id"] and after["crmIsDeleted"] is True
    types = [a["type_id"] for a in activities_of(world.engine, flagged["id"])]
    assert DELETE_LEAD_FROM_MICROSOFT in types

    assert world.alex.patch("leads", second, {"jobtitle": "Came back"}).is_success
    world.cycle.run()
    reborn = person_by_crm_id(world.engine, "lead", second)
    assert reborn["id"] != gone["id"]
    assert reborn["title"] == "Came back"
    with world.engine.connect() as conn:
        links = conn.execute(
            select(func.count()).select_from(crm_links).where(crm_links.c.crm_id == second)
        ).scalar_one()
    assert links == 1


def test_rejected_records_fail_alone_and_are_retried_when_the_person_changes(world: World) -> None:
    """B37/B38: a too-long value, a bad option and a plug-in rule each fail their record alone,
    with the code and message in the person's activity log and sync errors; the good edit in
    the same push arrives; fixing the person retries it and clears the error."""
    ids = world.alex.first_ids("leads", 4)
    people = [person_by_crm_id(world.engine, "lead", i) for i in ids]
    edit_person(world.engine, people[0]["id"], firstName="x" * 80)
    edit_person(world.engine, people[1]["id"], leadSource="Carrier Pigeon")
    edit_person(world.engine, people[2]["id"], phone="call me maybe")
    edit_person(world.engine, people[3]["id"], title="Accepted")

    report = world.cycle.run()

    assert report.push.updated == 1 and report.push.failed == 3
    assert world.alex.get("leads", ids[3], "jobtitle")["jobtitle"] == "Accepted"
    errors = {e["local_id"]: e for e in open_errors(world.engine)}
    assert set(errors) == {p["id"] for p in people[:3]}
    assert errors[people[2]["id"]]["error_code"] == "0x80040265"
    assert "digits only" in errors[people[2]["id"]]["message"]
    for person in people[:3]:
        logged = [
            a for a in activities_of(world.engine, person["id"]) if a["type_id"] == SYNC_ERROR
        ]
        assert len(logged) == 1 and logged[0]["attributes"]["Message"]
        assert person_by_crm_id(world.engine, "lead", person["crmLeadId"])["id"] == person["id"]
    assert person_by_crm_id(world.engine, "lead", ids[2])["phone"] == "call me maybe"
    assert outbox_count(world.engine) == 0

    edit_person(world.engine, people[2]["id"], phone="+1 555 0142")
    world.cycle.run()
    assert world.alex.get("leads", ids[2], "telephone1")["telephone1"] == "+1 555 0142"
    assert {e["local_id"] for e in open_errors(world.engine)} == {p["id"] for p in people[:2]}


def test_a_refused_change_is_retried_when_another_field_of_the_person_changes(
    world: World,
) -> None:
    """B38: a later edit's outbox entry names only its own field, yet the refused phone goes
    again with it: the error stays open with a second attempt and a second sync-error
    activity; once the phone is fixed, both values arrive and the error closes."""
    crm_id = world.alex.first_ids("leads", 1)[0]
    person = person_by_crm_id(world.engine, "lead", crm_id)
    edit_person(world.engine, person["id"], phone="call me maybe")
    assert world.cycle.run().push.failed == 1

    edit_person(world.engine, person["id"], title="Edited after the refusal")
    report = world.cycle.run()

    assert report.push.failed == 1
    errors = open_errors(world.engine)
    assert [(e["local_id"], e["attempts"]) for e in errors] == [(person["id"], 2)]
    logged = [a for a in activities_of(world.engine, person["id"]) if a["type_id"] == SYNC_ERROR]
    assert len(logged) == 2
    assert outbox_count(world.engine) == 0

    edit_person(world.engine, person["id"], phone="+1 555 0199")
    world.cycle.run()
    sent = world.alex.get("leads", crm_id, "telephone1,jobtitle")
    assert (sent["telephone1"], sent["jobtitle"]) == ("+1 555 0199", "Edited after the refusal")
    assert open_errors(world.engine) == []


def test_throttling_and_server_errors_delay_but_lose_nothing(world: World) -> None:
    """B38: a 429 storm and 5xx answers during a cycle are retried with backoff; every change
    on both sides arrives and no record is marked failing."""
    ids = world.alex.first_ids("leads", 3)
    for number, crm_id in enumerate(ids):
        assert world.alex.patch("leads", crm_id, {"jobtitle": f"Storm {number}"}).is_success
        person = person_by_crm_id(world.engine, "lead", crm_id)
        edit_person(world.engine, person["id"], city=f"Calm {number}")
    world.org.admin("PATCH", "faults", {"throttle_burst": 4, "throttle_retry_after_seconds": 1})
    world.org.admin("PATCH", "faults", {"error_rate": 0.3})

    report = world.cycle.run()
    world.org.admin("PUT", "faults", {})

    assert report.status == "ok", report.as_dict()
    for number, crm_id in enumerate(ids):
        person = person_by_crm_id(world.engine, "lead", crm_id)
        assert person["title"] == f"Storm {number}"
        assert world.alex.get("leads", crm_id, "address1_city")["address1_city"] == f"Calm {number}"
    assert open_errors(world.engine) == []
    assert outbox_count(world.engine) == 0
    assert world.client.stats().retries > 0


def test_concurrent_dynamics_edit_is_remerged_not_overwritten(world: World) -> None:
    """B25: Dynamics changes the lead after the cycle read it; the conditional write is refused,
    the record is read again and merged, and both edits survive."""
    lead_id = world.alex.first_ids("leads", 1)[0]
    person = person_by_crm_id(world.engine, "lead", lead_id)
    edit_person(world.engine, person["id"], city="Marketing City")

    def edit_after_reads(event: Progress) -> None:
        if event.entity == "opportunity" and event.done:
            assert world.alex.patch("leads", lead_id, {"jobtitle": "Late CRM edit"}).is_success

    racing = SyncCycle(world.engine, world.client, progress=edit_after_reads)
    report = racing.run()

    assert report.push.remerged == 1 and report.push.updated == 1
    crm = world.alex.get("leads", lead_id, "address1_city,jobtitle")
    assert crm == {**crm, "address1_city": "Marketing City", "jobtitle": "Late CRM edit"}
    assert person_by_crm_id(world.engine, "lead", lead_id)["title"] == "Late CRM edit"


def test_expired_delta_token_reconciles_the_entity_losing_nothing(world: World) -> None:
    """B17: every delta token expires; the next cycle reads the entities in full, applies the
    update and flags the record deleted meanwhile."""
    first, second = world.alex.first_ids("leads", 2)
    assert world.alex.patch("leads", first, {"jobtitle": "While expired"}).is_success
    (deleted,) = world.client.write_batch([WriteRequest.delete("lead", second)])
    assert deleted.ok
    world.org.admin("POST", "expire-delta-tokens")

    report = world.cycle.run()

    assert {e.entity: e.mode for e in report.entities}["lead"] == "reconcile"
    assert person_by_crm_id(world.engine, "lead", first)["title"] == "While expired"
    assert person_by_crm_id(world.engine, "lead", second)["crmIsDeleted"] is True
    assert world.cycle.run().api_calls == 6


def test_a_full_read_does_not_bring_back_a_person_deleted_here(world: World) -> None:
    """B27 with B17: a person deleted in the marketing database stays deleted when an expired
    delta token makes the next cycle read every lead, as long as its lead did not change; once
    the lead changes, a new person is created for it."""
    (lead_id,) = world.alex.first_ids("leads", 1)
    gone = person_by_crm_id(world.engine, "lead", lead_id)
    PersonService(world.engine).delete([gone["id"]])
    world.cycle.run()
    world.org.admin("POST", "expire-delta-tokens")

    report = world.cycle.run()

    assert {e.entity: e.mode for e in report.entities}["lead"] == "reconcile"
    with world.engine.connect() as conn:
        people = conn.execute(select(func.count()).select_from(persons)).scalar_one()
        linked = conn.execute(
            select(crm_links.c.local_id).where(crm_links.c.crm_id == lead_id)
        ).scalar_one()
    assert linked == gone["id"]  # still the deleted person's link: nobody was made for it
    assert world.alex.patch("leads", lead_id, {"jobtitle": "Changed later"}).is_success
    world.cycle.run()
    reborn = person_by_crm_id(world.engine, "lead", lead_id)
    assert reborn["id"] != gone["id"] and reborn["title"] == "Changed later"
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(persons)).scalar_one() == people + 1


def test_duplicate_detection_rejects_one_record_and_the_rest_syncs(world: World) -> None:
    """B37 (duplicate detection): with duplicate detection asked for, a person given another
    lead's e-mail is refused by Dynamics with its code, alone; the other edit arrives."""
    first, second, third = world.alex.first_ids("leads", 3)
    taken = world.alex.get("leads", second, "emailaddress1")["emailaddress1"]
    assert taken
    clashing = person_by_crm_id(world.engine, "lead", first)
    fine = person_by_crm_id(world.engine, "lead", third)
    edit_person(world.engine, clashing["id"], email=taken)
    edit_person(world.engine, fine["id"], title="No clash")

    checked = SyncCycle(world.engine, world.client, duplicate_detection=True)
    report = checked.run()

    assert report.push.failed == 1 and report.push.updated == 1
    (error,) = open_errors(world.engine)
    assert error["local_id"] == clashing["id"] and error["error_code"] == "0x80040333"
    assert world.alex.get("leads", third, "jobtitle")["jobtitle"] == "No clash"
    assert world.alex.get("leads", first, "emailaddress1")["emailaddress1"] != taken
    logged = [a for a in activities_of(world.engine, clashing["id"]) if a["type_id"] == SYNC_ERROR]
    assert "duplicate" in str(logged[0]["attributes"]["Message"])


def test_a_bad_value_holds_back_only_its_own_field(world: World) -> None:
    """B37/B38: a person edited with a good and a refused value sends the good one; the
    refused field stays unsent, its error stays open, and it is sent once it is fixed."""
    lead_id = world.alex.first_ids("leads", 1)[0]
    person = person_by_crm_id(world.engine, "lead", lead_id)
    edit_person(world.engine, person["id"], title="Sent anyway", leadSource="Carrier Pigeon")

    report = world.cycle.run()

    assert report.push.updated == 1 and report.push.failed == 1
    crm = world.alex.get("leads", lead_id, "jobtitle,leadsourcecode")
    assert crm["jobtitle"] == "Sent anyway"
    (error,) = open_errors(world.engine)
    assert error["local_id"] == person["id"] and "leadSource" in error["message"]

    edit_person(world.engine, person["id"], leadSource="Web")
    world.cycle.run()
    assert (
        world.alex.get("leads", lead_id, "leadsourcecode")["leadsourcecode"]
        != crm["leadsourcecode"]
        or crm["leadsourcecode"] is not None
    )
    assert open_errors(world.engine) == []


def test_full_reread_does_not_flag_a_lead_that_was_never_created(world: World) -> None:
    """A person queued for a new lead whose create failed has a link to a lead Dynamics never
    had; a full re-read must not mark that person deleted in Dynamics."""
    (outcome,) = PersonService(world.engine).sync(
        [{"email": "never.made@example.com", "lastName": "Never", "leadSource": "Telepathy"}]
    )
    assert outcome.id is not None
    with world.engine.begin() as conn:
        asked = request_crm_create(conn, int(outcome.id), "lead")
    assert world.cycle.run().push.failed == 1
    world.org.admin("POST", "expire-delta-tokens")

    report = world.cycle.run()

    assert {e.entity: e.mode for e in report.entities}["lead"] == "reconcile"
    assert world.org.row("lead", asked.crm_id) is None
    with world.engine.connect() as conn:
        flagged = conn.execute(
            select(persons.c.crmIsDeleted).where(persons.c.id == outcome.id)
        ).scalar_one()
    assert flagged is False
