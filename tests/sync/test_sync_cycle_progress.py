"""Progress with totals (B16, B40): an initial read announces how many records it will read,
and the push reports the outbox entries handled against those queued.

Reads and writes go over real HTTP to the emulator; the count fallbacks of
:func:`~crmsync.sync.tracking.record_total` above the ``$count`` cap (spec §3 "Count") are
checked against a transport that answers like Dataverse.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine, select
from sync_harness import edit_person, engine_client, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.emulator.config import default_config
from crmsync.store.tables import crm_links
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.reports import PUSH_ENTITY, Progress
from crmsync.sync.tracking import record_total


@pytest.mark.e2e
def test_initial_read_has_a_total_and_the_push_reports_its_progress(
    migrated_engine: Engine,
) -> None:
    """B16: each entity's first event carries the number of records Dynamics has, the last
    one reaches it; B40: marketing edits pushed are reported against the queued count."""
    events: list[Progress] = []
    with running_org(default_config(), 25) as org:
        client = engine_client(org.base, page_size=10)
        try:
            cycle = SyncCycle(
                migrated_engine, client, entities=("account", "lead"), progress=events.append
            )
            cycle.run()
            in_crm = {
                "account": sum(1 for _ in client.iter_records("accounts", [])),
                "lead": sum(1 for _ in client.iter_records("leads", [])),
            }
            for entity, count in in_crm.items():
                mine = [e for e in events if e.entity == entity]
                assert (mine[0].records, mine[0].total) == (0, count)
                assert all(e.total == count for e in mine)
                assert mine[-1].done and mine[-1].records == count
                assert [e.records for e in mine] == sorted(e.records for e in mine)
            assert not [e for e in events if e.mode == "push"]  # nothing was queued

            with migrated_engine.connect() as conn:
                people = conn.execute(
                    select(crm_links.c.local_id).where(crm_links.c.entity == "lead").limit(7)
                ).scalars()
                person_ids = [int(p) for p in people]
            for person_id in person_ids:
                edit_person(migrated_engine, person_id, title=f"Progress {person_id}")
            events.clear()
            report = cycle.run()
        finally:
            client.close()
    assert report.push.updated == len(person_ids)
    pushed = [e for e in events if e.mode == "push"]
    assert pushed and all(e.entity == PUSH_ENTITY for e in pushed)
    assert all(e.total == len(person_ids) for e in pushed)
    assert pushed[-1].done and pushed[-1].records == len(person_ids)


def _client(answers: dict[str, httpx.Response]) -> DynamicsClient:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        for prefix, response in answers.items():
            if path.startswith(f"/api/data/v9.2/{prefix}"):
                return response
        return httpx.Response(404, json={"error": {"code": "0x8006088a", "message": "nope"}})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return DynamicsClient(http, "https://org.example.com", sleep=lambda s: None)


def test_record_total_counts_exactly_below_the_cap() -> None:
    """Spec §3: ``/$count`` is text (a BOM may lead); below 5,000 it is the total."""
    client = _client({"leads/$count": httpx.Response(200, text="\ufeff1234")})
    assert record_total(client, "lead") == 1234


def test_record_total_above_the_cap_asks_retrieve_total_record_count() -> None:
    """Spec §3: at the 5,000 cap the total comes from ``RetrieveTotalRecordCount``."""
    body = {"EntityRecordCountCollection": {"Keys": ["lead"], "Values": [123456]}}
    client = _client(
        {
            "leads/$count": httpx.Response(200, text="5000"),
            "RetrieveTotalRecordCount": httpx.Response(200, json=body),
        }
    )
    assert record_total(client, "lead") == 123456


def test_record_total_is_unknown_when_dynamics_cannot_say() -> None:
    """Above the cap without ``RetrieveTotalRecordCount`` (or with ``$count`` failing) the
    total is unknown, and the sync is not held up by it."""
    capped = _client({"leads/$count": httpx.Response(200, text="5000")})
    assert record_total(capped, "lead") is None
    failing = _client({"leads/$count": httpx.Response(503, text="busy")})
    assert record_total(failing, "lead") is None
