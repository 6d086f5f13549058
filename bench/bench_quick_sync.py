"""Quick sync throughput, and what it costs the regular cycle running beside it (issue 12).

The emulator runs as its own process (``crmsync emulator --seed N``); leads (with sales users,
teams and accounts) are synced once, then ``websiteurl`` is selected onto the marketing field
``website``, which queues a quick sync of that one column for every lead.

* ``quick_sync_records_per_s``: the quick sync alone (``QuickSync.run`` in this process),
  records read and written per second end to end (and per second of this process's CPU);
* ``cycle_alone_ms`` / ``cycle_beside_quick_sync_ms``: the median of cycles that each apply
  100 leads edited by a salesperson, with nothing else running (before and after), then while
  a quick sync of another column runs in its own process (``crmsync fields quick-sync run``),
  and ``cycle_slowdown_ratio`` between the two (the target is at most 1.10), with each cycle's
  own CPU time (``cycle_alone_cpu_ms`` / ``cycle_beside_cpu_ms``). Each cycle runs under the
  sync lease as ``serve`` and ``sync run`` run it, which is how the quick sync knows to pause
  while it runs (``quick_sync_beside_seconds`` is how long that quick sync took). For
  comparison in the same run, ``cycle_slowdown_ratio_not_yielding`` is the slowdown beside a
  quick sync told not to give way (``--nice 0 --cycle-wait 0``). ``serve`` and
  ``sync run`` give a quick sync only the pauses between cycles, so there a cycle is not
  slowed at all; this measures the harder case of a second process.

Quick mode seeds 2,000 leads; the full run 100,000.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bench.support import Setup, crmsync_environment, salesperson, synced_org
from crmsync.store.tables import crm_links
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.lease import SyncLease
from crmsync.sync.quick_sync import QuickSync
from crmsync.sync.quick_sync_jobs import load_jobs
from crmsync.sync.selection import save_selection

TARGET_RECORDS_PER_S = 10_000
TARGET_SLOWDOWN_RATIO = 1.10
ENTITIES = ("systemuser", "team", "account", "lead")
CRMSYNC = str(Path(sys.executable).parent / "crmsync")


_ROUNDS = itertools.count()


def _edit(http: httpx.Client, org: dict[str, Any], ids: list[str]) -> None:
    """Give each lead of ``ids`` a job title it has not had yet (each cycle has real work).
    Edits Dynamics throttles (429) wait as long as it says and are sent again (not timed)."""
    round_ = next(_ROUNDS)
    for crm_id in ids:
        while True:
            response = http.patch(
                f"{org['base_url']}/api/data/v9.2/leads({crm_id})",
                json={"jobtitle": f"Bench title {round_}"},
                headers={"If-Match": "*"},
            )
            if response.status_code != 429:
                break
            time.sleep(min(float(response.headers.get("Retry-After") or 1), 60.0))
        response.raise_for_status()


def _timed_cycles(
    cycle: SyncCycle,
    lease: SyncLease,
    http: httpx.Client,
    org: dict[str, Any],
    ids: list[str],
    rounds: int,
) -> list[tuple[float, float]]:
    """Per cycle, run under the sync lease as the runner does: milliseconds of wall-clock
    time and of this process's CPU time (taking and releasing the lease included)."""
    durations = []
    for _ in range(rounds):
        _edit(http, org, ids)
        started, cpu_started = time.perf_counter(), time.process_time()
        with lease.held():
            cycle.run()
        durations.append(
            (
                (time.perf_counter() - started) * 1000,
                (time.process_time() - cpu_started) * 1000,
            )
        )
    return durations


def run(quick: bool) -> dict[str, object]:
    return measure(leads=2_000 if quick else 100_000)


def measure(leads: int) -> dict[str, object]:
    """Seed ``leads``, sync them, then time a quick sync of one column and cycles beside
    another (see the module docstring)."""
    figures: dict[str, object] = {"seeded_leads": leads}
    with synced_org(leads, entities=ENTITIES) as setup, salesperson(setup.org) as http:
        figures.update(_quick_sync_alone(setup))
        figures.update(_cycles_beside_a_quick_sync(setup, http))
    return figures


