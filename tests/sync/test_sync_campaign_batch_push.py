"""A batch campaign's Sync Person to Microsoft sends its persons' creates together, in as
few $batch requests as the client's batch size allows, not one request per person; each
person gets exactly one lead."""

from __future__ import annotations

import math

from sqlalchemy import Engine, func, select
from sync_harness import Org

from crmsync.dynamics.client import DynamicsClient
from crmsync.errors import InvalidValueError
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import persons, sync_outbox
from crmsync.sync.campaign_push import ImmediatePush, campaign_runner
from crmsync.sync.crm_create import request_crm_creates
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


def test_an_immediate_push_sends_only_the_persons_it_is_given(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    """The campaign's push sends its own persons' creates; another person's queued create
    stays in the outbox for the cycle, so a group of persons costs exactly its requests."""
    org, client, _ = synced
    set_enabled(migrated_engine, True)
    people = PersonService(migrated_engine)
    people.sync(
        [{"email": "mine@push.example", "lastName": "Mine"}, {"email": "other@push.example"}],
        action="createOnly",
    )
    with migrated_engine.begin() as conn:
        ids = dict(
            conn.execute(
                select(persons.c.email, persons.c.id).where(persons.c.email.like("%@push.example"))
            ).all()
        )
        asked = request_crm_creates(conn, list(ids.values()), "lead")
    leads_before = org.app.state.storage.count("lead")

    ImmediatePush(migrated_engine, client)([ids["mine@push.example"]])

    assert org.app.state.storage.count("lead") == leads_before + 1
    created = asked[ids["mine@push.example"]]
    assert not isinstance(created, InvalidValueError)
    assert org.app.state.storage.get("lead", created.crm_id) is not None
    with migrated_engine.connect() as conn:
        waiting = conn.execute(select(sync_outbox.c.person_id)).scalars().all()
    assert set(waiting) == {ids["other@push.example"]}
