"""A selected column whose type changed in Dynamics is flagged, not converted: it stops
syncing (its marketing values kept), a critical notification says so, everything else keeps
syncing, and saving the selection drops it. Real HTTP against the emulator, SQLite and
PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sync_harness import engine_client, person_by_crm_id, running_org

from crmsync.emulator.config import default_config
from crmsync.emulator.metadata import AttributeDef
from crmsync.store.tables import notifications, persons
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.quick_sync import QuickSync
from crmsync.sync.selection import columns_of, save_selection, stored_selection

pytestmark = pytest.mark.e2e


def _tier(engine: Engine, crm_id: str) -> object:
    person = person_by_crm_id(engine, "lead", crm_id)
    with engine.connect() as conn:
        custom = conn.execute(select(persons.c.custom).where(persons.c.id == person["id"])).scalar()
    return dict(custom or {}).get("newTier")


def test_a_column_whose_type_changed_stops_syncing_and_is_flagged(
    migrated_engine: Engine,
) -> None:
    with running_org(default_config(), 3) as org:
        storage = org.app.state.storage
        storage.add_attribute(
            "lead", AttributeDef("new_tier", "String", "Tier", max_length=20, is_custom=True)
        )
        client = engine_client(org.base)
        assert SyncCycle(migrated_engine, client).run().status == "ok"
        alex = org.alex()
        first, second = alex.first_ids("leads", 2)
        assert alex.patch("leads", first, {"new_tier": "Gold"}).is_success
        with migrated_engine.begin() as conn:
            save_selection(conn, client, "lead", add=["new_tier"])
        QuickSync(migrated_engine, client).run()
        client.close()
        assert _tier(migrated_engine, first) == "Gold"

        # the column is deleted and created again as a whole number in Dynamics
        storage.remove_attribute("lead", "new_tier")
        storage.add_attribute("lead", AttributeDef("new_tier", "Integer", "Tier", is_custom=True))
        assert alex.patch("leads", first, {"new_tier": 5}).is_success
        assert alex.patch("leads", second, {"jobtitle": "Still syncing"}).is_success

        client = engine_client(org.base)  # a new process reads the schema again
        report = SyncCycle(migrated_engine, client).run()
        assert report.status == "ok"
        assert _tier(migrated_engine, first) == "Gold"  # kept, not converted
        assert person_by_crm_id(migrated_engine, "lead", second)["title"] == "Still syncing"
        with migrated_engine.connect() as conn:
            assert stored_selection(conn, "lead")["new_tier"] == "type_changed"
            shown = {c.attribute: c for c in columns_of(conn, client, "lead")}
            [notice] = conn.execute(
                select(notifications.c.severity, notifications.c.message).where(
                    notifications.c.kind == "field_type_changed"
                )
            ).all()
        assert shown["new_tier"].status == "type_changed"
        assert notice.severity == "critical"
        assert "was String when it was selected and is Integer" in notice.message

        with migrated_engine.begin() as conn:
            save_selection(conn, client, "lead")  # saving drops it
        with migrated_engine.connect() as conn:
            assert "new_tier" not in stored_selection(conn, "lead")
        client.close()
