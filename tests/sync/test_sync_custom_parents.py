"""Custom-entity records follow their parent (B45): when a project moves to another contact in
Dynamics, the next cycle re-links its visits to the new contact's person, although the visits
themselves did not change. Seen where a marketer sees it: the Marketo REST API's custom-object
query by ``leadId``, smart lists ("has a visit"), the "visit is added" trigger, and the cycle
report. Runs on SQLite and on PostgreSQL, against the emulator over HTTP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))

from marketo_harness import MarketoHarness, build_harness
from sync_harness import Org

from crmsync.dynamics.client import DynamicsClient
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.smartlists import Filter, SmartList, member_ids
from crmsync.store.tables import crm_links
from crmsync.sync.campaign_push import ImmediatePush, campaign_runner
from crmsync.sync.custom_entities import enable
from crmsync.sync.cycle import SyncCycle
from custom_tables import create_row, create_visit_tables

Synced = tuple[Org, DynamicsClient, SyncCycle]
HAS_A_VISIT = SmartList((Filter("custom:new_visit", "is_not_empty"),))


@pytest.fixture
def marketo(migrated_engine: Engine) -> Iterator[MarketoHarness]:
    """The Marketo REST API on the test's database."""
    yield from build_harness(migrated_engine)


def _person_of_contact(engine: Engine, contact_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(crm_links.c.local_id).where(
                    crm_links.c.entity == "contact", crm_links.c.crm_id == contact_id
                )
            ).scalar_one()
        )


def _visits_of(marketo: MarketoHarness, person: int) -> list[str]:
    answer = marketo.get(
        "/rest/v1/customobjects/new_visit.json",
        {"filterType": "leadId", "filterValues": str(person)},
    )
    assert answer["success"] is True, answer
    return sorted(str(row["marketoGUID"]) for row in answer["result"])


def _has_a_visit(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return set(member_ids(conn, HAS_A_VISIT, limit=1000))


def _move(client: DynamicsClient, project: str, contact: str) -> None:
    client.http.patch(
        f"{client.service_root}/new_projects({project})",
        json={"new_contactid@odata.bind": f"/contacts({contact})"},
        headers={"If-Match": "*"},
    ).raise_for_status()


@pytest.fixture
def projects(synced: Synced) -> dict[str, Any]:
    """Two contacts; project Alpha of the first with two visits, Beta of the second with one."""
    _, client, _ = synced
    http, root = client.http, client.service_root
    create_visit_tables(http, root)
    first, second = (
        row["contactid"]
        for row in http.get(f"{root}/contacts?$select=contactid&$top=2").json()["value"]
    )
    made: dict[str, Any] = {"first": first, "second": second}
    for project, contact, visits in (("alpha", first, 2), ("beta", second, 1)):
        made[project] = create_row(
            http,
            root,
            "new_projects",
            {"new_name": project, "new_contactid@odata.bind": f"/contacts({contact})"},
        )
        made[f"{project} visits"] = sorted(
            create_row(
                http,
                root,
                "new_visits",
                {
                    "new_name": f"{project} {n}",
                    "new_projectid@odata.bind": f"/new_projects({made[project]})",
                },
            )
            for n in range(visits)
        )
    return made


def test_visits_follow_their_project_to_another_person(
    migrated_engine: Engine, synced: Synced, projects: dict[str, Any], marketo: MarketoHarness
) -> None:
    _, client, cycle = synced
    enable(migrated_engine, client, "new_visit")
    assert cycle.run().status == "ok"
    first = _person_of_contact(migrated_engine, projects["first"])
    second = _person_of_contact(migrated_engine, projects["second"])
    alpha, beta = projects["alpha visits"], projects["beta visits"]
    assert _visits_of(marketo, first) == alpha
    assert _visits_of(marketo, second) == beta
    assert _has_a_visit(migrated_engine) == {first, second}

    _move(client, projects["alpha"], projects["second"])  # the visits themselves do not change
    report = cycle.run()
    assert report.status == "ok"
    (visits,) = [e for e in report.entities if e.entity == "new_visit"]
    assert (visits.created, visits.updated) == (0, 2)
    assert visits.note == "2 re-linked: their new_project moved"
    assert _visits_of(marketo, first) == []
    assert _visits_of(marketo, second) == sorted([*alpha, *beta])
    assert _has_a_visit(migrated_engine) == {second}

    quiet = cycle.run()  # nothing moved: nothing re-linked
    (visits,) = [e for e in quiet.entities if e.entity == "new_visit"]
    assert (visits.updated, visits.note) == (0, None)
    assert _visits_of(marketo, second) == sorted([*alpha, *beta])


def test_a_project_losing_its_contact_unlinks_its_visits_and_a_move_back_fires_the_trigger(
    migrated_engine: Engine, synced: Synced, projects: dict[str, Any], marketo: MarketoHarness
) -> None:
    _, client, cycle = synced
    service = CampaignService(migrated_engine)
    service.create(
        {
            "name": "Visited",
            "active": True,
            "qualification": "every_time",
            "triggers": [{"type": "custom_object_added", "entity": "new_visit"}],
            "flow": [{"type": "change_data_value", "field": "leadStatus", "value": "Visited"}],
        }
    )
    runner = campaign_runner(
        migrated_engine, push=ImmediatePush(migrated_engine, client), client=client
    )
    enable(migrated_engine, client, "new_visit")
    cycle.run()
    assert runner.run_pending() == 2  # each person gained visits once
    first = _person_of_contact(migrated_engine, projects["first"])

    client.http.delete(
        f"{client.service_root}/new_projects({projects['alpha']})/new_contactid/$ref"
    ).raise_for_status()
    cycle.run()
    assert _visits_of(marketo, first) == []
    assert first not in _has_a_visit(migrated_engine)
    assert runner.run_pending() == 0

    _move(client, projects["alpha"], projects["first"])
    cycle.run()
    assert _visits_of(marketo, first) == projects["alpha visits"]
    assert first in _has_a_visit(migrated_engine)
    assert runner.run_pending() == 1  # the visits were added to the first person again
