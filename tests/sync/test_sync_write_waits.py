"""A sync user that lost a privilege its writes need (B41 "permission lost", B43): the
entity's writes wait instead of failing record by record, one critical notification says why
and how to fix it, nothing is lost, and the writes go once the privilege is granted again.

The emulator runs over real HTTP; the privilege is revoked and granted through its admin API,
as an administrator would edit the sync user's security role.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sync_harness import Org, edit_person, open_errors, outbox_count, person_by_crm_id

from crmsync.dynamics.client import DynamicsClient
from crmsync.store.tables import notifications, sync_outbox
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.reports import push_summary
from crmsync.sync.status import read_status


def _notifications(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(notifications).order_by(notifications.c.id)).mappings()
        return [dict(row) for row in rows]


def _queued_people(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return {int(p) for (p,) in conn.execute(select(sync_outbox.c.person_id))}


def _sync_user_privileges(org: Org, **change: list[str]) -> None:
    org.admin("PATCH", "privileges", {"table": "lead", **change})


def test_a_revoked_write_privilege_holds_the_entity_back_until_granted_again(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    org, _, cycle = synced
    alex = org.alex()
    lead_ids = alex.first_ids("leads", 3)
    contact_id = alex.first_ids("contacts", 1)[0]
    people = [person_by_crm_id(migrated_engine, "lead", lead)["id"] for lead in lead_ids]
    contact_person = person_by_crm_id(migrated_engine, "contact", contact_id)["id"]
    before = {lead: org.row("lead", lead)["jobtitle"] for lead in lead_ids}  # type: ignore[index]
    _sync_user_privileges(org, revoke=["write"])

    for number, person_id in enumerate(people):
        edit_person(migrated_engine, person_id, title=f"Waiting title {number}")
    edit_person(migrated_engine, contact_person, title="Contact goes")
    first = cycle.run()

    assert first.status == "partial"
    assert first.push.waiting == 3 and first.push.failed == 0
    assert first.push.waiting_for == {"lead": "permission lost: prvWriteLead missing"}
    assert "3 waiting (writes to lead wait, permission lost: prvWriteLead missing)" in (
        push_summary(first.push)
    )
    assert outbox_count(migrated_engine) == 3  # the lead edits, kept
    assert open_errors(migrated_engine) == []  # no failing record for a setup problem
    assert {lead: org.row("lead", lead)["jobtitle"] for lead in lead_ids} == before  # type: ignore[index]
    assert org.row("contact", contact_id)["jobtitle"] == "Contact goes"  # type: ignore[index]
    status = read_status(migrated_engine)
    (wait,) = status.writes_waiting
    assert wait.entity == "lead" and "prvWriteLead" in wait.summary
    assert "Grant prvWriteLead" in wait.fix
    assert status.as_dict()["writes_waiting"][0]["entity"] == "lead"
    critical = [n for n in _notifications(migrated_engine) if n["severity"] == "critical"]
    assert [n["kind"] for n in critical] == ["permission_lost"]
    assert "prvWriteLead" in critical[0]["message"] and "security role" in critical[0]["message"]

    # reads keep flowing while the writes wait, and a second cycle raises nothing new
    assert alex.patch("leads", lead_ids[0], {"firstname": "Readable"}).is_success
    second = cycle.run()
    assert second.status == "partial" and second.push.waiting == 3
    assert person_by_crm_id(migrated_engine, "lead", lead_ids[0])["firstName"] == "Readable"
    critical = [n for n in _notifications(migrated_engine) if n["severity"] == "critical"]
    assert len(critical) == 1
    assert _queued_people(migrated_engine) == set(people)  # the merge may queue one more entry

    _sync_user_privileges(org, grant=["write"])
    third = cycle.run()

    assert third.status == "ok", third
    assert third.push.updated == 3 and third.push.waiting == 0
    assert outbox_count(migrated_engine) == 0
    titles = {lead: org.row("lead", lead)["jobtitle"] for lead in lead_ids}  # type: ignore[index]
    assert titles == {lead: f"Waiting title {n}" for n, lead in enumerate(lead_ids)}
    assert org.row("lead", lead_ids[0])["firstname"] == "Readable"  # type: ignore[index]
    assert read_status(migrated_engine).writes_waiting == ()
    kinds = [(n["severity"], n["kind"]) for n in _notifications(migrated_engine)]
    assert kinds.count(("critical", "permission_lost")) == 1
    assert kinds.count(("info", "permission_restored")) == 1
    assert open_errors(migrated_engine) == []


def test_a_lost_create_privilege_keeps_new_leads_queued(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    from crmsync.marketing.persons import PersonService
    from crmsync.sync.crm_create import request_crm_create

    org, _, cycle = synced
    _sync_user_privileges(org, revoke=["create"])
    (outcome,) = PersonService(migrated_engine).sync(
        [{"email": "queued.lead@example.com", "firstName": "Queued", "lastName": "Lead"}]
    )
    assert outcome.id is not None
    with migrated_engine.begin() as conn:
        crm_id = request_crm_create(conn, outcome.id, "lead").crm_id

    report = cycle.run()

    assert report.push.waiting == 1 and report.push.created == 0
    assert report.push.waiting_for == {"lead": "permission lost: prvCreateLead missing"}
    assert org.row("lead", crm_id) is None
    assert open_errors(migrated_engine) == []

    _sync_user_privileges(org, grant=["create"])
    assert cycle.run().push.created == 1
    created = org.row("lead", crm_id)
    assert created is not None and created["lastname"] == "Lead"


def test_the_missing_privilege_is_read_from_the_message_else_both_write_privileges() -> None:
    from crmsync.sync.write_waits import is_privilege_refusal, missing_privileges

    message = (
        "Principal user (Id=1, type=8, roleCount=1, privilegeCount=0, accessMode=0), is "
        "missing prvCreateLead privilege (Id=2) on OTC=4 for entity 'lead'."
    )
    assert missing_privileges(message, "Lead") == ("prvCreateLead",)
    assert missing_privileges("Access is denied.", "Contact") == (
        "prvCreateContact",
        "prvWriteContact",
    )
    assert is_privilege_refusal("0x80040220") and is_privilege_refusal("0x80048405")
    assert not is_privilege_refusal("0x8004F507")  # a secured column: that record alone fails
    assert not is_privilege_refusal(None)


def test_a_privilege_that_comes_and_goes_raises_one_alarm_until_it_is_read(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    org, _, cycle = synced
    lead_id = org.alex().first_ids("leads", 1)[0]
    person_id = person_by_crm_id(migrated_engine, "lead", lead_id)["id"]

    def lose_then_regain(title: str) -> None:
        _sync_user_privileges(org, revoke=["write"])
        edit_person(migrated_engine, person_id, title=title)
        assert cycle.run().push.waiting == 1
        _sync_user_privileges(org, grant=["write"])
        assert cycle.run().push.updated == 1
        assert org.row("lead", lead_id)["jobtitle"] == title  # type: ignore[index]

    lose_then_regain("First loss")
    lose_then_regain("Second loss")
    kinds = [n["kind"] for n in _notifications(migrated_engine)]
    assert kinds.count("permission_lost") == 1 and kinds.count("permission_restored") == 1

    with migrated_engine.begin() as conn:  # the admins read them
        conn.execute(notifications.update().values(read_at=notifications.c.created_at))
    lose_then_regain("Third loss")
    kinds = [n["kind"] for n in _notifications(migrated_engine)]
    assert kinds.count("permission_lost") == 2 and kinds.count("permission_restored") == 2


def test_a_create_and_an_update_refused_together_name_both_privileges(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    from crmsync.marketing.persons import PersonService
    from crmsync.sync.crm_create import request_crm_create

    org, _, cycle = synced
    lead_id = org.alex().first_ids("leads", 1)[0]
    edit_person(
        migrated_engine, person_by_crm_id(migrated_engine, "lead", lead_id)["id"], title="Both"
    )
    (outcome,) = PersonService(migrated_engine).sync(
        [{"email": "both.ways@example.com", "lastName": "Both"}]
    )
    assert outcome.id is not None
    with migrated_engine.begin() as conn:
        request_crm_create(conn, outcome.id, "lead")
    _sync_user_privileges(org, revoke=["create", "write"])

    report = cycle.run()

    assert report.push.waiting == 2 and report.push.failed == 0
    summary = report.push.waiting_for["lead"]
    assert "prvCreateLead" in summary and "prvWriteLead" in summary
    (wait,) = read_status(migrated_engine).writes_waiting
    assert "prvCreateLead" in wait.fix and "prvWriteLead" in wait.fix
