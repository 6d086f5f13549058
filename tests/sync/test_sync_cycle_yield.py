"""B12 beside a cycle: a quick sync pauses while a sync cycle holds the lease and goes on once it
is released; a mark left by a dead cycle does not hold it up, and a cycle that never ends
only slows it (bounded waits). Real HTTP against the emulator, SQLite and PostgreSQL.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert, select
from sync_harness import Org, engine_client, person_by_crm_id, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.emulator.config import default_config
from crmsync.emulator.metadata import AttributeDef
from crmsync.store.tables import now_utc, persons, sync_lease
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.lease import CYCLE_LEASE, SyncLease
from crmsync.sync.quick_sync import QuickSync
from crmsync.sync.quick_sync_jobs import QuickSyncJob, load_jobs
from crmsync.sync.selection import save_selection

pytestmark = pytest.mark.e2e

LEADS = 5


def _tier(engine: Engine, crm_id: str) -> object:
    person = person_by_crm_id(engine, "lead", crm_id)
    with engine.connect() as conn:
        custom = conn.execute(select(persons.c.custom).where(persons.c.id == person["id"])).scalar()
    return dict(custom or {}).get("newTier")


def _job(engine: Engine) -> QuickSyncJob:
    with engine.connect() as conn:
        [job] = load_jobs(conn)
    return job


def _gold_lead_and_queued_job(org: Org, engine: Engine, client: DynamicsClient) -> str:
    """Go live without ``new_tier``, give one lead a tier, then select the column (which
    queues its quick sync); returns that lead's id."""
    org.app.state.storage.add_attribute(
        "lead", AttributeDef("new_tier", "String", "Tier", max_length=20, is_custom=True)
    )
    assert SyncCycle(engine, client).run().status == "ok"
    alex = org.alex()
    [gold] = alex.first_ids("leads", 1)
    assert alex.patch("leads", gold, {"new_tier": "Gold"}).is_success
    with engine.begin() as conn:
        save_selection(conn, client, "lead", add=["new_tier"])
    return gold


def test_a_quick_sync_pauses_while_a_cycle_runs_and_goes_on_after(
    migrated_engine: Engine,
) -> None:
    with running_org(default_config(), LEADS) as org:
        client = engine_client(org.base)
        gold = _gold_lead_and_queued_job(org, migrated_engine, client)
        cycle_lease = SyncLease(migrated_engine)  # a live cycle (this very process)
        assert cycle_lease.try_acquire()
        quick = QuickSync(migrated_engine, client, page_size=2, cycle_wait_seconds=120)
        worker = threading.Thread(target=quick.run, daemon=True)
        worker.start()
        time.sleep(1.5)
        paused = _job(migrated_engine)
        assert worker.is_alive()
        assert paused.records_done == 0  # not one page read or written while the cycle runs
        assert _tier(migrated_engine, gold) is None
        cycle_lease.release()
        worker.join(timeout=60)
        assert not worker.is_alive()  # went on at once, long before its bound
        client.close()
    done = _job(migrated_engine)
    assert done.state == "done" and done.records_done == done.records_total
    assert _tier(migrated_engine, gold) == "Gold"


def _dead_holder_here() -> str:
    """The lease name of a process on this host that has exited."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return f"{socket.gethostname()}:{gone.pid}:deadbeef"


@pytest.mark.parametrize(
    ("holder", "expires_in"),
    [
        pytest.param(_dead_holder_here, timedelta(hours=1), id="process-gone-here"),
        pytest.param(lambda: "elsewhere:4242:abcd1234", -timedelta(seconds=5), id="expired"),
    ],
)
def test_a_dead_cycles_mark_does_not_hold_a_quick_sync_up(
    migrated_engine: Engine, holder: object, expires_in: timedelta
) -> None:
    assert callable(holder)
    with running_org(default_config(), LEADS) as org:
        client = engine_client(org.base)
        gold = _gold_lead_and_queued_job(org, migrated_engine, client)
        now = now_utc()
        with migrated_engine.begin() as conn:  # a cycle that died holding the lease
            conn.execute(
                insert(sync_lease).values(
                    name=CYCLE_LEASE, holder=holder(), acquired_at=now, expires_at=now + expires_in
                )
            )
        started = time.monotonic()
        QuickSync(migrated_engine, client, page_size=2, cycle_wait_seconds=120).run()
        elapsed = time.monotonic() - started
        client.close()
    assert elapsed < 60  # far below a single bounded wait
    done = _job(migrated_engine)
    assert done.state == "done" and done.records_done == done.records_total
    assert _tier(migrated_engine, gold) == "Gold"


def test_a_cycle_that_never_ends_only_slows_a_quick_sync(migrated_engine: Engine) -> None:
    with running_org(default_config(), LEADS) as org:
        client = engine_client(org.base)
        gold = _gold_lead_and_queued_job(org, migrated_engine, client)
        cycle_lease = SyncLease(migrated_engine)
        assert cycle_lease.try_acquire()  # held for the whole quick sync
        quick = QuickSync(migrated_engine, client, page_size=2, cycle_wait_seconds=0.3)
        started = time.monotonic()
        quick.run()
        elapsed = time.monotonic() - started
        cycle_lease.release()
        client.close()
    done = _job(migrated_engine)
    assert done.state == "done" and done.records_done == done.records_total
    assert _tier(migrated_engine, gold) == "Gold"
    # it waited before each of its three page writes (0.3 s each), and then went on
    assert 0.9 <= elapsed < 60
