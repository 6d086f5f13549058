"""B12: a field selected after go-live is filled by a quick sync job of its own, beside the
regular sync: every record's value (nulls included), never overwriting a newer live change,
resumable from its stored position, with progress and one notification when done. Real HTTP
against the emulator, SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sync_harness import Org, engine_client, person_by_crm_id, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.emulator.config import default_config
from crmsync.emulator.metadata import AttributeDef
from crmsync.errors import InvalidValueError
from crmsync.store.tables import field_selection, notifications, persons
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.quick_sync import QuickSync
from crmsync.sync.quick_sync_jobs import load_jobs
from crmsync.sync.selection import save_selection

pytestmark = pytest.mark.e2e


def _tier(engine: Engine, crm_id: str) -> object:
    person = person_by_crm_id(engine, "lead", crm_id)
    with engine.connect() as conn:
        custom = conn.execute(select(persons.c.custom).where(persons.c.id == person["id"])).scalar()
    return dict(custom or {}).get("newTier")


def _status(engine: Engine, attribute: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(field_selection.c.status).where(
                field_selection.c.entity == "lead", field_selection.c.attribute == attribute
            )
        ).scalar()


def _select_tier(engine: Engine, client: DynamicsClient, **kwargs: object) -> None:
    with engine.begin() as conn:
        save_selection(conn, client, "lead", add=["new_tier"], **kwargs)  # type: ignore[arg-type]


def _org_with_tier(org: Org) -> None:
    org.app.state.storage.add_attribute(
        "lead", AttributeDef("new_tier", "String", "Tier", max_length=20, is_custom=True)
    )


def _done_notifications(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [
            str(m)
            for (m,) in conn.execute(
                select(notifications.c.message).where(notifications.c.kind == "quick_sync_done")
            )
        ]


def test_a_quick_sync_fills_every_record_beside_the_regular_sync(
    migrated_engine: Engine,
) -> None:
    with running_org(default_config(), 5) as org:
        _org_with_tier(org)
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        assert cycle.run().status == "ok"  # go-live without the column
        alex = org.alex()
        ids = alex.first_ids("leads", 5)
        for crm_id, tier in zip(ids, ["Gold", "Silver", "Bronze", "Gold"], strict=False):
            assert alex.patch("leads", crm_id, {"new_tier": tier}).is_success
        assert cycle.run().status == "ok"  # those edits are not in the selection yet
        assert _tier(migrated_engine, ids[0]) is None

        _select_tier(migrated_engine, client)
        assert _status(migrated_engine, "new_tier") == "quick_sync"
        [job] = load_jobs(migrated_engine.connect(), active_only=True)
        assert (job.entity, job.attributes, job.state) == ("lead", ("new_tier",), "queued")

        report = cycle.run()  # the regular cycle no longer re-reads the table in full
        assert {e.entity: e.mode for e in report.entities}["lead"] == "delta"
        assert report.push.sent == 0

        quick = QuickSync(migrated_engine, client, page_size=2)
        assert quick.run() >= 3
        client.close()
    assert [_tier(migrated_engine, i) for i in ids] == ["Gold", "Silver", "Bronze", "Gold", None]
    with migrated_engine.connect() as conn:
        [done] = load_jobs(conn)
    assert done.state == "done"
    assert done.records_done == done.records_total  # every lead of the org was read
    assert done.records_filled >= 5
    assert _status(migrated_engine, "new_tier") == "selected"
    [message] = _done_notifications(migrated_engine)
    assert "new_tier" in message


def test_a_live_change_applied_after_the_page_was_read_is_not_overwritten(
    migrated_engine: Engine,
) -> None:
    with running_org(default_config(), 3) as org:
        _org_with_tier(org)
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        assert cycle.run().status == "ok"
        alex = org.alex()
        first, second = alex.first_ids("leads", 2)
        assert alex.patch("leads", first, {"new_tier": "Old"}).is_success
        assert alex.patch("leads", second, {"new_tier": "Kept"}).is_success
        _select_tier(migrated_engine, client)

        quick = QuickSync(migrated_engine, client, page_size=5000)
        job = quick.next_job()
        assert job is not None
        page = quick.read_page(job)  # the backfill has read "Old"...
        assert alex.patch("leads", first, {"new_tier": "Live"}).is_success
        assert cycle.run().status == "ok"  # ...the regular sync applies the live edit...
        assert _tier(migrated_engine, first) == "Live"
        assert quick.write_page(page)  # ...and the backfill's older value does not win
        assert _tier(migrated_engine, first) == "Live"
        assert _tier(migrated_engine, second) == "Kept"

        # the next cycle sees no change: nothing pushed back, the values stay
        again = cycle.run()
        client.close()
        assert org.row("lead", first)["new_tier"] == "Live"  # type: ignore[index]
    assert again.push.sent == 0
    assert _tier(migrated_engine, first) == "Live"


def test_an_edit_made_after_the_read_but_not_yet_synced_arrives_with_the_next_cycle(
    migrated_engine: Engine,
) -> None:
    with running_org(default_config(), 2) as org:
        _org_with_tier(org)
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        assert cycle.run().status == "ok"
        alex = org.alex()
        [first] = alex.first_ids("leads", 1)
        assert alex.patch("leads", first, {"new_tier": "Old"}).is_success
        _select_tier(migrated_engine, client)
        quick = QuickSync(migrated_engine, client)
        job = quick.next_job()
        assert job is not None
        page = quick.read_page(job)
        assert alex.patch("leads", first, {"new_tier": "Newer"}).is_success
        assert quick.write_page(page)  # the regular sync has not run: the backfill writes
        assert _tier(migrated_engine, first) == "Old"
        assert cycle.run().push.sent == 0
        client.close()
    assert _tier(migrated_engine, first) == "Newer"


def test_a_quick_sync_resumes_from_its_stored_position(migrated_engine: Engine) -> None:
    with running_org(default_config(), 6) as org:
        _org_with_tier(org)
        client = engine_client(org.base)
        assert SyncCycle(migrated_engine, client).run().status == "ok"
        _select_tier(migrated_engine, client)
        first_worker = QuickSync(migrated_engine, client, page_size=3)
        first_worker.step()
        with migrated_engine.connect() as conn:
            [half] = load_jobs(conn)
        assert half.state == "running" and half.records_done == 3 and half.position
        # a page read from a stale position (another worker went on) writes nothing
        stale = first_worker.read_page(half)
        first_worker.step()
        assert not first_worker.write_page(stale)
        with migrated_engine.connect() as conn:
            [later] = load_jobs(conn)
        assert later.records_done == 6  # counted once
        # a new worker (after a crash) continues from the position, not from the start
        QuickSync(migrated_engine, client, page_size=3).run()
        client.close()
    with migrated_engine.connect() as conn:
        [done] = load_jobs(conn)
    assert done.state == "done" and done.records_done == done.records_total


def test_a_queued_field_cannot_be_deselected_and_reselecting_pulls_again(
    migrated_engine: Engine,
) -> None:
    with running_org(default_config(), 2) as org:
        _org_with_tier(org)
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        assert cycle.run().status == "ok"
        alex = org.alex()
        [first] = alex.first_ids("leads", 1)
        assert alex.patch("leads", first, {"new_tier": "Gold"}).is_success
        _select_tier(migrated_engine, client)
        refused = "cannot be deselected while its quick sync"
        with pytest.raises(InvalidValueError, match=refused), migrated_engine.begin() as conn:
            save_selection(conn, client, "lead", remove=["new_tier"])
        assert _status(migrated_engine, "new_tier") == "quick_sync"
        QuickSync(migrated_engine, client).run()
        assert _tier(migrated_engine, first) == "Gold"

        with migrated_engine.begin() as conn:
            save_selection(conn, client, "lead", remove=["new_tier"])
        # out of sync while deselected: the marketing value drifts
        with migrated_engine.begin() as conn:
            person = person_by_crm_id(migrated_engine, "lead", first)
            conn.execute(update(persons).where(persons.c.id == person["id"]).values(custom={}))
        _select_tier(migrated_engine, client)
        QuickSync(migrated_engine, client).run()
        client.close()
    assert _tier(migrated_engine, first) == "Gold"
    assert len(_done_notifications(migrated_engine)) == 2


def test_a_date_range_fills_only_records_modified_in_it(migrated_engine: Engine) -> None:
    with running_org(default_config(), 3) as org:
        _org_with_tier(org)
        client = engine_client(org.base)
        assert SyncCycle(migrated_engine, client).run().status == "ok"
        alex = org.alex()
        ids = alex.first_ids("leads", 3)
        for crm_id in ids:
            assert alex.patch("leads", crm_id, {"new_tier": "Gold"}).is_success
        stamps = {i: org.row("lead", i)["modifiedon"] for i in ids}  # type: ignore[index]
        since = datetime.fromisoformat(str(stamps[ids[0]])).astimezone(UTC)
        _select_tier(migrated_engine, client, modified_since=since + timedelta(days=1))
        QuickSync(migrated_engine, client).run()
        assert [_tier(migrated_engine, i) for i in ids] == [None, None, None]
        with migrated_engine.begin() as conn:
            save_selection(conn, client, "lead", remove=["new_tier"])
        _select_tier(
            migrated_engine,
            client,
            modified_since=since - timedelta(hours=1),
            modified_until=since + timedelta(hours=1),
        )
        QuickSync(migrated_engine, client).run()
        client.close()
    assert [_tier(migrated_engine, i) for i in ids] == ["Gold", "Gold", "Gold"]


def test_a_column_deleted_in_dynamics_fails_its_quick_sync_and_says_so(
    migrated_engine: Engine,
) -> None:
    with running_org(default_config(), 2) as org:
        _org_with_tier(org)
        client = engine_client(org.base)
        assert SyncCycle(migrated_engine, client).run().status == "ok"
        _select_tier(migrated_engine, client)
        org.app.state.storage.remove_attribute("lead", "new_tier")
        QuickSync(migrated_engine, client).run()  # no exception: the job fails, alone
        client.close()
    with migrated_engine.connect() as conn:
        [job] = load_jobs(conn)
        [message] = conn.execute(
            select(notifications.c.message).where(notifications.c.kind == "quick_sync_failed")
        ).scalars()
    assert job.state == "failed" and job.error
    assert "Filling new_tier of lead stopped after 0 records" in message
    assert _status(migrated_engine, "new_tier") != "quick_sync"  # it can be deselected again
