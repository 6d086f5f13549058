"""Custom entities (B45) against the emulator over HTTP: tables created through the metadata
API are discovered once on their nearest path, and an entity two levels below contact is
loaded, linked to the contact's person, updated, flagged deleted, and left alone once
disabled; nothing is written to Dynamics."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sync_harness import Org, engine_client, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.emulator.config import default_config
from crmsync.errors import InvalidValueError, SyncInterruptedError
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.store.tables import (
    crm_links,
    custom_object_rows,
    notifications,
    persons,
    sync_outbox,
)
from crmsync.sync.campaign_push import ImmediatePush, campaign_runner
from crmsync.sync.custom_entities import (
    disable,
    discover,
    enable,
    entity_status,
    load_entity,
)
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.reports import Progress
from crmsync.sync.validate import validate_setup
from custom_tables import create_row, create_visit_tables

Synced = tuple[Org, DynamicsClient, SyncCycle]


def _rows(engine: Engine, entity: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(custom_object_rows).where(custom_object_rows.c.entity == entity)
        ).mappings()
        return {str(r["crm_id"]): dict(r) for r in rows}


def _person_of_contact(engine: Engine, contact_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(crm_links.c.local_id).where(
                    crm_links.c.entity == "contact", crm_links.c.crm_id == contact_id
                )
            ).scalar_one()
        )


@pytest.fixture
def visits(synced: Synced) -> dict[str, str]:
    """The two tables, a project of the first contact with two visits, and one project-less."""
    _, client, _ = synced
    root = client.service_root
    create_visit_tables(client.http, root)
    contact = client.http.get(f"{root}/contacts?$select=contactid&$top=1").json()["value"][0]
    contact_id = contact["contactid"]
    project = create_row(
        client.http,
        root,
        "new_projects",
        {"new_name": "Alpha", "new_contactid@odata.bind": f"/contacts({contact_id})"},
    )
    made = {"contact": contact_id, "project": project}
    for name, hours in (("first", 2), ("second", 5)):
        made[name] = create_row(
            client.http,
            root,
            "new_visits",
            {
                "new_name": name,
                "new_note": f"{name} visit",
                "new_hours": hours,
                "new_projectid@odata.bind": f"/new_projects({project})",
            },
        )
    made["loose"] = create_row(client.http, root, "new_visits", {"new_name": "loose"})
    return made


def test_discovery_lists_each_linked_table_once_on_its_nearest_path(
    migrated_engine: Engine, synced: Synced, visits: dict[str, str]
) -> None:
    _, client, _ = synced
    choices = {choice.name: choice for choice in discover(client)}
    project, visit = choices["new_project"], choices["new_visit"]
    assert (project.path.depth, project.path.root) == (1, "contact")
    assert (visit.path.depth, visit.path.describe()) == (
        2,
        "new_visit.new_projectid → new_project.new_contactid → contact",
    )
    # the tables the sync handles itself, and marketing lists (R101), are never offered
    assert not {"lead", "contact", "account", "opportunity", "list", "listmember"} & set(choices)
    assert [c.name for c in discover(client)] == sorted(choices)  # each once


def test_enabled_entity_is_loaded_linked_updated_flagged_and_disabled(
    migrated_engine: Engine, synced: Synced, visits: dict[str, str]
) -> None:
    _, client, cycle = synced
    entity = enable(migrated_engine, client, "new_visit")
    assert entity.fields[0] == "new_projectid"
    assert {"new_name", "new_note", "new_hours"} <= set(entity.fields)
    with migrated_engine.connect() as conn:
        outbox_before = len(conn.execute(select(sync_outbox.c.id)).all())

    report = cycle.run()
    assert report.status == "ok"
    (visit_report,) = [e for e in report.entities if e.entity == "new_visit"]
    assert (visit_report.mode, visit_report.created) == ("initial", 3)
    rows = _rows(migrated_engine, "new_visit")
    person = _person_of_contact(migrated_engine, visits["contact"])
    first = rows[visits["first"]]
    assert first["person_id"] == person
    assert first["values"]["new_note"] == "first visit"
    assert first["values"]["new_hours"] == 2
    assert first["values"]["new_projectid"] == visits["project"]
    assert rows[visits["loose"]]["person_id"] is None  # no project: stored, linked to nobody
    with migrated_engine.connect() as conn:
        titles = [t for (t,) in conn.execute(select(notifications.c.title))]
        status = entity_status(conn, load_entity(conn, "new_visit"))  # type: ignore[arg-type]
    assert "Custom entity Visit loaded" in titles
    assert (status.records, status.linked, status.deleted, status.phase) == (3, 2, 0, "changes")

    root = client.service_root
    client.http.patch(
        f"{root}/new_visits({visits['first']})", json={"new_hours": 7}, headers={"If-Match": "*"}
    ).raise_for_status()
    client.http.delete(f"{root}/new_visits({visits['second']})").raise_for_status()
    report = cycle.run()
    (visit_report,) = [e for e in report.entities if e.entity == "new_visit"]
    assert (visit_report.mode, visit_report.updated, visit_report.deleted_flags) == (
        "delta",
        1,
        1,
    )
    rows = _rows(migrated_engine, "new_visit")
    assert rows[visits["first"]]["values"]["new_hours"] == 7
    assert rows[visits["second"]]["crm_is_deleted"] is True
    assert rows[visits["second"]]["values"]["new_note"] == "second visit"  # kept (B29)

    disable(migrated_engine, "new_visit")
    client.http.patch(
        f"{root}/new_visits({visits['first']})", json={"new_hours": 9}, headers={"If-Match": "*"}
    ).raise_for_status()
    report = cycle.run()
    assert "new_visit" not in [e.entity for e in report.entities]
    assert _rows(migrated_engine, "new_visit")[visits["first"]]["values"]["new_hours"] == 7
    with migrated_engine.connect() as conn:
        assert len(conn.execute(select(sync_outbox.c.id)).all()) == outbox_before

    enable(migrated_engine, client, "new_visit")  # continues from where it stopped
    cycle.run()
    assert _rows(migrated_engine, "new_visit")[visits["first"]]["values"]["new_hours"] == 9


def test_enabling_a_table_that_is_not_linked_is_refused_plainly(
    migrated_engine: Engine, synced: Synced
) -> None:
    _, client, _ = synced
    with pytest.raises(InvalidValueError, match="linked to a lead, contact or account"):
        enable(migrated_engine, client, "lead")


def test_a_record_newly_linked_to_a_person_triggers_custom_object_is_added(
    migrated_engine: Engine, synced: Synced, visits: dict[str, str]
) -> None:
    _, client, cycle = synced
    service = CampaignService(migrated_engine)
    campaign = service.create(
        {
            "name": "Visited",
            "active": True,
            "triggers": [{"type": "custom_object_added", "entity": "new_visit"}],
            "flow": [{"type": "change_data_value", "field": "leadStatus", "value": "Visited"}],
        }
    )
    enable(migrated_engine, client, "new_visit")
    cycle.run()
    runner = campaign_runner(
        migrated_engine, push=ImmediatePush(migrated_engine, client), client=client
    )
    assert runner.run_pending() == 1  # two visits, one person: one event
    person = _person_of_contact(migrated_engine, visits["contact"])
    with migrated_engine.connect() as conn:
        status = conn.execute(
            select(persons.c.leadStatus).where(persons.c.id == person)
        ).scalar_one()
    assert status == "Visited"
    assert [r["status"] for r in service.results(campaign.id)] == ["done"]

    # an update of an already linked record is not "added" again
    client.http.patch(
        f"{client.service_root}/new_visits({visits['first']})",
        json={"new_hours": 3},
        headers={"If-Match": "*"},
    ).raise_for_status()
    cycle.run()
    assert runner.run_pending() == 0


def test_an_interrupted_initial_load_resumes_after_its_last_stored_page(
    migrated_engine: Engine, synced: Synced, visits: dict[str, str]
) -> None:
    org, client, _ = synced
    enable(migrated_engine, client, "new_visit")
    small = engine_client(org.base, page_size=1)  # one record per page

    def stop_after_first_page(progress: Progress) -> None:
        if progress.entity == "new_visit" and progress.pages == 1:
            raise SyncInterruptedError("stopped by the test")

    try:
        with pytest.raises(SyncInterruptedError):
            SyncCycle(migrated_engine, small, progress=stop_after_first_page).run()
        assert len(_rows(migrated_engine, "new_visit")) == 1  # the first page was kept
        with migrated_engine.connect() as conn:
            assert entity_status(conn, load_entity(conn, "new_visit")).phase == "initial load"  # type: ignore[arg-type]
        report = SyncCycle(migrated_engine, small).run()
    finally:
        small.close()
    (visit_report,) = [e for e in report.entities if e.entity == "new_visit"]
    assert visit_report.note == "initial load resumed where it stopped"
    assert visit_report.records == 2  # the two pages after the stored one, not all three
    assert len(_rows(migrated_engine, "new_visit")) == 3


def test_tables_the_sync_user_cannot_read_are_not_offered(migrated_engine: Engine) -> None:
    """R97: without read access to new_project, neither it nor new_visit (whose only path runs
    through it) is offered, and enabling new_visit is refused."""
    config = default_config()
    app_user, *others = config.users
    privileges = {**app_user.privileges, "new_project": frozenset({"create", "write"})}
    limited = dataclasses.replace(app_user, privileges=MappingProxyType(privileges))
    config = dataclasses.replace(config, users=(limited, *others))
    with running_org(config, 2) as org:
        client = engine_client(org.base)
        try:
            create_visit_tables(client.http, client.service_root)
            offered = {choice.name for choice in discover(client)}
            assert "new_project" not in offered and "new_visit" not in offered
            with pytest.raises(InvalidValueError, match="that the sync user may read"):
                enable(migrated_engine, client, "new_visit")
        finally:
            client.close()


def test_validate_checks_an_enabled_custom_entity_and_its_fields(
    migrated_engine: Engine, synced: Synced, visits: dict[str, str]
) -> None:
    org, client, _ = synced
    line = "new_visit: selected fields readable"
    assert line not in {item.name for item in validate_setup(client, migrated_engine).items}
    enable(migrated_engine, client, "new_visit", ["new_name", "new_note"])
    report = {item.name: item for item in validate_setup(client, migrated_engine).items}
    assert report["new_visit: read privilege"].ok
    assert report["new_visit: change tracking"].ok
    assert report[line].ok and report[line].detail.startswith("all ")
    org.app.state.storage.remove_attribute("new_visit", "new_note")
    after = {item.name: item for item in validate_setup(client, migrated_engine).items}
    assert not after[line].ok and after[line].detail == "new_note does not exist"
