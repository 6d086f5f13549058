"""A batch campaign's Sync Person to Microsoft sends its persons' creates together, in as
few $batch requests as the client's batch size allows, not one request per person; each
person gets exactly one lead."""

from __future__ import annotations

import math

from sqlalchemy import Engine, func, select
from sync_harness import Org

from crmsync.dynamics.client import DynamicsClient
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import persons
from crmsync.sync.campaign_push import ImmediatePush, campaign_runner
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.runner import set_enabled


def test_batch_creates_go_in_few_batch_requests(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    org, client, _ = synced
    set_enabled(migrated_engine, True)
    count = 150
    PersonService(migrated_engine).sync(
        [{"email": f"batch{n}@bench.example", "lastName": f"B{n}"} for n in range(count)],
        action="createOnly",
    )
    service = CampaignService(migrated_engine)
    campaign = service.create(
        {
            "name": "Everyone to Dynamics",
            "type": "batch",
            "smartList": {
                "filters": [{"field": "email", "operator": "contains", "value": "@bench.example"}]
            },
            "flow": [{"type": "sync_person_to_microsoft"}],
        }
    )
    leads_before = org.app.state.storage.count("lead")
    assert service.run_batch(campaign.id) == count
    before = client.stats().requests_by_kind.get("batch", 0)

    runner = campaign_runner(migrated_engine, push=ImmediatePush(migrated_engine, client))
    assert runner.run_pending() == count

    sent = client.stats().requests_by_kind.get("batch", 0) - before
    assert sent == math.ceil(count / client.batch_size)
    assert org.app.state.storage.count("lead") == leads_before + count
    with migrated_engine.connect() as conn:
        linked = conn.execute(
            select(func.count()).where(
                persons.c.email.like("%@bench.example"), persons.c.crmType == "Lead"
            )
        ).scalar()
    assert linked == count
    assert {r["status"] for r in service.results(campaign.id, limit=1000)} == {"done"}
