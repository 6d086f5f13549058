"""Smart campaigns on the marketing side (B35, B36): triggers written with the change, the
runner taking each person through the flow once, qualification rules, batch runs, and
definitions refused with a reason."""

from __future__ import annotations

import threading
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from crmsync.errors import InvalidValueError
from crmsync.marketing.activity_types import ADD_TO_LIST, CHANGE_DATA_VALUE, REQUEST_CAMPAIGN
from crmsync.marketing.campaigns.runner import CampaignRunner
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.lists import ListService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import activities, campaign_events, companies, persons


def _person(engine: Engine, **values: object) -> int:
    (outcome,) = PersonService(engine).sync([{"email": "p@example.com", **values}])
    assert outcome.id is not None, outcome
    return outcome.id


def _field(engine: Engine, person_id: int, name: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(persons.c[name]).where(persons.c.id == person_id)).scalar()


def _activities(engine: Engine, person_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(activities).where(activities.c.person_id == person_id).order_by(activities.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def test_person_created_trigger_runs_the_flow_once(migrated_engine: Engine) -> None:
    """A new person fires 'Person is Created'; every step runs and logs its activity with the
    campaign id; running the runner again does nothing more."""
    vip = ListService(migrated_engine).create("VIP")
    service = CampaignService(migrated_engine)
    campaign = service.create(
        {
            "name": "Welcome",
            "type": "trigger",
            "active": True,
            "triggers": [{"type": "person_created"}],
            "smartList": {"filters": [{"field": "country", "operator": "is", "values": ["FR"]}]},
            "flow": [
                {"type": "change_data_value", "field": "leadStatus", "value": "Welcomed"},
                {"type": "add_to_list", "listId": vip},
            ],
        }
    )
    inside = _person(migrated_engine, email="fr@example.com", country="fr")
    outside = _person(migrated_engine, email="de@example.com", country="DE")
    runner = CampaignRunner(migrated_engine)

    assert runner.run_pending() == 2
    assert runner.run_pending() == 0

    assert _field(migrated_engine, inside, "leadStatus") == "Welcomed"
    assert _field(migrated_engine, outside, "leadStatus") is None
    logged = {(a["type_id"], a["campaign_id"]) for a in _activities(migrated_engine, inside)}
    assert (CHANGE_DATA_VALUE, campaign.id) in logged
    assert (ADD_TO_LIST, campaign.id) in logged
    assert ListService(migrated_engine).is_member(vip, [inside])[0].status == "memberof"
    results = service.results(campaign.id)
    assert [(r["personId"], r["step"], r["status"]) for r in reversed(results)] == [
        (inside, 1, "done"),
        (inside, 2, "done"),
    ]
    assert service.memberships(inside)[0]["smartCampaignId"] == campaign.id
    assert service.memberships(outside) == []


def test_data_value_change_trigger_with_to_value_and_qualification(migrated_engine: Engine) -> None:
    """'Data Value Changes' with a 'to' constraint fires only for that new value; with
    'each person once' the second change does not run the flow again."""
    service = CampaignService(migrated_engine)
    campaign = service.create(
        {
            "name": "Qualified",
            "active": True,
            "qualification": "once",
            "triggers": [{"type": "data_value_changes", "field": "leadStatus", "to": "MQL"}],
            "flow": [{"type": "change_data_value", "field": "rating", "value": "Hot"}],
        }
    )
    person = _person(migrated_engine)
    people = PersonService(migrated_engine)
    people.sync([{"id": person, "leadStatus": "Open"}], lookup_field="id")
    runner = CampaignRunner(migrated_engine)
    assert runner.run_pending() == 0  # 'Open' is not 'MQL': no event at all

    people.sync([{"id": person, "leadStatus": "mql"}], lookup_field="id")
    assert runner.run_pending() == 1
    assert _field(migrated_engine, person, "rating") == "Hot"

    people.sync([{"id": person, "leadStatus": "Open", "rating": "Cold"}], lookup_field="id")
    people.sync([{"id": person, "leadStatus": "MQL"}], lookup_field="id")
    assert runner.run_pending() == 1
    assert _field(migrated_engine, person, "rating") == "Cold"  # once: not run again
    assert len(service.results(campaign.id)) == 1


def test_a_campaign_never_triggers_itself(migrated_engine: Engine) -> None:
    """A flow changing the very field its trigger watches does not loop."""
    service = CampaignService(migrated_engine)
    campaign = service.create(
        {
            "name": "Loop",
            "active": True,
            "qualification": "every_time",
            "triggers": [{"type": "data_value_changes", "field": "leadStatus"}],
            "flow": [{"type": "change_data_value", "field": "leadStatus", "value": "Touched"}],
        }
    )
    person = _person(migrated_engine)
    PersonService(migrated_engine).sync([{"id": person, "leadStatus": "New"}], lookup_field="id")
    runner = CampaignRunner(migrated_engine)
    assert runner.run_pending() == 1
    assert runner.run_pending() == 0
    assert _field(migrated_engine, person, "leadStatus") == "Touched"
    assert len(service.results(campaign.id)) == 1


def test_request_campaign_and_a_failing_step_goes_on(migrated_engine: Engine) -> None:
    """Request Campaign queues persons (activity 47); a step that fails (a value the field
    refuses) is recorded as failed and the next person still runs."""
    service = CampaignService(migrated_engine)
    campaign = service.create(
        {
            "name": "Requested",
            "active": True,
            "triggers": [{"type": "campaign_requested", "source": "web_service_api"}],
            "flow": [
                {"type": "change_data_value", "field": "numberOfEmployees", "value": "{{my.size}}"}
            ],
        }
    )
    first = _person(migrated_engine, email="a@example.com")
    second = _person(migrated_engine, email="b@example.com")
    service.request(campaign.id, [first], tokens={"{{my.size}}": "lots"})
    service.request(campaign.id, [second], tokens={"{{my.size}}": "42"})
    assert CampaignRunner(migrated_engine).run_pending() == 2

    by_person = {r["personId"]: r for r in service.results(campaign.id)}
    assert by_person[first]["status"] == "failed"
    assert "lots" in str(by_person[first]["message"])
    assert by_person[second]["status"] == "done"
    assert _field(migrated_engine, second, "numberOfEmployees") == 42
    assert REQUEST_CAMPAIGN in {a["type_id"] for a in _activities(migrated_engine, first)}


def test_batch_campaign_runs_its_smart_list_and_delete_is_marketing_only(
    migrated_engine: Engine,
) -> None:
    """'Run now' queues everyone in the smart list; Delete Person removes them here (B35)."""
    service = CampaignService(migrated_engine)
    keep = _person(migrated_engine, email="keep@example.com", leadSource="Web")
    drop = _person(migrated_engine, email="drop@example.com", leadSource="Spam")
    campaign = service.create(
        {
            "name": "Clean up",
            "type": "batch",
            "smartList": {"filters": [{"field": "leadSource", "operator": "is", "value": "spam"}]},
            "flow": [{"type": "delete_person"}],
        }
    )
    assert service.run_batch(campaign.id) == 1
    assert CampaignRunner(migrated_engine).run_pending() == 1
    assert _field(migrated_engine, drop, "email") is None
    assert _field(migrated_engine, keep, "email") == "keep@example.com"
    with pytest.raises(InvalidValueError, match="only trigger campaigns are activated"):
        service.set_active(campaign.id, True)


def test_two_runners_never_run_one_step_twice(migrated_engine: Engine) -> None:
    """Two runners sharing the events: each person's step result exists once."""
    service = CampaignService(migrated_engine)
    campaign = service.create(
        {
            "name": "Race",
            "active": True,
            "triggers": [{"type": "person_created"}],
            "flow": [{"type": "change_data_value", "field": "rating", "value": "Warm"}],
        }
    )
    PersonService(migrated_engine).sync([{"email": f"r{i}@example.com"} for i in range(30)])

    runners = [CampaignRunner(migrated_engine, batch_size=3) for _ in range(2)]
    threads = [threading.Thread(target=r.run_pending) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    results = service.results(campaign.id, limit=1000)
    assert len(results) == 30
    assert len({r["personId"] for r in results}) == 30
    with migrated_engine.connect() as conn:
        pending = conn.execute(
            select(campaign_events.c.id).where(campaign_events.c.processed_at.is_(None))
        ).all()
    assert pending == []


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"name": "x", "flow": [{"type": "delete_person"}]}, "needs at least one trigger"),
        (
            {"name": "x", "triggers": [{"type": "person_created"}], "flow": []},
            "'flow' must be a list of 1",
        ),
        (
            {"name": "x", "triggers": [{"type": "nope"}], "flow": [{"type": "delete_person"}]},
            "unknown trigger 'nope'",
        ),
        (
            {"name": "x", "type": "batch", "flow": [{"type": "change_owner_in_microsoft"}]},
            "trigger campaigns only",
        ),
        (
            {
                "name": "x",
                "triggers": [{"type": "person_created"}],
                "flow": [{"type": "change_data_value", "field": "createdAt", "value": "x"}],
            },
            "not a writable person field",
        ),
        (
            {
                "name": "x",
                "triggers": [{"type": "person_created"}],
                "flow": [{"type": "sync_person_to_microsoft", "syncAs": "account"}],
            },
            "'syncAs' must be 'lead' or 'contact'",
        ),
        (
            {
                "name": "x",
                "triggers": [{"type": "person_created"}],
                "smartList": {
                    "filters": [{"field": "city", "operator": "is_empty"}],
                    "logic": "1 or",
                },
                "flow": [{"type": "delete_person"}],
            },
            "ends too early",
        ),
    ],
)
def test_bad_definitions_are_refused(
    migrated_engine: Engine, definition: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidValueError, match=message):
        CampaignService(migrated_engine).create(definition)


