"""Storing a push's answers: an accepted update sets only the sent fields in the stored
baseline and keeps the others as both sides agreed them. Real HTTP against the emulator,
SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sync_harness import edit_person, person_by_crm_id

from crmsync.dynamics.client import DynamicsClient
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.links import load_baselines

pytestmark = pytest.mark.e2e


def _baseline(engine: Engine, crm_id: str) -> dict[str, object]:
    with engine.connect() as conn:
        return load_baselines(conn, "lead", [crm_id])[crm_id]


def test_an_accepted_update_patches_only_the_sent_fields_of_the_baseline(
    migrated_engine: Engine, synced: tuple[object, DynamicsClient, SyncCycle]
) -> None:
    org, _, cycle = synced
    alex = org.alex()  # type: ignore[attr-defined]
    lead_a, lead_b = alex.first_ids("leads", 2)
    before_a, before_b = _baseline(migrated_engine, lead_a), _baseline(migrated_engine, lead_b)
    edit_person(
        migrated_engine,
        person_by_crm_id(migrated_engine, "lead", lead_a)["id"],
        city="Patched City",
    )

    assert cycle.run().status == "ok"

    assert alex.get("leads", lead_a, "address1_city")["address1_city"] == "Patched City"
    after_a = _baseline(migrated_engine, lead_a)
    assert after_a["city"] == "Patched City"
    assert before_a["city"] != "Patched City"
    assert {k: v for k, v in after_a.items() if k != "city"} == {
        k: v for k, v in before_a.items() if k != "city"
    }
    assert _baseline(migrated_engine, lead_b) == before_b

    # the next cycle finds nothing to send and nothing to merge: both sides agree
    assert cycle.run().status == "ok"
    assert _baseline(migrated_engine, lead_a) == after_a
