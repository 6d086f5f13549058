"""The demo's marketing-only persons can be synced to Microsoft (issue: the first hour), end to
end over real HTTP: each one becomes a lead or a contact of the emulated org, whose option sets
differ (a contact has no lead statuses), and a record with several values Dynamics would refuse
names all of them in one error."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sync_harness import engine_client, open_errors, running_org

from crmsync.cli.demo_people import demo_persons
from crmsync.emulator.config import default_config
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import persons
from crmsync.sync.crm_create import request_crm_create
from crmsync.sync.cycle import SyncCycle

pytestmark = pytest.mark.e2e


def test_every_demo_person_syncs_as_a_lead_or_a_contact(migrated_engine: Engine) -> None:
    people = demo_persons(40)
    outcomes = PersonService(migrated_engine).sync(people, action="createOnly")
    ids = [int(o.id) for o in outcomes if o.id is not None]
    assert len(ids) == 40
    with running_org(default_config(), 5) as org:
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        cycle.run()
        with migrated_engine.begin() as conn:
            for index, person_id in enumerate(ids):
                request_crm_create(conn, person_id, "contact" if index % 2 else "lead")
        cycle.run()
        client.close()
    assert open_errors(migrated_engine) == []
    with migrated_engine.connect() as conn:
        rows = conn.execute(
            select(persons.c.id, persons.c.crmType, persons.c.leadStatus).where(
                persons.c.id.in_(ids)
            )
        ).all()
    types = {row.id: row.crmType for row in rows}
    assert [types[i] for i in ids] == ["Lead", "Contact"] * 20


def test_a_record_with_several_bad_values_names_them_all(migrated_engine: Engine) -> None:
    (outcome,) = PersonService(migrated_engine).sync(
        [
            {
                "email": "many.problems@example.com",
                "lastName": "Problems",
                "leadSource": "Carrier Pigeon",
                "leadStatus": "Dormant",
            }
        ],
        action="createOnly",
    )
    assert outcome.id is not None
    with running_org(default_config(), 5) as org:
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        cycle.run()
        with migrated_engine.begin() as conn:
            request_crm_create(conn, int(outcome.id), "lead")
        cycle.run()
        client.close()
    (error,) = open_errors(migrated_engine)
    message = str(error["message"])
    assert "Carrier Pigeon" in message and "Dormant" in message, message
    assert error["operation"] == "create"
