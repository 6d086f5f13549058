"""The sync engine beside its physical limits, measured in one run over one emulator.

Used by :mod:`bench.bench_sync` and :mod:`bench.bench_sync_million`. Every figure is taken
beside the limit it is held against, in the same run, so a loaded machine slows both alike:

* **raw paging**: the same client reads every record of every synced entity with the same
  columns and page size, doing nothing with them; the initial sync's rate divided by that
  rate is ``initial_vs_raw_paging``;
* **raw $batch**: the same client sends as many conditional updates as the push did, built
  beforehand, in ``$batch`` requests of the same size and concurrency; the push's rate
  divided by that rate is ``push_vs_raw_batch``;
* **requests ÷ minimum** for the initial sync (one read per 5,000 records per entity), a
  cycle with no changes (one read per entity), 100 changes on each side (one read per entity
  and one ``$batch``), the push (one read per entity and one ``$batch`` per 1,000 updates,
  Dynamics' limit) and a one-off ``sync once`` (a new client: one schema read and one change
  read per entity);
* the engine's CPU seconds (this process) and the emulator's (its process) separately, per
  1,000 records;
* per page of the initial sync, the time it was committed (for the throughput plot), and per
  ``$batch`` call of the push its latency (for the latency plot).

The store is SQLite, or PostgreSQL when ``CRMSYNC_BENCH_POSTGRES_URL`` (else
``CRMSYNC_TEST_POSTGRES_URL``) names a server: a new database is created per sample and
dropped afterwards.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import create_engine, make_url, select, text

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.dynamics.types import WriteRequest, WriteResult
from crmsync.marketing.persons import PersonService
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.db import open_database, upgrade_database
from crmsync.store.tables import crm_links
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.reports import Progress

READ_KINDS = ("track", "delta")
MAX_BATCH_OPERATIONS = 1000
"""Dynamics' limit of operations per ``$batch``: the minimum number of push requests."""
CHANGES_EACH_SIDE = 100


def postgres_url() -> str | None:
    """The PostgreSQL server the bench may create databases on, if one is named."""
    return os.environ.get("CRMSYNC_BENCH_POSTGRES_URL") or os.environ.get(
        "CRMSYNC_TEST_POSTGRES_URL"
    )


def samples_wanted(default: int = 3) -> int:
    """How many samples each figure takes (``BENCH_SAMPLES``, else ``default``)."""
    return max(1, int(os.environ.get("BENCH_SAMPLES", default)))


def spread(values: Sequence[float]) -> dict[str, float]:
    """Minimum, median and maximum of ``values``, rounded for the report."""
    return {
        "min": round(min(values), 4),
        "median": round(statistics.median(values), 4),
        "max": round(max(values), 4),
    }


@dataclass
class Emulator:
    """A running ``crmsync emulator`` process and the org it describes."""

    process: subprocess.Popen[str]
    org: dict[str, Any]

    def cpu_seconds(self) -> float:
        """CPU time the emulator (and any child) has used so far."""
        proc = psutil.Process(self.process.pid)
        total = 0.0
        for one in [proc, *proc.children(recursive=True)]:
            times = one.cpu_times()
            total += times.user + times.system
        return total

    def settings(self) -> DynamicsSettings:
        """Settings for a client of this org."""
        return DynamicsSettings(
            url=self.org["base_url"],
            authority=self.org["base_url"],
            auth_mode="adfs",
            client_id=self.org["client_id"],
            client_secret=Secret(self.org["client_secret"]),
        )