def test_the_documented_example_is_a_valid_campaign(migrated_engine: Engine) -> None:
    """docs/campaigns.md's worked example saves as written."""
    text = (Path(__file__).parents[2] / "docs" / "campaigns.md").read_text(encoding="utf-8")
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    record = CampaignService(migrated_engine).create(tomllib.loads(block))
    assert record.definition.active and record.definition.smart_list.logic == "1 and (2 or 3)"


def test_step_choices_pick_parameters_per_person(migrated_engine: Engine) -> None:
    """'If CRM Type is Lead then …, if country is FR then …, default: do nothing': each person
    gets the first matching choice; one matching none is skipped with that reason."""
    people = PersonService(migrated_engine)
    (lead,) = people.sync(
        [{"email": "l@example.com", "crmType": "Lead", "country": "FR"}], allow_system_fields=True
    )
    (french,) = people.sync([{"email": "f@example.com", "country": "fr"}])
    (other,) = people.sync([{"email": "o@example.com", "country": "DE"}])
    service = CampaignService(migrated_engine)
    campaign = service.create(
        {
            "name": "Choices",
            "type": "batch",
            "smartList": {"filters": [{"field": "email", "operator": "is_not_empty"}]},
            "flow": [
                {
                    "type": "change_data_value",
                    "field": "leadStatus",
                    "choices": [
                        {
                            "if": {"field": "crmType", "operator": "is", "value": "Lead"},
                            "then": {"value": "Sales lead"},
                        },
                        {
                            "if": {"field": "country", "operator": "is", "value": "FR"},
                            "then": {"value": "Nurture FR"},
                        },
                    ],
                    "default": "do_nothing",
                }
            ],
        }
    )
    assert service.run_batch(campaign.id) == 3
    assert CampaignRunner(migrated_engine).run_pending() == 3
    assert _field(migrated_engine, lead.id, "leadStatus") == "Sales lead"  # type: ignore[arg-type]
    assert _field(migrated_engine, french.id, "leadStatus") == "Nurture FR"  # type: ignore[arg-type]
    assert _field(migrated_engine, other.id, "leadStatus") is None  # type: ignore[arg-type]
    by_person = {r["personId"]: r for r in service.results(campaign.id)}
    assert by_person[other.id]["status"] == "skipped"
    assert "no choice matched" in str(by_person[other.id]["message"])


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {
                "type": "sync_person_to_microsoft",
                "choices": [
                    {"if": {"field": "city", "operator": "is_empty"}, "then": {"syncAs": "account"}}
                ],
            },
            "'syncAs' must be 'lead' or 'contact'",
        ),
        (
            {
                "type": "delete_person",
                "choices": [{"if": {"field": "nope", "operator": "is_empty"}, "then": {}}],
            },
            "unknown person field 'nope'",
        ),
        ({"type": "delete_person", "default": "skip"}, "'default' can only be 'do_nothing'"),
        ({"type": "delete_person", "choices": [{"then": {}}]}, "choice 1: 'if' must be a filter"),
    ],
)
def test_bad_choices_are_refused(
    migrated_engine: Engine, step: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidValueError, match=message):
        CampaignService(migrated_engine).create(
            {"name": "x", "triggers": [{"type": "person_created"}], "flow": [step]}
        )


