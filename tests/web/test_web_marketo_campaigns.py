"""Campaigns over the Marketo REST API: paging and ``isTriggerable`` (spec marketo-rest §6.1),
Request Campaign's limits and refusals (§6.2), membership (§4.11)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from marketo_harness import MarketoHarness

from crmsync.marketing.campaigns.runner import CampaignRunner
from crmsync.marketing.campaigns.schedules import CampaignSchedules
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.persons import PersonService


def _campaigns(marketo: MarketoHarness) -> tuple[int, int, int]:
    service = CampaignService(marketo.engine)
    flow = [{"type": "change_data_value", "field": "rating", "value": "{{my.rating}}"}]
    api = service.create(
        {
            "name": "By API",
            "active": True,
            "triggers": [{"type": "campaign_requested", "source": "web_service_api"}],
            "flow": flow,
        }
    ).id
    by_campaign = service.create(
        {
            "name": "By campaign",
            "active": True,
            "triggers": [{"type": "campaign_requested", "source": "campaign"}],
            "flow": flow,
        }
    ).id
    batch = service.create(
        {"name": "Batch", "type": "batch", "flow": flow, "smartList": {"filters": []}}
    ).id
    return api, by_campaign, batch


def test_campaigns_are_listed_paged_and_filtered(marketo_db: MarketoHarness) -> None:
    api, by_campaign, batch = _campaigns(marketo_db)
    first = marketo_db.get("/rest/v1/campaigns.json", {"batchSize": 2})
    assert [c["id"] for c in first["result"]] == [api, by_campaign]
    rest = marketo_db.get(
        "/rest/v1/campaigns.json", {"batchSize": 2, "nextPageToken": first["nextPageToken"]}
    )
    assert [c["id"] for c in rest["result"]] == [batch] and "nextPageToken" not in rest
    triggerable = marketo_db.get("/rest/v1/campaigns.json", {"isTriggerable": "true"})
    assert [c["name"] for c in triggerable["result"]] == ["By API"]
    named = marketo_db.get("/rest/v1/campaigns.json", {"name": "Batch"})
    assert named["result"][0]["type"] == "batch" and "active" not in named["result"][0]
    missing = marketo_db.get("/rest/v1/campaigns/999.json")
    assert missing["success"] is False and missing["errors"][0]["code"] == "1013"


def test_request_campaign_limits_and_refusals(marketo_db: MarketoHarness) -> None:
    api, by_campaign, batch = _campaigns(marketo_db)
    (person,) = PersonService(marketo_db.engine).sync([{"email": "r@example.com"}])
    path = f"/rest/v1/campaigns/{api}/trigger.json"

    ok = marketo_db.post_json(
        path,
        {
            "input": {
                "leads": [{"id": person.id}, {"id": 987654}],
                "tokens": [{"name": "{{my.rating}}", "value": "Hot"}],
            }
        },
    )
    assert ok["success"] is True and ok["result"] == [{"id": api}]

    def code(document: dict[str, object], campaign: int = api) -> str:
        reply = marketo_db.post_json(f"/rest/v1/campaigns/{campaign}/trigger.json", document)
        assert reply["success"] is False, reply
        return str(reply["errors"][0]["code"])  # type: ignore[index]

    too_many = {"input": {"leads": [{"id": i} for i in range(1, 102)]}}
    assert code(too_many) == "1003"
    assert code({"input": {"leads": []}}) == "701"
    assert code({"input": {"leads": [{"id": "x"}]}}) == "1003"
    bad_token = {"input": {"leads": [{"id": 1}], "tokens": [{"name": "rating", "value": "x"}]}}
    assert code(bad_token) == "1003"
    assert code({"input": {"leads": [{"id": 1}]}}, batch) == "1003"
    assert code({"input": {"leads": [{"id": 1}]}}, by_campaign) == "1003"
    assert code({"input": {"leads": [{"id": 1}]}}, 999) == "1013"

    membership = marketo_db.get(f"/rest/v1/leads/{person.id}/smartCampaignMembership.json")
    assert membership["result"] == [] and membership["moreResult"] is False
    activities = marketo_db.get(
        "/rest/v1/activities.json",
        {
            "nextPageToken": marketo_db.get(
                "/rest/v1/activities/pagingtoken.json", {"sinceDatetime": "2000-01-01"}
            )["nextPageToken"],
            "activityTypeIds": "47",
        },
    )
    (requested,) = activities["result"]
    assert requested["leadId"] == person.id and requested["primaryAttributeValueId"] == api


def test_schedule_campaign_runs_once_when_due(marketo_db: MarketoHarness) -> None:
    """Schedule Campaign: at the earliest in five minutes, 1042 beyond two years, 1003 for a
    trigger campaign; a due schedule is started by exactly one runner pass."""
    service = CampaignService(marketo_db.engine)
    (person,) = PersonService(marketo_db.engine).sync([{"email": "s@example.com"}])
    batch = service.create(
        {
            "name": "Scheduled",
            "type": "batch",
            "smartList": {"filters": [{"field": "email", "operator": "is_not_empty"}]},
            "flow": [{"type": "change_data_value", "field": "rating", "value": "{{my.r}}"}],
        }
    ).id
    trigger = service.create(
        {"name": "T", "triggers": [{"type": "person_created"}], "flow": [{"type": "delete_person"}]}
    ).id
    path = f"/rest/v1/campaigns/{batch}/schedule.json"
    far = marketo_db.post_json(path, {"input": {"runAt": "2099-01-01T00:00:00Z"}})
    assert far["success"] is False and far["errors"][0]["code"] == "1042"
    wrong = marketo_db.post_json(f"/rest/v1/campaigns/{trigger}/schedule.json", {"input": {}})
    assert wrong["errors"][0]["code"] == "1003"
    ok = marketo_db.post_json(
        path,
        {
            "input": {
                "runAt": "2000-01-01T00:00:00Z",
                "tokens": [{"name": "{{my.r}}", "value": "A"}],
            }
        },
    )
    assert ok["success"] is True and ok["result"] == [{"id": batch}]

    runner = CampaignRunner(marketo_db.engine)
    assert runner.run_pending() == 0  # runAt in the past still waits five minutes
    later = datetime.now(UTC) + timedelta(minutes=6)
    assert CampaignSchedules(marketo_db.engine).start_due_schedules(now=later) == 1
    assert CampaignSchedules(marketo_db.engine).start_due_schedules(now=later) == 0  # started once
    assert runner.run_pending() == 1
    (read,) = PersonService(marketo_db.engine).get_by_ids([person.id], ["rating"])  # type: ignore[list-item]
    assert read["rating"] == "A"