@contextmanager
def emulator(work: Path, leads: int) -> Iterator[Emulator]:
    """Seed and serve an org of ``leads`` leads (and the rest) in its own process."""
    crmsync = str(Path(sys.executable).parent / "crmsync")
    log = work / "emulator.log"
    process = subprocess.Popen(
        [
            crmsync,
            "emulator",
            "--port",
            "0",
            "--json",
            "--seed",
            str(leads),
            "--db",
            str(work / "org.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the emulator did not start: {_tail(log)}")
    try:
        yield Emulator(process, json.loads(line))
        if process.poll() is not None:
            raise RuntimeError(f"the emulator stopped: {_tail(log)}")
    except Exception as exc:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator stopped: {_tail(log)}") from exc
        raise
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


@contextmanager
def store(kind: str, work: Path, sample: int) -> Iterator[str]:
    """A new, migrated database of ``kind`` (``sqlite`` or ``postgresql``); its URL."""
    if kind == "sqlite":
        url = f"sqlite:///{work / f'bench-{sample}.db'}"
        upgrade_database(url)
        yield url
        return
    server = postgres_url()
    if server is None:
        raise RuntimeError("no PostgreSQL server named")
    name = f"crmsync_bench_{os.getpid()}_{sample}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_database(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-2000:]


def _reads(client: DynamicsClient) -> int:
    kinds = client.stats().requests_by_kind
    return sum(kinds.get(kind, 0) for kind in READ_KINDS)


class _Clock:
    """Wall time, engine CPU and emulator CPU over one stretch."""

    def __init__(self, org: Emulator) -> None:
        self._org = org
        self.wall = self.cpu = self.emulator_cpu = 0.0

    def __enter__(self) -> _Clock:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._emu = self._org.cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        self.emulator_cpu = self._org.cpu_seconds() - self._emu


def raw_paging(client: DynamicsClient, cycle: SyncCycle, org: Emulator) -> dict[str, float]:
    """Every record of every synced entity read by ``client`` with the sync's columns,
    nothing done with them: records, requests, seconds and CPU."""
    records = 0
    before = _reads(client)
    with _Clock(org) as clock:
        for entity, mapping in cycle.mappings().items():
            first = client.tracking.first_page_link(entity, mapping.attributes)
            for page in client.tracking.initial_pages(entity, first, resumed=False):
                records += len(page.items)
    return {
        "records": records,
        "requests": _reads(client) - before,
        "seconds": clock.wall,
        "records_per_s": records / clock.wall,
        "engine_cpu_s": clock.cpu,
        "emulator_cpu_s": clock.emulator_cpu,
    }


def raw_batch(
    client: DynamicsClient, crm_ids: Sequence[str], org: Emulator, tag: str
) -> dict[str, float]:
    """One conditional-free update per lead in ``crm_ids``, built beforehand and sent in
    calls of the push's size (``batch_size`` × concurrency): the ``$batch`` rate alone."""
    requests = [
        WriteRequest.update("lead", crm_id, {"jobtitle": f"Raw {tag} {n}"})
        for n, crm_id in enumerate(crm_ids)
    ]
    chunk = client.batch_size * client.budget.limit
    failed = 0
    with _Clock(org) as clock:
        for start in range(0, len(requests), chunk):
            results = client.write_batch(requests[start : start + chunk])
            failed += sum(1 for r in results if r.status.value != "ok")
    return {
        "records": len(requests),
        "failed": failed,
        "seconds": clock.wall,
        "records_per_s": len(requests) / clock.wall,
        "engine_cpu_s": clock.cpu,
        "emulator_cpu_s": clock.emulator_cpu,
    }


def _timed_batches(client: DynamicsClient, latencies: list[float]) -> None:
    """Record every ``write_batch`` call's seconds (the push latency plot)."""
    send: Callable[[Sequence[WriteRequest]], list[WriteResult]] = client.write_batch

    def timed(requests: Sequence[WriteRequest]) -> list[WriteResult]:
        started = time.perf_counter()
        try:
            return send(requests)
        finally:
            latencies.append(time.perf_counter() - started)

    client.write_batch = timed  # type: ignore[method-assign]


def _salesperson_edits(org: dict[str, Any], ids: list[str], tag: str) -> None:
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
                json={"jobtitle": f"Bench title {tag} {n}"},
                headers={"If-Match": "*"},
            ).raise_for_status()


def _ratio(requests: int, minimum: int) -> dict[str, float]:
    return {"requests": requests, "minimum": minimum, "ratio": round(requests / minimum, 3)}


def sample(
    org: Emulator, url: str, *, pushes: int, scenarios: bool, raw: bool = True
) -> dict[str, Any]:
    """One sample on the store at ``url``: raw paging, the initial sync, and unless
    ``scenarios`` is false the quiet cycle, 100 changes each side, the push and raw
    ``$batch``, and a one-off ``sync once``. Every value written is new to both sides (an
    earlier sample over the same org wrote its own), so every sample does the same work."""
    out: dict[str, Any] = {}
    tag = uuid.uuid4().hex[:6]
    engine = open_database(url)
    try:
        with build_client(org.settings()) as client:
            pages: list[tuple[float, str, int]] = []
            cycle = SyncCycle(engine, client, progress=_page_times(pages))
            mappings = cycle.mappings()  # schemas read once per process, before timing
            entities = len(mappings)
            if raw:
                out["raw_paging"] = raw_paging(client, cycle, org)
            reads_before = _reads(client)
            started = time.perf_counter()
            with _Clock(org) as clock:
                report = cycle.run()
            records = sum(e.records for e in report.entities)
            per_entity = {e.entity: e.records for e in report.entities}
            minimum = sum(max(1, math.ceil(n / client.page_size)) for n in per_entity.values())
            out["initial"] = {
                "records": records,
                "by_entity": per_entity,
                "seconds": clock.wall,
                "records_per_s": records / clock.wall,
                "engine_cpu_s": clock.cpu,
                "emulator_cpu_s": clock.emulator_cpu,
                "engine_cpu_s_per_1000": clock.cpu / records * 1000,
                "all_requests": report.api_calls,
                **_ratio(_reads(client) - reads_before, minimum),
                "pages": [(round(t - started, 4), e, n) for t, e, n in pages],
            }
            if raw:
                out["initial_vs_raw_paging"] = (
                    out["initial"]["records_per_s"] / out["raw_paging"]["records_per_s"]
                )
            if not scenarios:
                return out
            quiet_started = time.perf_counter()
            quiet = cycle.run()
            out["no_change"] = {
                "ms": (time.perf_counter() - quiet_started) * 1000,
                **_ratio(quiet.api_calls, entities),
            }
            with engine.connect() as conn:
                linked = conn.execute(
                    select(crm_links.c.crm_id, crm_links.c.local_id)
                    .where(crm_links.c.entity == "lead")
                    .order_by(crm_links.c.id)
                    .limit(2 * CHANGES_EACH_SIDE + 2 * pushes)
                ).all()
            _salesperson_edits(org.org, [crm_id for crm_id, _ in linked[:CHANGES_EACH_SIDE]], tag)
            service = PersonService(engine)
            service.sync(
                [
                    {"id": local, "city": f"Bench {tag} {n}"}
                    for n, (_, local) in enumerate(
                        linked[CHANGES_EACH_SIDE : 2 * CHANGES_EACH_SIDE]
                    )
                ],
                lookup_field="id",
            )
            changed_started = time.perf_counter()
            changed = cycle.run()
            out["changed_100_each_side"] = {
                "ms": (time.perf_counter() - changed_started) * 1000,
                **_ratio(changed.api_calls, entities + 1),
            }
            pushed_ids = [local for _, local in linked[:pushes]]
            for start in range(0, len(pushed_ids), 300):
                service.sync(
                    [
                        {"id": pid, "title": f"Pushed {tag} {pid}"}
                        for pid in pushed_ids[start : start + 300]
                    ],
                    lookup_field="id",
                )
            latencies: list[float] = []
            _timed_batches(client, latencies)
            with _Clock(org) as clock:
                pushed = cycle.run()
            out["push"] = {
                "records": pushed.push.updated,
                "failed": pushed.push.failed,
                "seconds": clock.wall,
                "records_per_s": pushed.push.updated / clock.wall,
                "engine_cpu_s": clock.cpu,
                "emulator_cpu_s": clock.emulator_cpu,
                "batch_call_seconds": [round(s, 4) for s in latencies],
                **_ratio(pushed.api_calls, entities + math.ceil(pushes / MAX_BATCH_OPERATIONS)),
            }
            raw_ids = [crm_id for crm_id, _ in linked[pushes : 2 * pushes]]
            out["raw_batch"] = raw_batch(client, raw_ids, org, tag)
            out["push_vs_raw_batch"] = (
                out["push"]["records_per_s"] / out["raw_batch"]["records_per_s"]
            )
        with build_client(org.settings()) as fresh:
            once = SyncCycle(engine, fresh).run()
            out["sync_once"] = _ratio(once.api_calls, 2 * entities)
            out["sync_once"]["by_kind"] = dict(fresh.stats().requests_by_kind)
    finally:
        engine.dispose()
    return out


def _page_times(pages: list[tuple[float, str, int]]) -> Callable[[Progress], None]:
    """A progress hook noting when each page of an initial read was committed."""

    def hook(progress: Progress) -> None:
        if progress.mode == "initial" and progress.pages:
            pages.append((time.perf_counter(), progress.entity, progress.records))

    return hook