def test_inactive_campaigns_do_not_fire_and_microsoft_steps_need_the_sync(
    migrated_engine: Engine,
) -> None:
    """A deactivated trigger campaign writes no events; a runner without the Dynamics sync's
    steps fails a Microsoft step with a reason, and the next step still runs."""
    service = CampaignService(migrated_engine)
    campaign = service.create(
        {
            "name": "Needs Dynamics",
            "active": True,
            "triggers": [{"type": "person_created"}],
            "flow": [
                {"type": "sync_person_to_microsoft"},
                {"type": "change_data_value", "field": "rating", "value": "Seen"},
            ],
        }
    )
    service.set_active(campaign.id, False)
    _person(migrated_engine, email="quiet@example.com")
    assert service.pending() == 0

    service.set_active(campaign.id, True)
    person = _person(migrated_engine, email="loud@example.com")
    assert CampaignRunner(migrated_engine).run_pending() == 1
    first, second = sorted(service.results(campaign.id), key=lambda r: int(str(r["step"])))
    assert first["status"] == "failed" and "crmsync sync run" in str(first["message"])
    assert second["status"] == "done"
    assert _field(migrated_engine, person, "rating") == "Seen"


def test_change_data_value_on_a_shared_company_field_logs_every_change_with_the_campaign(
    migrated_engine: Engine,
) -> None:
    """A Change Data Value step on a company field changes the company of everybody who works
    there (R40); each of their Change Data Value activities names the campaign that made it,
    not only the one person's who went through the flow."""
    stepping = _person(migrated_engine, email="one@acme.example")
    colleague = PersonService(migrated_engine).sync([{"email": "two@acme.example"}])[0].id
    assert colleague is not None
    with migrated_engine.begin() as conn:
        company_id = conn.execute(
            insert(companies).values(company="Acme", numberOfEmployees=10)
        ).inserted_primary_key[0]
        conn.execute(
            update(persons)
            .where(persons.c.id.in_([stepping, colleague]))
            .values(company_id=company_id, numberOfEmployees=10)
        )
    service = CampaignService(migrated_engine)
    campaign = service.create(
        {
            "name": "Grow Acme",
            "type": "batch",
            "smartList": {
                "filters": [{"field": "email", "operator": "is", "values": ["one@acme.example"]}]
            },
            "flow": [{"type": "change_data_value", "field": "numberOfEmployees", "value": 50}],
        }
    )
    assert service.run_batch(campaign.id) == 1
    assert CampaignRunner(migrated_engine).run_pending() == 1

    with migrated_engine.connect() as conn:
        size = conn.execute(
            select(companies.c.numberOfEmployees).where(companies.c.id == company_id)
        ).scalar()
    assert size == 50
    for person_id in (stepping, colleague):
        changes = [
            a["campaign_id"]
            for a in _activities(migrated_engine, person_id)
            if a["type_id"] == CHANGE_DATA_VALUE and a["field_name"] == "numberOfEmployees"
        ]
        assert changes == [campaign.id], person_id
