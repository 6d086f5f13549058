"""Sync engine throughput against the emulator over HTTP, into SQLite (issue 5 "Performance").

The emulator runs as its own process (``crmsync emulator --seed N``: N leads, N contacts, N/5
accounts, N/10 opportunities, salespeople and teams); the engine runs here with one
:class:`~crmsync.sync.cycle.SyncCycle`, as ``crmsync sync run`` keeps one.

* ``initial_*``: the initial sync of every entity — records per second end to end (and per
  second of this process's CPU time, which other work on the machine does not inflate as
  much) and the change-tracking read requests against ``ceil(records / 5000)`` per entity
  (B16, B17);
* ``no_change_cycle_*``: a cycle with nothing changed — milliseconds and requests (one per
  entity expected, B17);
* ``changed_100_each_side_ms``: 100 leads edited by a salesperson and 100 persons edited on
  the marketing side, then one cycle;
* ``push_*``: marketing-side updates pushed to Dynamics per second (B18, B25);
* ``peak_rss_mb``: this process's peak resident memory over the run, sampled (streams pages,
  B16).

Quick mode seeds 2,000 leads; the full run 100,000 (220,000 leads, contacts and accounts).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bench.memory import PeakRss
from crmsync.dynamics.factory import build_client
from crmsync.marketing.persons import PersonService
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.db import open_database, upgrade_database
from crmsync.store.tables import crm_links
from crmsync.sync.cycle import SyncCycle

TARGET_INITIAL_RECORDS_PER_S = 5_000
TARGET_NO_CHANGE_MS = 200
TARGET_CHANGED_MS = 1_000
TARGET_PUSH_RECORDS_PER_S = 2_000
TARGET_PEAK_MB = 500
READ_KINDS = ("track", "delta")


def _start_emulator(work: Path, leads: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    crmsync = str(Path(sys.executable).parent / "crmsync")
    command = [crmsync, "emulator", "--port", "0", "--json", "--seed", str(leads)]
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


def _reads(stats: Any) -> int:
    return sum(stats.requests_by_kind.get(kind, 0) for kind in READ_KINDS)


def _salesperson_edits(org: dict[str, Any], ids: list[str]) -> None:
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
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http:
        for n, crm_id in enumerate(ids):
            http.patch(
                f"{org['base_url']}/api/data/v9.2/leads({crm_id})",
                json={"jobtitle": f"Bench title {n}"},
                headers={"If-Match": "*"},
            ).raise_for_status()


def run(quick: bool) -> dict[str, object]:
    return measure(leads=2_000 if quick else 100_000, pushes=500 if quick else 10_000)


def measure(leads: int, pushes: int) -> dict[str, object]:
    """Seed ``leads`` (see the module docstring), sync them, then time a quiet cycle, a cycle
    with 100 changes on each side and, unless ``pushes`` is 0, a push of that many updates."""
    figures: dict[str, object] = {"seeded_leads": leads}
    with tempfile.TemporaryDirectory() as tmp, PeakRss() as peak:
        work = Path(tmp)
        url = f"sqlite:///{work / 'bench.db'}"
        upgrade_database(url)
        engine = open_database(url)
        process, org = _start_emulator(work, leads)
        try:
            settings = DynamicsSettings(
                url=org["base_url"],
                authority=org["base_url"],
                auth_mode="adfs",
                client_id=org["client_id"],
                client_secret=Secret(org["client_secret"]),
            )
            with build_client(settings) as client:
                cycle = SyncCycle(engine, client)
                cycle.mappings()  # schemas are read once per process, before timing
                before = client.stats()
                started = time.perf_counter()
                cpu_started = time.process_time()
                report = cycle.run()
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
                after = client.stats()
                records = sum(e.records for e in report.entities)
                per_entity = {e.entity: e.records for e in report.entities}
                expected = sum(max(1, math.ceil(n / 5000)) for n in per_entity.values())
                figures.update(
                    initial_records=records,
                    initial_records_by_entity=per_entity,
                    initial_seconds=round(elapsed, 2),
                    initial_records_per_s=round(records / elapsed),
                    # This process's CPU time (the emulator is another process): on a shared
                    # machine the wall-clock rate also measures the other work running.
                    initial_engine_cpu_seconds=round(cpu, 2),
                    initial_records_per_engine_cpu_s=round(records / cpu),
                    initial_read_requests=_reads(after) - _reads(before),
                    initial_read_requests_expected=expected,
                    target_initial_records_per_s=TARGET_INITIAL_RECORDS_PER_S,
                )

                started = time.perf_counter()
                quiet = cycle.run()
                figures.update(
                    no_change_cycle_ms=round((time.perf_counter() - started) * 1000, 1),
                    no_change_cycle_requests=quiet.api_calls,
                    no_change_persons=per_entity.get("lead", 0) + per_entity.get("contact", 0),
                    target_no_change_ms=TARGET_NO_CHANGE_MS,
                )

                with engine.connect() as conn:
                    linked = conn.execute(
                        select(crm_links.c.crm_id, crm_links.c.local_id)
                        .where(crm_links.c.entity == "lead")
                        .order_by(crm_links.c.id)
                        .limit(max(200, pushes + 100))
                    ).all()
                _salesperson_edits(org, [crm_id for crm_id, _ in linked[:100]])
                service = PersonService(engine)
                service.sync(
                    [
                        {"id": local, "city": f"Bench {n}"}
                        for n, (_, local) in enumerate(linked[100:200])
                    ],
                    lookup_field="id",
                )
                started = time.perf_counter()
                changed = cycle.run()
                figures.update(
                    changed_100_each_side_ms=round((time.perf_counter() - started) * 1000, 1),
                    changed_100_each_side_requests=changed.api_calls,
                    target_changed_ms=TARGET_CHANGED_MS,
                )

                if not pushes:
                    return _with_peak(figures, peak)
                people = [local for _, local in linked[:pushes]]
                for start in range(0, len(people), 300):
                    service.sync(
                        [
                            {"id": pid, "title": f"Pushed {pid}"}
                            for pid in people[start : start + 300]
                        ],
                        lookup_field="id",
                    )
                started = time.perf_counter()
                pushed = cycle.run()
                elapsed = time.perf_counter() - started
                figures.update(
                    push_records=pushed.push.updated,
                    push_failed=pushed.push.failed,
                    push_seconds=round(elapsed, 2),
                    push_records_per_s=round(pushed.push.updated / elapsed),
                    push_batch_requests=pushed.api_calls,
                    target_push_records_per_s=TARGET_PUSH_RECORDS_PER_S,
                )
        finally:
            process.terminate()
            process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()
            engine.dispose()
    return _with_peak(figures, peak)


def _with_peak(figures: dict[str, object], peak: PeakRss) -> dict[str, object]:
    figures["peak_rss_mb"] = round(peak.mb)
    figures["target_peak_mb"] = TARGET_PEAK_MB
    return figures
