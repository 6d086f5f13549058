"""Campaigns through the unmodified ``marketorestpython`` client against ``crmsync serve``:
list and read campaigns, Request Campaign with ``{{my.token}}`` tokens (the flow then runs),
1003 for a batch campaign, and the lead's smart campaign membership."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from marketo_server import RunningServer, marketo_client, running_server

from crmsync.marketing.campaigns.runner import CampaignRunner
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.store.db import open_database

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-campaigns")


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[RunningServer]:
    with running_server(workdir, setup_by_cli=False) as running:
        yield running


def test_request_campaign_through_marketorestpython(server: RunningServer, workdir: Path) -> None:
    engine = open_database(f"sqlite:///{workdir / 'crmsync.db'}")
    service = CampaignService(engine)
    requested = service.create(
        {
            "name": "Score by request",
            "active": True,
            "triggers": [{"type": "campaign_requested", "source": "web_service_api"}],
            "flow": [
                {"type": "change_data_value", "field": "leadStatus", "value": "{{my.status}}"}
            ],
        }
    )
    batch = service.create(
        {
            "name": "Nightly",
            "type": "batch",
            "smartList": {"filters": [{"field": "email", "operator": "is_not_empty"}]},
            "flow": [{"type": "change_data_value", "field": "rating", "value": "Cold"}],
        }
    )
    mc = marketo_client(server)
    created = mc.execute(
        method="create_update_leads",
        leads=[{"email": "req@example.com", "firstName": "Re", "lastName": "Quest"}],
        action="createOnly",
        lookupField="email",
    )
    lead_id = created[0]["id"]

    listed = mc.execute(method="get_multiple_campaigns", batchSize=1)
    assert [(c["id"], c["name"], c["type"]) for c in listed] == [
        (requested.id, "Score by request", "trigger"),
        (batch.id, "Nightly", "batch"),
    ]
    assert listed[0]["active"] is True and "active" not in listed[1]
    (one,) = mc.execute(method="get_campaign_by_id", id=requested.id)
    assert one["name"] == "Score by request"

    assert mc.execute(
        method="request_campaign", id=requested.id, leads=[lead_id], tokens={"my.status": "Hot"}
    )
    with pytest.raises(Exception, match="'code': '1003'"):  # the client re-raises as Exception
        mc.execute(method="request_campaign", id=batch.id, leads=[lead_id])

    assert CampaignRunner(engine).run_pending() == 1
    (lead,) = mc.execute(
        method="get_lead_by_id", id=lead_id, fields=["leadStatus", "rating", "email"]
    )
    assert lead["leadStatus"] == "Hot" and lead["rating"] is None
    membership = mc.execute(method="get_smart_campaigns_by_lead_id", lead_id=lead_id)
    assert [m["smartCampaignId"] for m in membership] == [requested.id]
    engine.dispose()


def test_schedule_campaign_through_marketorestpython(server: RunningServer, workdir: Path) -> None:
    engine = open_database(f"sqlite:///{workdir / 'crmsync.db'}")
    campaign = CampaignService(engine).create(
        {
            "name": "Scheduled by client",
            "type": "batch",
            "smartList": {"filters": [{"field": "email", "operator": "is_not_empty"}]},
            "flow": [{"type": "change_data_value", "field": "rating", "value": "{{my.r}}"}],
        }
    )
    mc = marketo_client(server)
    assert mc.execute(method="schedule_campaign", id=campaign.id, tokens={"my.r": "Warm"})
    assert mc.execute(method="schedule_campaign", id=campaign.id)  # no body at all
    with pytest.raises(Exception, match="'code': '1042'"):
        mc.execute(method="schedule_campaign", id=campaign.id, runAt="2100-01-01T00:00:00+0000")
    engine.dispose()
