"""A batch campaign's marketing steps go through in chunks (one transaction per chunk) with
the outcomes of the one-by-one path: values on persons, list members, activities with the
campaign id, a result per person per step, requested campaigns queued, deleted persons gone;
and a chunk that fails half way leaves nothing behind before its persons go one by one."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import Engine, func, select

from crmsync.marketing.activity_types import (
    ADD_TO_LIST,
    DELETE_LEAD,
    REMOVE_FROM_LIST,
    REQUEST_CAMPAIGN,
)
from crmsync.marketing.campaigns.runner import CampaignRunner
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.campaigns.steps import CHUNK_MARKETING_STEPS
from crmsync.marketing.campaigns.steps.base import ChunkContext, ChunkStepFunction, StepOutcome
from crmsync.marketing.lists import ListService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import (
    activities,
    campaign_results,
    list_members,
    persons,
    sync_outbox,
)

DOMAIN = "@chunk.example"


def _people(engine: Engine, count: int) -> list[int]:
    outcome = PersonService(engine).sync(
        [{"email": f"p{n}{DOMAIN}", "lastName": f"P{n}"} for n in range(count)],
        action="createOnly",
    )
    return [int(o.id) for o in outcome if o.id is not None]


def _batch(service: CampaignService, name: str, flow: list[dict[str, object]]) -> int:
    return service.create(
        {
            "name": name,
            "type": "batch",
            "smartList": {"filters": [{"field": "email", "operator": "contains", "value": DOMAIN}]},
            "flow": flow,
        }
    ).id


def _counting(
    steps: Mapping[str, ChunkStepFunction], tried: list[str]
) -> dict[str, ChunkStepFunction]:
    def wrap(kind: str, function: ChunkStepFunction) -> ChunkStepFunction:
        def counted(ctx: ChunkContext) -> Mapping[int, StepOutcome]:
            tried.append(kind)
            return function(ctx)

        return counted

    return {kind: wrap(kind, function) for kind, function in steps.items()}


def _members(engine: Engine, list_id: int) -> set[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(list_members.c.person_id).where(list_members.c.list_id == list_id)
        )
        return {int(r[0]) for r in rows}


def _activity_counts(engine: Engine, campaign_id: int) -> dict[tuple[int, int], int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(activities.c.type_id, activities.c.person_id, func.count())
            .where(activities.c.campaign_id == campaign_id)
            .group_by(activities.c.type_id, activities.c.person_id)
        ).all()
    return {(int(r[0]), int(r[1])): int(r[2]) for r in rows}


def _results(engine: Engine, campaign_id: int) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    with engine.connect() as conn:
        for person_id, status in conn.execute(
            select(campaign_results.c.person_id, campaign_results.c.status)
            .where(campaign_results.c.campaign_id == campaign_id)
            .order_by(campaign_results.c.step_index)
        ):
            found.setdefault(int(person_id), []).append(str(status))
    return found


def _values(engine: Engine, person_ids: list[int], column: str) -> dict[int, object]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(persons.c.id, persons.c[column]).where(persons.c.id.in_(person_ids))
        )
        return {int(r[0]): r[1] for r in rows}


def test_marketing_steps_run_chunk_wise_with_every_outcome(migrated_engine: Engine) -> None:
    ids = _people(migrated_engine, 12)
    lists = ListService(migrated_engine)
    joined, left = lists.create("Joined"), lists.create("Left")
    lists.add_members(joined, ids[:3])
    lists.add_members(left, ids[:4])
    service = CampaignService(migrated_engine)
    target = service.create(
        {
            "name": "Requested",
            "active": True,
            "triggers": [{"type": "campaign_requested", "source": "campaign"}],
            "flow": [{"type": "change_data_value", "field": "title", "value": "Requested"}],
        }
    ).id
    campaign_id = _batch(
        service,
        "Tidy up",
        [
            {"type": "change_data_value", "field": "leadStatus", "value": "Chunked"},
            {"type": "add_to_list", "listId": joined},
            {"type": "remove_from_list", "listId": left},
            {"type": "request_campaign", "campaignId": target},
        ],
    )
    service.run_batch(campaign_id)
    tried: list[str] = []
    runner = CampaignRunner(migrated_engine, chunk_steps=_counting(CHUNK_MARKETING_STEPS, tried))

    assert runner.run_pending() == 24  # the batch, then the campaign it requested

    assert tried == ["change_data_value", "add_to_list", "remove_from_list", "request_campaign"]
    assert set(_values(migrated_engine, ids, "leadStatus").values()) == {"Chunked"}
    assert set(_values(migrated_engine, ids, "title").values()) == {"Requested"}
    assert _members(migrated_engine, joined) == set(ids)
    assert _members(migrated_engine, left) == set()
    logged = _activity_counts(migrated_engine, campaign_id)
    assert {p for (t, p) in logged if t == ADD_TO_LIST} == set(ids[3:])
    assert {p for (t, p) in logged if t == REMOVE_FROM_LIST} == set(ids[:4])
    assert {p for (t, p) in logged if t == REQUEST_CAMPAIGN} == set(ids)
    assert set(logged.values()) == {1}
    results = _results(migrated_engine, campaign_id)
    assert results == {
        p: [
            "done",
            "skipped" if p in ids[:3] else "done",
            "done" if p in ids[:4] else "skipped",
            "done",
        ]
        for p in ids
    }
    assert _results(migrated_engine, target) == {p: ["done"] for p in ids}


def test_a_refused_value_fails_per_person_and_delete_is_marketing_only(
    migrated_engine: Engine,
) -> None:
    ids = _people(migrated_engine, 6)
    service = CampaignService(migrated_engine)
    sized = _batch(
        service,
        "Sized",
        [{"type": "change_data_value", "field": "numberOfEmployees", "value": "lots"}],
    )
    service.run_batch(sized)
    assert CampaignRunner(migrated_engine, chunk_steps=CHUNK_MARKETING_STEPS).run_pending() == 6
    assert _results(migrated_engine, sized) == {p: ["failed"] for p in ids}

    gone = _batch(service, "Clean up", [{"type": "delete_person"}])
    service.run_batch(gone)
    assert CampaignRunner(migrated_engine, chunk_steps=CHUNK_MARKETING_STEPS).run_pending() == 6
    assert _values(migrated_engine, ids, "email") == {}
    assert _results(migrated_engine, gone) == {p: ["done"] for p in ids}
    assert _activity_counts(migrated_engine, gone) == {(DELETE_LEAD, p): 1 for p in ids}
    with migrated_engine.connect() as conn:
        deletes = conn.execute(
            select(sync_outbox.c.person_id).where(sync_outbox.c.operation == "delete")
        ).scalars()
        assert sorted(deletes) == sorted(ids)


def _dies_after(function: ChunkStepFunction, tried: list[int]) -> ChunkStepFunction:
    def dies(ctx: ChunkContext) -> Mapping[int, StepOutcome]:
        function(ctx)  # members, activities and trigger events written ...
        tried.append(len(ctx.person_ids))
        raise RuntimeError("the process died before the chunk committed")

    return dies


def test_a_chunk_that_fails_half_way_leaves_nothing_and_persons_go_one_by_one(
    migrated_engine: Engine,
) -> None:
    ids = _people(migrated_engine, 9)
    lists = ListService(migrated_engine)
    joined = lists.create("Joined")
    service = CampaignService(migrated_engine)
    campaign_id = _batch(
        service,
        "Join",
        [
            {"type": "change_data_value", "field": "leadStatus", "value": "Joined"},
            {"type": "add_to_list", "listId": joined},
        ],
    )
    service.run_batch(campaign_id)
    tried: list[int] = []
    chunk_steps: dict[str, Callable[[ChunkContext], Mapping[int, StepOutcome]]] = {
        **CHUNK_MARKETING_STEPS,
        "add_to_list": _dies_after(CHUNK_MARKETING_STEPS["add_to_list"], tried),
    }

    assert CampaignRunner(migrated_engine, chunk_steps=chunk_steps).run_pending() == 9

    assert tried == [9]
    assert _members(migrated_engine, joined) == set(ids)
    assert set(_values(migrated_engine, ids, "leadStatus").values()) == {"Joined"}
    logged = _activity_counts(migrated_engine, campaign_id)
    assert {k: n for k, n in logged.items() if k[0] == ADD_TO_LIST} == {
        (ADD_TO_LIST, p): 1 for p in ids
    }
    assert _results(migrated_engine, campaign_id) == {p: ["done", "done"] for p in ids}
    with migrated_engine.connect() as conn:
        changes = conn.execute(
            select(func.count())
            .select_from(activities)
            .where(activities.c.campaign_id == campaign_id, activities.c.type_id != ADD_TO_LIST)
        ).scalar_one()
    assert changes == 9  # one Change Data Value activity each, not one more from the chunk
