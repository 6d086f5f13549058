"""B12 (the regular cycle's half): once a field is selected after go-live, the next cycle
reads the changes since its delta link with the new column (records that changed get their
value at once; the quick sync job fills the rest, see test_sync_quick_sync), never pushes it
blank and never clears a marketing value; change tracking then continues with the new
columns. Real HTTP against the emulator, SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sync_harness import engine_client, person_by_crm_id, running_org, store_selection

from crmsync.emulator.config import default_config
from crmsync.emulator.metadata import AttributeDef
from crmsync.store.tables import persons
from crmsync.sync.cycle import SyncCycle

pytestmark = pytest.mark.e2e


def _custom(engine: Engine, person_id: int) -> dict[str, object]:
    with engine.connect() as conn:
        custom = conn.execute(select(persons.c.custom).where(persons.c.id == person_id)).scalar()
    return dict(custom or {})


def test_a_newly_selected_field_of_changed_records_comes_with_the_next_cycle(
    migrated_engine: Engine,
) -> None:
    with running_org(default_config(), 4) as org:
        storage = org.app.state.storage
        storage.add_attribute(
            "lead", AttributeDef("new_tier", "String", "Tier", max_length=20, is_custom=True)
        )
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        assert cycle.run().status == "ok"  # go-live on the default mapping
        alex = org.alex()
        first, second = alex.first_ids("leads", 2)
        assert alex.patch("leads", first, {"new_tier": "Gold"}).is_success
        assert alex.patch("leads", second, {"jobtitle": "Changed meanwhile"}).is_success

        store_selection(migrated_engine, client, "lead", ["new_tier"])
        report = cycle.run()
        # no full re-read: the changes since the delta link, with the new column
        assert {e.entity: e.mode for e in report.entities}["lead"] == "delta"
        assert {e.entity: e.records for e in report.entities}["lead"] == 2
        assert report.push.sent == 0  # nothing pushed blank
        assert org.row("lead", second)["new_tier"] is None  # type: ignore[index]
        gold = person_by_crm_id(migrated_engine, "lead", first)
        assert _custom(migrated_engine, gold["id"])["newTier"] == "Gold"
        assert person_by_crm_id(migrated_engine, "lead", second)["title"] == "Changed meanwhile"

        # change tracking goes on with the new column
        assert alex.patch("leads", second, {"new_tier": "Silver"}).is_success
        again = cycle.run()
        client.close()
    assert {e.entity: e.mode for e in again.entities}["lead"] == "delta"
    silver = person_by_crm_id(migrated_engine, "lead", second)
    assert _custom(migrated_engine, silver["id"])["newTier"] == "Silver"
