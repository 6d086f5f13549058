"""Time in smart campaigns: a Wait step pauses a person's flow durably and the flow goes on
where it stopped (not qualified again); "once every N days" qualification; recurring batch
schedules start each occurrence once and never make up missed ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from crmsync.errors import InvalidValueError
from crmsync.marketing.campaigns.runner import CampaignRunner
from crmsync.marketing.campaigns.schedules import CampaignSchedules
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import campaign_events, campaign_members, campaign_schedules, persons


def _person(engine: Engine, **values: object) -> int:
    (outcome,) = PersonService(engine).sync([{"email": "t@example.com", **values}])
    assert outcome.id is not None, outcome
    return outcome.id


def _status(engine: Engine, person_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(persons.c.leadStatus).where(persons.c.id == person_id)).scalar()


def _steps(engine: Engine, campaign_id: int) -> list[tuple[int, str]]:
    rows = CampaignService(engine).results(campaign_id, limit=100)
    return sorted((int(str(r["step"])), str(r["status"])) for r in rows)


def test_a_wait_pauses_the_flow_and_it_goes_on_after(migrated_engine: Engine) -> None:
    campaign = CampaignService(migrated_engine).create(
        {
            "name": "Nurture",
            "active": True,
            "triggers": [{"type": "person_created"}],
            "smartList": {"filters": [{"field": "leadStatus", "operator": "is_empty"}]},
            "flow": [
                {"type": "change_data_value", "field": "leadStatus", "value": "Day 0"},
                {"type": "wait", "days": 2, "hours": 1},
                {"type": "change_data_value", "field": "leadStatus", "value": "Day 2"},
            ],
        }
    )
    person_id = _person(migrated_engine)
    runner = CampaignRunner(migrated_engine)
    assert runner.run_pending() == 1  # ran up to the wait
    assert _status(migrated_engine, person_id) == "Day 0"
    assert _steps(migrated_engine, campaign.id) == [(1, "done"), (2, "done")]
    with migrated_engine.connect() as conn:
        run_after, processed = conn.execute(
            select(campaign_events.c.run_after, campaign_events.c.processed_at)
        ).one()
    expected = datetime.now(UTC) + timedelta(days=2, hours=1)
    assert processed is None and abs((run_after - expected).total_seconds()) < 60

    assert CampaignRunner(migrated_engine).run_pending() == 0  # still waiting
    assert _status(migrated_engine, person_id) == "Day 0"

    with migrated_engine.begin() as conn:  # the wait is over
        conn.execute(update(campaign_events).values(run_after=datetime.now(UTC)))
    # the smart list no longer matches (leadStatus is set): the flow goes on regardless
    assert CampaignRunner(migrated_engine).run_pending() == 1
    assert _status(migrated_engine, person_id) == "Day 2"
    assert _steps(migrated_engine, campaign.id) == [(1, "done"), (2, "done"), (3, "done")]


def test_once_every_n_days(migrated_engine: Engine) -> None:
    campaign = CampaignService(migrated_engine).create(
        {
            "name": "Title watch",
            "active": True,
            "qualification": "every_n_days",
            "qualificationDays": 3,
            "triggers": [{"type": "data_value_changes", "field": "title"}],
            "flow": [{"type": "change_data_value", "field": "leadStatus", "value": "Seen"}],
        }
    )
    assert campaign.definition.as_dict()["qualificationDays"] == 3
    person_id = _person(migrated_engine)
    runner = CampaignRunner(migrated_engine)
    for title in ("CTO", "CFO"):
        PersonService(migrated_engine).sync([{"id": person_id, "title": title}], lookup_field="id")
        runner.run_pending()
    assert len(_steps(migrated_engine, campaign.id)) == 1  # the second change is within 3 days

    with migrated_engine.begin() as conn:  # four days later
        conn.execute(update(campaign_members).values(last_at=datetime.now(UTC) - timedelta(days=4)))
    PersonService(migrated_engine).sync([{"id": person_id, "title": "CEO"}], lookup_field="id")
    runner.run_pending()
    assert len(CampaignService(migrated_engine).results(campaign.id)) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"qualification": "every_n_days"}, "needs 'qualificationDays'"),
        ({"qualification": "every_n_days", "qualificationDays": 0}, "needs 'qualificationDays'"),
        ({"qualification": "weekly"}, "'every_n_days'"),
        ({"flow": [{"type": "wait"}]}, "from 1 minute to 365 days"),
        ({"flow": [{"type": "wait", "days": 400}]}, "from 1 minute to 365 days"),
        ({"flow": [{"type": "wait", "hours": "2"}]}, "'hours' must be a whole number"),
    ],
)
def test_bad_timing_is_refused_with_its_reason(
    migrated_engine: Engine, extra: dict[str, Any], message: str
) -> None:
    definition: dict[str, Any] = {
        "name": "x",
        "triggers": [{"type": "person_created"}],
        "flow": [{"type": "delete_person"}],
        **extra,
    }
    with pytest.raises(InvalidValueError, match=message):
        CampaignService(migrated_engine).create(definition)


def _batch(engine: Engine) -> int:
    return (
        CampaignService(engine)
        .create(
            {
                "name": "Weekly",
                "type": "batch",
                "smartList": {"filters": [{"field": "email", "operator": "is_not_empty"}]},
                "flow": [{"type": "change_data_value", "field": "leadStatus", "value": "Weekly"}],
            }
        )
        .id
    )


def _schedules(engine: Engine) -> list[tuple[datetime, datetime | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(campaign_schedules.c.run_at, campaign_schedules.c.started_at).order_by(
                campaign_schedules.c.id
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


def test_a_recurring_schedule_queues_each_occurrence_once(migrated_engine: Engine) -> None:
    campaign_id = _batch(migrated_engine)
    _person(migrated_engine)
    start = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
    schedules = CampaignSchedules(migrated_engine)
    schedules.schedule(
        campaign_id,
        run_at=start,
        every_days=7,
        until=start + timedelta(days=30),
        now=start - timedelta(days=1),
    )
    assert schedules.start_due_schedules(now=start + timedelta(minutes=1)) == 1
    assert schedules.start_due_schedules(now=start + timedelta(minutes=2)) == 0
    assert [r[0] for r in _schedules(migrated_engine)] == [start, start + timedelta(days=7)]

    # nothing ran for two weeks: the missed occurrence is not made up
    assert schedules.start_due_schedules(now=start + timedelta(days=15)) == 1
    run_ats = [r[0] for r in _schedules(migrated_engine)]
    assert run_ats[-1] == start + timedelta(days=21)
    assert schedules.start_due_schedules(now=start + timedelta(days=22)) == 1
    # day 28 is the last within 'until' (day 30); nothing follows it
    assert schedules.start_due_schedules(now=start + timedelta(days=29)) == 1
    assert schedules.start_due_schedules(now=start + timedelta(days=60)) == 0
    assert all(started is not None for _, started in _schedules(migrated_engine))
    with migrated_engine.connect() as conn:
        queued = conn.execute(select(func.count()).select_from(campaign_events)).scalar()
    assert queued == 4


def test_recurrence_is_checked(migrated_engine: Engine) -> None:
    campaign_id = _batch(migrated_engine)
    schedules = CampaignSchedules(migrated_engine)
    with pytest.raises(InvalidValueError, match="every 1 to 366 days"):
        schedules.schedule(campaign_id, every_days=0)
    with pytest.raises(InvalidValueError, match="'until' needs a recurring run"):
        schedules.schedule(campaign_id, until=datetime.now(UTC) + timedelta(days=9))
