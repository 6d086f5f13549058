"""Editing a campaign changes a batch campaign's schedule too: the pending run is replaced
(never added beside the old one), checked by the same rules as Schedule Campaign before
anything is saved, dropped with an empty schedule, and kept when the edit leaves it out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from crmsync.errors import InvalidValueError
from crmsync.marketing.campaigns.edits import edit_campaign, editable
from crmsync.marketing.campaigns.schedules import CampaignSchedules, ScheduledRun
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import campaign_events

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
BATCH = {
    "name": "Weekly",
    "type": "batch",
    "smartList": {"filters": [{"field": "email", "operator": "is_not_empty"}]},
    "flow": [{"type": "change_data_value", "field": "leadStatus", "value": "Weekly"}],
}


def _queued(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(campaign_events)).scalar_one())


def test_an_edit_replaces_the_pending_run(migrated_engine: Engine) -> None:
    service = CampaignService(migrated_engine)
    campaign = service.create(BATCH)
    PersonService(migrated_engine).sync([{"email": "w@example.com"}])
    schedules = CampaignSchedules(migrated_engine)
    schedules.schedule(campaign.id, run_at=NOW + timedelta(days=1), now=NOW)

    later = {"runAt": "2027-01-10T09:30:00Z", "everyDays": 7, "until": "2027-03-01"}
    saved, changed = edit_campaign(
        migrated_engine, campaign.id, {"name": "Weekly, later", "schedule": later}, now=NOW
    )
    assert changed == ["name", "schedule"]
    assert saved.definition.name == "Weekly, later"
    start = datetime(2027, 1, 10, 9, 30, tzinfo=UTC)
    assert schedules.pending(campaign.id) == [
        ScheduledRun(start, 7, datetime(2027, 3, 1, tzinfo=UTC))
    ]
    assert editable(migrated_engine, saved)["schedule"] == later | {"until": "2027-03-01T00:00:00Z"}
    # the old time starts nothing; the new one starts the run once and queues the next
    assert schedules.start_due_schedules(now=NOW + timedelta(days=2)) == 0
    assert _queued(migrated_engine) == 0
    assert schedules.start_due_schedules(now=start + timedelta(minutes=1)) == 1
    assert _queued(migrated_engine) == 1
    assert [r.run_at for r in schedules.pending(campaign.id)] == [start + timedelta(days=7)]

    # the same schedule again changes nothing; leaving it out keeps it, even with replace
    again = {"schedule": {"runAt": "2027-01-17T09:30:00Z", "everyDays": 7, "until": "2027-03-01"}}
    assert edit_campaign(migrated_engine, campaign.id, again, now=NOW)[1] == []
    whole = {**BATCH, "name": "Weekly, later"}
    assert edit_campaign(migrated_engine, campaign.id, whole, replace=True, now=NOW)[1] == []
    assert len(schedules.pending(campaign.id)) == 1
    # an empty schedule drops the pending run
    assert edit_campaign(migrated_engine, campaign.id, {"schedule": {}}, now=NOW)[1] == ["schedule"]
    assert schedules.pending(campaign.id) == []
    assert "schedule" not in editable(migrated_engine, service.get(campaign.id))


def test_a_refused_schedule_saves_nothing(migrated_engine: Engine) -> None:
    service = CampaignService(migrated_engine)
    campaign = service.create(BATCH)
    schedules = CampaignSchedules(migrated_engine)
    schedules.schedule(campaign.id, run_at=NOW + timedelta(days=1), now=NOW)
    before = schedules.pending(campaign.id)

    too_far = {"name": "Renamed", "schedule": {"runAt": "2030-01-01T00:00:00Z"}}
    with pytest.raises(InvalidValueError, match="at most two years ahead") as far:
        edit_campaign(migrated_engine, campaign.id, too_far, now=NOW)
    assert far.value.code == "1042"
    for bad, reason in [
        ({"runAt": "next tuesday"}, "must be a date-time"),
        ({"everyDays": 0}, "every 1 to 366 days"),
        ({"at": "2027-01-05"}, "unknown part 'at'"),
        ("tomorrow", "must be an object"),
    ]:
        with pytest.raises(InvalidValueError, match=reason):
            edit_campaign(migrated_engine, campaign.id, {"name": "Renamed", "schedule": bad})
    # a batch campaign without filters cannot run on a schedule
    no_filters = {"name": "Renamed", "smartList": {"filters": []}, "schedule": {"everyDays": 1}}
    with pytest.raises(InvalidValueError, match="at least one smart list filter"):
        edit_campaign(migrated_engine, campaign.id, no_filters, now=NOW)
    assert service.get(campaign.id).definition.name == "Weekly"
    assert schedules.pending(campaign.id) == before

    trigger = service.create(
        {
            "name": "On create",
            "triggers": [{"type": "person_created"}],
            "flow": [{"type": "change_data_value", "field": "leadStatus", "value": "New"}],
        }
    )
    with pytest.raises(InvalidValueError, match="only batch campaigns") as refused:
        edit_campaign(migrated_engine, trigger.id, {"schedule": {"runAt": "2027-01-05"}}, now=NOW)
    assert refused.value.code == "1003"
    assert schedules.pending(trigger.id) == []
