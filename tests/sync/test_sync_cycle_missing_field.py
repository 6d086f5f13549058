"""B14: a synced field deleted in Dynamics while the sync runs does not stop it. The cycle
notices, stops reading and writing that field, keeps its marketing values, raises a critical
notification and carries on with everything else. Real HTTP against the emulator, SQLite and
PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sync_harness import (
    Org,
    edit_person,
    engine_client,
    open_errors,
    outbox_count,
    person_by_crm_id,
    running_org,
    select_lead_sync_filter,
)

from crmsync.dynamics.client import DynamicsClient
from crmsync.emulator.config import default_config
from crmsync.store.tables import field_selection, notifications
from crmsync.sync.cycle import SyncCycle

pytestmark = pytest.mark.e2e


def _critical(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(notifications.c.title, notifications.c.message).where(
                notifications.c.severity == "critical"
            )
        ).all()
    return [(str(title), str(message)) for title, message in rows]


def test_a_deleted_field_stops_alone_and_the_rest_syncs_both_ways(
    migrated_engine: Engine, synced: tuple[Org, DynamicsClient, SyncCycle]
) -> None:
    org, _, cycle = synced
    alex = org.alex()
    first, second, third = alex.first_ids("leads", 3)
    kept = person_by_crm_id(migrated_engine, "lead", first)["title"]
    org.app.state.storage.remove_attribute("lead", "jobtitle")
    assert alex.patch("leads", first, {"address1_city": "Changed in Dynamics"}).is_success
    edit_person(
        migrated_engine,
        person_by_crm_id(migrated_engine, "lead", second)["id"],
        title="Local title",
    )
    edit_person(
        migrated_engine,
        person_by_crm_id(migrated_engine, "lead", third)["id"],
        city="Changed in marketing",
    )

    report = cycle.run()

    assert report.status == "ok", report.as_dict()
    after = person_by_crm_id(migrated_engine, "lead", first)
    assert after["city"] == "Changed in Dynamics" and after["title"] == kept
    assert person_by_crm_id(migrated_engine, "lead", second)["title"] == "Local title"
    assert alex.get("leads", third, "address1_city")["address1_city"] == "Changed in marketing"
    assert outbox_count(migrated_engine) == 0 and open_errors(migrated_engine) == []
    (notice,) = _critical(migrated_engine)
    assert "lead.jobtitle" in notice[0] and "marketing field title" in notice[1]

    # the next cycles are ordinary change-tracking reads without the field
    assert alex.patch("leads", second, {"address1_city": "Later"}).is_success
    again = cycle.run()
    assert again.status == "ok"
    assert {e.entity: e.mode for e in again.entities}["lead"] == "delta"
    assert person_by_crm_id(migrated_engine, "lead", second)["city"] == "Later"
    assert len(_critical(migrated_engine)) == 1


def test_a_deleted_selected_field_is_marked_missing_in_the_selection(
    migrated_engine: Engine,
) -> None:
    """B14 with an admin's field selection: the deleted column's selection is marked missing
    (no longer read), the other selected columns keep syncing, the initial sync included."""
    with running_org(default_config(), 4) as org:
        client = select_lead_sync_filter(migrated_engine, org)
        cycle = SyncCycle(migrated_engine, client)
        org.app.state.storage.remove_attribute("lead", "jobtitle")
        report = cycle.run()
        client.close()
        lead = org.alex().first_ids("leads", 1)[0]
        city = org.alex().get("leads", lead, "address1_city")["address1_city"]

    assert report.status == "ok"
    assert {e.entity: e.mode for e in report.entities}["lead"] == "initial"
    assert person_by_crm_id(migrated_engine, "lead", lead)["city"] == city
    with migrated_engine.connect() as conn:
        statuses = dict(
            conn.execute(
                select(field_selection.c.attribute, field_selection.c.status).where(
                    field_selection.c.entity == "lead"
                )
            ).all()
        )
    assert statuses["jobtitle"] == "missing"
    assert {s for a, s in statuses.items() if a != "jobtitle"} == {"selected"}
    (notice,) = _critical(migrated_engine)
    assert "lead.jobtitle" in notice[0] and "marketing field title" in notice[1]


def test_a_selected_field_already_gone_when_the_sync_starts_is_announced(
    migrated_engine: Engine,
) -> None:
    """B14 after a restart: the schema read at start lacks a selected column; it is marked
    missing and announced before any read, and the sync runs without it."""
    with running_org(default_config(), 4) as org:
        select_lead_sync_filter(migrated_engine, org).close()
        org.app.state.storage.remove_attribute("lead", "jobtitle")
        client = engine_client(org.base)  # a new process: nothing cached
        report = SyncCycle(migrated_engine, client).run()
        client.close()
    assert report.status == "ok"
    with migrated_engine.connect() as conn:
        status = conn.execute(
            select(field_selection.c.status).where(field_selection.c.attribute == "jobtitle")
        ).scalar_one()
    assert status == "missing"
    (notice,) = _critical(migrated_engine)
    assert "lead.jobtitle" in notice[0]
