"""Quick sync throughput, and what it costs the regular cycle running beside it (issue 12).

The emulator runs as its own process (``crmsync emulator --seed N``); leads (with sales users,
teams and accounts) are synced once, then ``websiteurl`` is selected onto the marketing field
``website``, which queues a quick sync of that one column for every lead.

* ``quick_sync_records_per_s``: the quick sync alone (``QuickSync.run`` in this process),
  records read and written per second end to end (and per second of this process's CPU);
* ``cycle_alone_ms`` / ``cycle_beside_quick_sync_ms``: the median of cycles that each apply
  100 leads edited by a salesperson, first with nothing else running, then while a quick sync
  of another column runs in its own process (``crmsync fields quick-sync run``), and
  ``cycle_slowdown_ratio`` between the two (the target is at most 1.10). ``serve`` and
  ``sync run`` give a quick sync only the pauses between cycles, so there a cycle is not
  slowed at all; this measures the harder case of a second process.

Quick mode seeds 2,000 leads; the full run 100,000.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from crmsync.dynamics.factory import build_client
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.db import open_database, upgrade_database
from crmsync.store.tables import crm_links
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.quick_sync import QuickSync
from crmsync.sync.quick_sync_jobs import load_jobs
from crmsync.sync.selection import save_selection

TARGET_RECORDS_PER_S = 10_000
TARGET_SLOWDOWN_RATIO = 1.10
ENTITIES = ("systemuser", "team", "account", "lead")
CRMSYNC = str(Path(sys.executable).parent / "crmsync")


def _start_emulator(work: Path, leads: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    command = [CRMSYNC, "emulator", "--port", "0", "--json", "--seed", str(leads)]
    process = subprocess.Popen(
        [*command, "--db", str(work / "org.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("the emulator did not start")
    return process, json.loads(line)


def _salesperson(org: dict[str, Any]) -> httpx.Client:
    token = httpx.post(
        f"{org['base_url']}/adfs/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": org["public_client_id"],
            "username": org["users"][0]["upn"],
            "password": org["users"][0]["password"],
            "resource": f"{org['base_url']}/",
        },
    ).json()["access_token"]
    return httpx.Client(headers={"Authorization": f"Bearer {token}"})


def _edit(http: httpx.Client, org: dict[str, Any], ids: list[str], round_: int) -> None:
    for crm_id in ids:
        http.patch(
            f"{org['base_url']}/api/data/v9.2/leads({crm_id})",
            json={"jobtitle": f"Bench title {round_}"},
            headers={"If-Match": "*"},
        ).raise_for_status()


def _timed_cycles(
    cycle: SyncCycle, http: httpx.Client, org: dict[str, Any], ids: list[str], rounds: int
) -> list[float]:
    durations = []
    for n in range(rounds):
        _edit(http, org, ids, n)
        started = time.perf_counter()
        cycle.run()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def run(quick: bool) -> dict[str, object]:
    return measure(leads=2_000 if quick else 100_000)


def measure(leads: int) -> dict[str, object]:
    """Seed ``leads``, sync them, then time a quick sync of one column and cycles beside
    another (see the module docstring)."""
    figures: dict[str, object] = {"seeded_leads": leads}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'bench.db'}"
        upgrade_database(url)
        engine = open_database(url)
        process, org = _start_emulator(work, leads)
        settings = DynamicsSettings(
            url=org["base_url"],
            authority=org["base_url"],
            auth_mode="adfs",
            client_id=org["client_id"],
            client_secret=Secret(org["client_secret"]),
        )
        try:
            with build_client(settings) as client, _salesperson(org) as http:
                cycle = SyncCycle(engine, client, entities=ENTITIES)
                cycle.run()  # the initial sync
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

                with engine.begin() as conn:
                    save_selection(conn, client, "lead", add=["websiteurl=website"])
                started = time.perf_counter()
                cpu_started = time.process_time()
                QuickSync(engine, client).run()
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
                with engine.connect() as conn:
                    job = load_jobs(conn)[0]
                figures.update(
                    quick_sync_records=job.records_done,
                    quick_sync_filled=job.records_filled,
                    quick_sync_seconds=round(elapsed, 2),
                    quick_sync_records_per_s=round(job.records_done / elapsed),
                    # this process's CPU time (the emulator is another process): on a shared
                    # machine the wall-clock rate also measures the other work running
                    quick_sync_engine_cpu_seconds=round(cpu, 2),
                    quick_sync_records_per_engine_cpu_s=round(job.records_done / cpu),
                    target_records_per_s=TARGET_RECORDS_PER_S,
                )

                cycle.run()  # settle: the selection changed
                alone = _timed_cycles(cycle, http, org, ids, 3)
                with engine.begin() as conn:
                    save_selection(conn, client, "lead", add=["telephone3"])
                cycle.run()  # the first cycle after a selection change reads the new column
                env = {
                    **os.environ,
                    "NO_COLOR": "1",
                    "CRMSYNC_CONFIG": "",
                    "CRMSYNC_DATABASE_URL": url,
                    "CRMSYNC_DYNAMICS_URL": org["base_url"],
                    "CRMSYNC_DYNAMICS_AUTHORITY": org["base_url"],
                    "CRMSYNC_DYNAMICS_AUTH_MODE": "adfs",
                    "CRMSYNC_DYNAMICS_CLIENT_ID": org["client_id"],
                    "CRMSYNC_DYNAMICS_CLIENT_SECRET": org["client_secret"],
                }
                beside_process = subprocess.Popen(
                    [CRMSYNC, "fields", "quick-sync", "run", "--page-size", "1000"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                beside: list[float] = []
                n = 3
                while beside_process.poll() is None or not beside:
                    beside += _timed_cycles(cycle, http, org, ids[:100], 1)
                    n += 1
                    if n > 50:
                        break
                beside_process.wait(timeout=600)
                figures.update(
                    cycle_alone_ms=round(statistics.median(alone), 1),
                    cycle_beside_quick_sync_ms=round(statistics.median(beside), 1),
                    cycle_beside_samples=len(beside),
                    cycle_slowdown_ratio=round(
                        statistics.median(beside) / statistics.median(alone), 3
                    ),
                    target_slowdown_ratio=TARGET_SLOWDOWN_RATIO,
                )
        finally:
            process.terminate()
            process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()
            engine.dispose()
    return figures