def _quick_sync_alone(setup: Setup) -> dict[str, object]:
    """Select ``websiteurl`` onto ``website`` and time its quick sync in this process."""
    engine, client = setup.engine, setup.client
    with engine.begin() as conn:
        save_selection(conn, client, "lead", add=["websiteurl=website"])
    started = time.perf_counter()
    cpu_started = time.process_time()
    QuickSync(engine, client).run()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    with engine.connect() as conn:
        job = load_jobs(conn)[0]
    return {
        "quick_sync_records": job.records_done,
        "quick_sync_filled": job.records_filled,
        "quick_sync_seconds": round(elapsed, 2),
        "quick_sync_records_per_s": round(job.records_done / elapsed),
        # this process's CPU time (the emulator is another process): on a shared machine
        # the wall-clock rate also measures the other work running
        "quick_sync_engine_cpu_seconds": round(cpu, 2),
        "quick_sync_records_per_engine_cpu_s": round(job.records_done / cpu),
        "target_records_per_s": TARGET_RECORDS_PER_S,
    }


def _cycles_beside_a_quick_sync(setup: Setup, http: httpx.Client) -> dict[str, object]:
    """Cycles of 100 edits alone (before and after), then while ``crmsync fields quick-sync
    run`` fills a column in a process of its own: ``emailaddress3`` by a quick sync told not to
    give way (``--nice 0 --cycle-wait 0``, as before it learnt to), then ``telephone3`` by one
    as it runs by default; each slowdown is the ratio of the medians."""
    engine, client, org = setup.engine, setup.client, setup.org
    cycle = SyncCycle(engine, client, entities=ENTITIES)
    lease = SyncLease(engine)
    with engine.connect() as conn:
        ids = [
            str(crm_id)
            for crm_id in conn.execute(
                select(crm_links.c.crm_id)
                .where(crm_links.c.entity == "lead")
                .order_by(crm_links.c.id)
                .limit(100)
            ).scalars()
        ]
    cycle.run()  # settle: the selection changed
    alone = _timed_cycles(cycle, lease, http, org, ids, 3)

    def beside(column: str, *options: str) -> tuple[list[tuple[float, float]], float]:
        with engine.begin() as conn:
            save_selection(conn, client, "lead", add=[column])
        cycle.run()  # the first cycle after a selection change reads the new column
        started = time.perf_counter()
        process = subprocess.Popen(
            [CRMSYNC, "fields", "quick-sync", "run", "--page-size", "1000", *options],
            env=crmsync_environment(setup.url, org),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        samples: list[tuple[float, float]] = []
        while (process.poll() is None or not samples) and len(samples) < 50:
            samples += _timed_cycles(cycle, lease, http, org, ids, 1)
        process.wait(timeout=600)
        return samples, time.perf_counter() - started

    greedy, greedy_seconds = beside("emailaddress3", "--nice", "0", "--cycle-wait", "0")
    yielding, yielding_seconds = beside("telephone3")
    alone += _timed_cycles(cycle, lease, http, org, ids, 3)
    wall_alone = statistics.median(wall for wall, _ in alone)
    wall_greedy = statistics.median(wall for wall, _ in greedy)
    wall_beside = statistics.median(wall for wall, _ in yielding)
    return {
        "cycle_alone_ms": round(wall_alone, 1),
        "cycle_beside_quick_sync_ms": round(wall_beside, 1),
        "cycle_beside_samples": len(yielding),
        "quick_sync_beside_seconds": round(yielding_seconds, 2),
        "cycle_slowdown_ratio": round(wall_beside / wall_alone, 3),
        "cycle_beside_not_yielding_ms": round(wall_greedy, 1),
        "cycle_beside_not_yielding_samples": len(greedy),
        "quick_sync_not_yielding_seconds": round(greedy_seconds, 2),
        "cycle_slowdown_ratio_not_yielding": round(wall_greedy / wall_alone, 3),
        # the cycle's own CPU time: when it barely changes, the slowdown is waiting (for
        # the CPU the other processes use, or for the database's write lock)
        "cycle_alone_cpu_ms": round(statistics.median(cpu for _, cpu in alone), 1),
        "cycle_beside_cpu_ms": round(statistics.median(cpu for _, cpu in yielding), 1),
        "target_slowdown_ratio": TARGET_SLOWDOWN_RATIO,
    }
