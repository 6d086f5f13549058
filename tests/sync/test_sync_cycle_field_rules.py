"""Per-field sync rules through real cycles against the emulator (B46): each rule with a
same-field collision and with a blank, checked in Dynamics, on the person and in the
collision activity that names the rule which decided."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, select
from sync_harness import (
    Org,
    Salesperson,
    activities_of,
    edit_person,
    engine_client,
    outbox_count,
    person_by_crm_id,
    running_org,
)

from crmsync.dynamics.client import DynamicsClient
from crmsync.emulator.config import default_config
from crmsync.marketing.activity_types import SYNC_COLLISION
from crmsync.store.tables import sync_history
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.selection import save_selection

pytestmark = pytest.mark.e2e

SETS = {"lead": "leads", "contact": "contacts"}
START = "Start Title"
CRM = "Dynamics Title"
MARKETING = "Marketing Title"


@dataclass
class World:
    org: Org
    engine: Engine
    client: DynamicsClient
    cycle: SyncCycle
    alex: Salesperson

    def record(self, entity: str) -> tuple[str, int]:
        """A record of ``entity`` whose title is ``START`` on both sides."""
        crm_id = self.alex.first_ids(SETS[entity], 1)[0]
        assert self.alex.patch(SETS[entity], crm_id, {"jobtitle": START}).is_success
        assert self.cycle.run().status == "ok"
        person = person_by_crm_id(self.engine, entity, crm_id)
        assert person["title"] == START
        return crm_id, int(person["id"])

    def rule(self, entity: str, rule: str) -> None:
        with self.engine.begin() as conn:
            save_selection(conn, self.client, entity, rules={"jobtitle": rule}, actor="test")

    def titles(self, entity: str, crm_id: str) -> tuple[object, object]:
        """The title in Dynamics and on the person."""
        crm = self.alex.get(SETS[entity], crm_id, "jobtitle")["jobtitle"]
        return crm, person_by_crm_id(self.engine, entity, crm_id)["title"]

    def collision_rules(self, person_id: int) -> list[tuple[str, str, str]]:
        return [
            (a["primary_value"], a["attributes"]["Winner"], a["attributes"]["Rule"])
            for a in activities_of(self.engine, person_id)
            if a["type_id"] == SYNC_COLLISION
        ]


@pytest.fixture
def world(migrated_engine: Engine) -> Iterator[World]:
    with running_org(default_config(), 4) as org:
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        assert cycle.run().status == "ok"
        alex = org.alex()
        yield World(org, migrated_engine, client, cycle, alex)
        alex.http.close()
        client.close()


COLLISIONS = [
    # entity, rule, Dynamics edit, marketing edit, value both sides end with, winner
    ("lead", "entity-default", CRM, MARKETING, MARKETING, "Marketing", "marketing_wins_for_leads"),
    ("contact", "entity-default", CRM, MARKETING, CRM, "Dynamics", "dynamics_wins_for_contacts"),
    ("lead", "dynamics-wins", CRM, MARKETING, CRM, "Dynamics", "dynamics-wins"),
    ("contact", "marketing-wins", CRM, MARKETING, MARKETING, "Marketing", "marketing-wins"),
    ("lead", "dynamics-to-marketing", CRM, MARKETING, CRM, "Dynamics", "dynamics-to-marketing"),
    (
        "contact",
        "marketing-to-dynamics",
        CRM,
        MARKETING,
        MARKETING,
        "Marketing",
        "marketing-to-dynamics",
    ),
    # a lead's marketing blank would win; never-blank keeps the Dynamics value instead
    ("lead", "never-blank", CRM, None, CRM, "Dynamics", "never-blank"),
    (
        "contact",
        "dynamics-wins,never-blank",
        None,
        MARKETING,
        MARKETING,
        "Marketing",
        "never-blank",
    ),
]


@pytest.mark.parametrize(
    ("entity", "rule", "crm_edit", "marketing_edit", "expected", "winner", "rule_name"), COLLISIONS
)
def test_a_collision_is_won_as_the_fields_rule_says_and_names_it(
    world: World,
    entity: str,
    rule: str,
    crm_edit: str | None,
    marketing_edit: str | None,
    expected: str,
    winner: str,
    rule_name: str,
) -> None:
    crm_id, person_id = world.record(entity)
    world.rule(entity, rule)
    assert world.alex.patch(SETS[entity], crm_id, {"jobtitle": crm_edit}).is_success
    edit_person(world.engine, person_id, title=marketing_edit)

    report = world.cycle.run()

    assert report.status == "ok", report.as_dict()
    assert world.titles(entity, crm_id) == (expected, expected)
    assert world.collision_rules(person_id) == [("title", winner, rule_name)]
    with world.engine.connect() as conn:
        history = conn.execute(
            select(sync_history.c.details).where(sync_history.c.kind == "collision")
        ).scalars()
        assert [h["rule"] for h in history] == [rule_name]
    assert outbox_count(world.engine) == 0
    echo = world.cycle.run()  # our own writes come back and change nothing
    assert echo.push.sent == 0
    assert world.titles(entity, crm_id) == (expected, expected)


BLANKS = [
    # entity, rule, side that blanks the title, (title in Dynamics, title on the person) after
    ("lead", "dynamics-wins", "dynamics", (None, None)),
    ("contact", "marketing-wins", "marketing", (None, None)),
    ("contact", "marketing-wins,never-blank", "marketing", (START, None)),
    ("lead", "never-blank", "dynamics", (START, START)),
    ("lead", "dynamics-to-marketing", "marketing", (START, None)),
    ("lead", "dynamics-to-marketing", "dynamics", (None, None)),
    ("contact", "marketing-to-dynamics", "dynamics", (START, START)),
    ("contact", "marketing-to-dynamics", "marketing", (None, None)),
]


@pytest.mark.parametrize(("entity", "rule", "side", "expected"), BLANKS)
def test_a_blank_travels_only_where_the_fields_rule_lets_it(
    world: World, entity: str, rule: str, side: str, expected: tuple[object, object]
) -> None:
    crm_id, person_id = world.record(entity)
    world.rule(entity, rule)
    if side == "dynamics":
        assert world.alex.patch(SETS[entity], crm_id, {"jobtitle": None}).is_success
    else:
        edit_person(world.engine, person_id, title=None)

    assert world.cycle.run().status == "ok"

    assert world.titles(entity, crm_id) == expected
    assert world.collision_rules(person_id) == []
    assert outbox_count(world.engine) == 0


def test_a_marketing_edit_of_a_dynamics_to_marketing_field_is_never_sent(world: World) -> None:
    crm_id, person_id = world.record("lead")
    world.rule("lead", "dynamics-to-marketing")
    edit_person(world.engine, person_id, title=MARKETING)
    report = world.cycle.run()
    assert report.push.sent == 0
    assert world.titles("lead", crm_id) == (START, MARKETING)  # a local edit, for now
    # the next change of the lead in Dynamics brings its title back
    assert world.alex.patch("leads", crm_id, {"address1_city": "Lyon"}).is_success
    world.cycle.run()
    assert world.titles("lead", crm_id) == (START, START)


def test_a_dynamics_edit_of_a_marketing_to_dynamics_field_is_overwritten(world: World) -> None:
    crm_id, person_id = world.record("lead")
    world.rule("lead", "marketing-to-dynamics")
    assert world.alex.patch("leads", crm_id, {"jobtitle": CRM}).is_success
    report = world.cycle.run()
    assert report.push.updated == 1
    assert world.titles("lead", crm_id) == (START, START)
    edit_person(world.engine, person_id, title=MARKETING)
    world.cycle.run()
    assert world.titles("lead", crm_id) == (MARKETING, MARKETING)
