"""Progress with totals (B16, B40): an initial read announces how many records it will read,
and the push reports the outbox entries handled against those queued.

Reads and writes go over real HTTP to the emulator; how the total is counted is checked in
``tests/dynamics/test_dynamics_tracking.py``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sync_harness import edit_person, engine_client, running_org

from crmsync.emulator.config import default_config
from crmsync.store.tables import crm_links
from crmsync.sync.cycle import PUSH_ENTITY, Progress, SyncCycle


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
