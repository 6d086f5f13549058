"""A batch campaign's Sync Person to Microsoft goes through in chunks (one transaction per
chunk) and keeps every per-person promise of the one-by-one path: one lead per person, a
result row and an activity with the campaign id each, persons who already have a record
left alone, a refused owner reported per person, and a chunk that fails half way leaving
nothing behind before the persons go through one by one."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, func, select
from sync_harness import Org

from crmsync.dynamics.client import DynamicsClient
from crmsync.marketing.activity_types import SYNC_LEAD_TO_MICROSOFT
from crmsync.marketing.campaigns.runner import CampaignRunner
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.campaigns.steps.base import ChunkContext, StepOutcome
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import activities, campaign_results, crm_links, persons
from crmsync.sync.campaign_push import ImmediatePush, campaign_runner
from crmsync.sync.campaign_steps import all_steps, sync_persons_to_microsoft
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.runner import set_enabled


def _people(engine: Engine, count: int, domain: str = "chunk.example") -> list[int]:
    outcome = PersonService(engine).sync(
        [{"email": f"p{n}@{domain}", "lastName": f"P{n}"} for n in range(count)],
        action="createOnly",
    )
    return [int(o.id) for o in outcome if o.id is not None]


def _campaign(service: CampaignService, step: Mapping[str, object], domain: str) -> int:
    return service.create(
        {
            "name": f"Chunked {domain}",
            "type": "batch",
            "smartList": {"filters": [{"field": "email", "operator": "contains", "value": domain}]},
            "flow": [dict(step)],
        }
    ).id


def _lead_links(engine: Engine, person_ids: list[int]) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(crm_links.c.local_id, func.count())
            .where(crm_links.c.local_kind == "person", crm_links.c.local_id.in_(person_ids))
            .group_by(crm_links.c.local_id)
        ).all()
    return {int(r[0]): int(r[1]) for r in rows}


def _results(engine: Engine, campaign_id: int) -> dict[int, list[tuple[str, str]]]:
    found: dict[int, list[tuple[str, str]]] = {}
    with engine.connect() as conn:
        for person_id, status, message in conn.execute(
            select(
                campaign_results.c.person_id, campaign_results.c.status, campaign_results.c.message
            ).where(campaign_results.c.campaign_id == campaign_id)
        ):
            found.setdefault(int(person_id), []).append((str(status), str(message)))
    return found


def _sync_activities(engine: Engine, campaign_id: int) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(activities.c.person_id, func.count())
            .where(
                activities.c.type_id == SYNC_LEAD_TO_MICROSOFT,
                activities.c.campaign_id == campaign_id,
            )
            .group_by(activities.c.person_id)
        ).all()
    return {int(r[0]): int(r[1]) for r in rows}


def test_chunked_batch_creates_one_lead_each_and_leaves_synced_persons_alone(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    org, client, _ = synced
    set_enabled(migrated_engine, True)
    ids = _people(migrated_engine, 40)
    service = CampaignService(migrated_engine)
    runner = campaign_runner(migrated_engine, push=ImmediatePush(migrated_engine, client))
    first = _campaign(service, {"type": "sync_person_to_microsoft"}, "p1")  # p1, p10..p19
    service.run_batch(first)
    runner.run_pending()
    already = set(_lead_links(migrated_engine, ids))
    assert len(already) == 11
    leads_before = org.app.state.storage.count("lead")

    campaign_id = _campaign(service, {"type": "sync_person_to_microsoft"}, "chunk.example")
    assert service.run_batch(campaign_id) == 40
    assert runner.run_pending() == 40

    assert org.app.state.storage.count("lead") == leads_before + 29
    assert _lead_links(migrated_engine, ids) == dict.fromkeys(ids, 1)
    results = _results(migrated_engine, campaign_id)
    assert set(results) == set(ids)
    for person_id, rows in results.items():
        assert len(rows) == 1
        status, message = rows[0]
        if person_id in already:
            assert status == "skipped" and message.startswith("already has lead ")
        else:
            assert status == "done" and message.startswith("new lead ")
    assert _sync_activities(migrated_engine, campaign_id) == dict.fromkeys(set(ids) - already, 1)
    with migrated_engine.connect() as conn:
        leads = conn.execute(
            select(func.count()).where(persons.c.id.in_(ids), persons.c.crmType == "Lead")
        ).scalar()
    assert leads == 40


def test_chunk_with_an_unknown_owner_fails_each_person_and_queues_nothing(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    org, client, _ = synced
    set_enabled(migrated_engine, True)
    ids = _people(migrated_engine, 12, "owner.example")
    service = CampaignService(migrated_engine)
    owner = "00000000-0000-0000-0000-0000000000ff"
    campaign_id = _campaign(
        service, {"type": "sync_person_to_microsoft", "owner": owner}, "owner.example"
    )
    service.run_batch(campaign_id)
    leads_before = org.app.state.storage.count("lead")

    campaign_runner(migrated_engine, push=ImmediatePush(migrated_engine, client)).run_pending()

    assert org.app.state.storage.count("lead") == leads_before
    assert _lead_links(migrated_engine, ids) == {}
    results = _results(migrated_engine, campaign_id)
    assert {p: [s for s, _ in rows] for p, rows in results.items()} == {
        person_id: ["failed"] for person_id in ids
    }
    assert all(owner in rows[0][1] for rows in results.values())


def test_a_chunk_that_fails_half_way_leaves_nothing_and_persons_go_one_by_one(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    org, client, _ = synced
    set_enabled(migrated_engine, True)
    ids = _people(migrated_engine, 25, "crash.example")
    service = CampaignService(migrated_engine)
    campaign_id = _campaign(service, {"type": "sync_person_to_microsoft"}, "crash.example")
    service.run_batch(campaign_id)
    leads_before = org.app.state.storage.count("lead")
    chunks_tried: list[int] = []

    def dies_after_queueing(ctx: ChunkContext) -> dict[int, StepOutcome]:
        sync_persons_to_microsoft(ctx)  # links, outbox and activities written ...
        chunks_tried.append(len(ctx.person_ids))
        raise RuntimeError("the process died before the chunk committed")

    runner = CampaignRunner(
        migrated_engine,
        push=ImmediatePush(migrated_engine, client),
        steps=all_steps(client),
        chunk_steps={"sync_person_to_microsoft": dies_after_queueing},
    )
    assert runner.run_pending() == 25

    assert chunks_tried == [25]
    assert org.app.state.storage.count("lead") == leads_before + 25
    assert _lead_links(migrated_engine, ids) == dict.fromkeys(ids, 1)
    results = _results(migrated_engine, campaign_id)
    assert {p: [s for s, _ in rows] for p, rows in results.items()} == {
        person_id: ["done"] for person_id in ids
    }
    assert _sync_activities(migrated_engine, campaign_id) == dict.fromkeys(ids, 1)
