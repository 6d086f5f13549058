"""Benchmark of the Marketo-compatible API over real HTTP (issue 2 §6).

``crmsync serve`` runs as its own process on 127.0.0.1 on a fresh SQLite database; an httpx
client in this process sends Sync Leads calls (createOrUpdate, 300 leads per call, new and
then changed persons, so activities and outbox entries are written), then filter-type lookups
of 300 e-mails each. The full run first stores 1,000,000 persons (bulk SQL, outside the API)
so the lookups are measured against a realistic table size.

Targets: ≥ 5,000 leads/s sustained for Sync Leads; a 300-e-mail lookup under 50 ms.
Marketo's own rate limit (100 calls / 20 s) would cap any client at 1,500 leads/s, so the
server under test is started with the per-client limit raised.
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
from sqlalchemy import insert

from crmsync.marketing.persons import PersonService
from crmsync.store import tables
from crmsync.store.db import open_database, upgrade_database
from crmsync.web.clients import ApiClientStore

CRMSYNC = str(Path(sys.executable).parent / "crmsync")
BATCH = 300


def _seed_persons(url: str, count: int) -> None:
    """Store ``count`` persons with bulk inserts (not through the API: this is the backdrop)."""
    engine = open_database(url)
    stamp = "2026-01-01T00:00:00Z"
    try:
        with engine.begin() as conn:
            for start in range(0, count, 10_000):
                rows = [
                    {
                        "email": f"seed{i}@bench.example",
                        "email_key": f"seed{i}@bench.example",
                        "firstName": f"Seed{i}",
                        "lastName": "Person",
                        "createdAt": stamp,
                        "updatedAt": stamp,
                        "crmIsDeleted": False,
                    }
                    for i in range(start, min(count, start + 10_000))
                ]
                conn.execute(insert(tables.persons), rows)
    finally:
        engine.dispose()


def _start_server(url: str, workdir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "CRMSYNC_DATABASE_URL": url,
        "CRMSYNC_WEB_CALLS_PER_WINDOW": "1000000",
    }
    process = subprocess.Popen(
        [CRMSYNC, "serve", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "serving on " not in line:
        process.kill()
        raise RuntimeError(f"server did not start: {line}")
    return process, line.split("serving on ", 1)[1].split()[0]


def _token(http: httpx.Client, client_id: str, secret: str) -> str:
    reply = http.get(
        "/identity/oauth/token",
        params={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        },
    )
    reply.raise_for_status()
    token: str = reply.json()["access_token"]
    return token


def _lead(i: int, round_no: int) -> dict[str, Any]:
    return {
        "email": f"lead{i}@bench.example",
        "firstName": f"First{i}",
        "lastName": f"Last{i}-{round_no}",
        "company": f"Company {i % 500}",
        "title": "Engineer" if round_no == 0 else "Senior Engineer",
        "city": "Seattle",
        "leadScore": i % 100,
    }


def _sync_round(
    http: httpx.Client, calls: int, round_no: int, offset: int = 0
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    started = time.perf_counter()
    for call in range(calls):
        body = {
            "action": "createOrUpdate",
            "lookupField": "email",
            "input": [_lead(offset + call * BATCH + n, round_no) for n in range(BATCH)],
        }
        t0 = time.perf_counter()
        reply = http.post(
            "/rest/v1/leads.json",
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        latencies.append(time.perf_counter() - t0)
        document = reply.json()
        if not document.get("success") or len(document["result"]) != BATCH:
            raise RuntimeError(f"sync failed: {str(document)[:300]}")
        wanted = "created" if round_no == 0 else "updated"
        if any(item["status"] != wanted for item in document["result"]):
            raise RuntimeError(f"unexpected statuses: {document['result'][:3]}")
    return time.perf_counter() - started, latencies


def _lookups(http: httpx.Client, rounds: int, population: int) -> list[float]:
    latencies: list[float] = []
    step = max(1, population // (BATCH * rounds + 1))
    for r in range(rounds):
        emails = [f"seed{(r * BATCH + n) * step % population}@bench.example" for n in range(BATCH)]
        form = {
            "_method": "GET",
            "filterType": "email",
            "filterValues": ",".join(emails),
            "fields": "email,firstName,lastName",
        }
        t0 = time.perf_counter()
        reply = http.post("/rest/v1/leads.json", data=form)
        latencies.append(time.perf_counter() - t0)
        document = reply.json()
        if not document.get("success") or not document["result"]:
            raise RuntimeError(f"lookup failed: {str(document)[:300]}")
    return latencies


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1 if len(ordered) > 1 else 0] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def _service_only_rate(workdir: Path, calls: int) -> float:
    """Creates per second calling the person service directly (no HTTP), for comparison."""
    url = f"sqlite:///{workdir / 'service-only.db'}"
    upgrade_database(url)
    engine = open_database(url)
    try:
        service = PersonService(engine)
        started = time.perf_counter()
        for call in range(calls):
            records = [_lead(call * BATCH + n, 0) for n in range(BATCH)]
            service.sync(records, action="createOrUpdate", lookup_field="email")
        return calls * BATCH / (time.perf_counter() - started)
    finally:
        engine.dispose()


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=30)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def run(quick: bool) -> dict[str, object]:
    """Measure Sync Leads throughput and 300-e-mail lookup latency over HTTP on SQLite.

    1. Sync Leads into a fresh database: ``calls`` creates of 300, then the same leads
       changed (updates) — the sustained figures held against 5,000 leads/s.
    2. The table is filled to ``population`` persons; 300-e-mail lookups are timed.
    3. One more round of creates with that population stored, for comparison.
    4. The same creates through the person service directly (no HTTP), to show what the
       HTTP layer adds.
    """
    calls = 5 if quick else 100
    population = 20_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'bench.db'}"
        upgrade_database(url)
        engine = open_database(url)
        try:
            created = ApiClientStore(engine).create("bench")
        finally:
            engine.dispose()
        process, base_url = _start_server(url, workdir)
        try:
            with httpx.Client(base_url=base_url, timeout=60) as http:
                token = _token(http, created.client_id, created.client_secret.reveal())
                http.headers["Authorization"] = f"Bearer {token}"
                _sync_round(http, 3, 0, offset=20_000_000)  # warm-up: first statements
                _sync_round(http, 3, 1, offset=20_000_000)
                create_seconds, create_lat = _sync_round(http, calls, 0)
                update_seconds, update_lat = _sync_round(http, calls, 1)
                seed_started = time.perf_counter()
                _seed_persons(url, population)
                seed_seconds = time.perf_counter() - seed_started
                lookup_lat = _lookups(http, 5 if quick else 20, population)
                big_seconds, big_lat = _sync_round(http, calls, 0, offset=10_000_000)
        finally:
            _stop(process)
        service_rate = _service_only_rate(workdir, calls)
    leads = calls * BATCH
    create_rate = leads / create_seconds
    update_rate = leads / update_seconds
    lookup = _ms(lookup_lat)
    return {
        "database": "sqlite",
        "sync_calls_per_round": calls,
        "leads_per_call": BATCH,
        "create_leads_per_second": round(create_rate),
        "update_leads_per_second": round(update_rate),
        "create_call_latency": _ms(create_lat),
        "update_call_latency": _ms(update_lat),
        "persons_stored_for_lookups": population + leads + 3 * BATCH,
        "seed_seconds": round(seed_seconds, 1),
        "lookup_300_emails": lookup,
        "create_leads_per_second_with_population": round(leads / big_seconds),
        "service_only_create_leads_per_second": round(service_rate),
        "create_call_latency_with_population": _ms(big_lat),
        "targets": {"leads_per_second": 5000, "lookup_300_emails_ms": 50},
        "meets_targets": min(create_rate, update_rate) >= 5000 and lookup["median_ms"] < 50,
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
