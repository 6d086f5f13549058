"""Marketing database throughput on SQLite (issue 2 §6).

* ``sync_records_per_s``: PersonService.sync createOrUpdate in 300-record calls (new persons,
  then the same e-mails again with changed values), activities and outbox included.
* ``lookup_300_emails_ms``: PersonService.find over 300 e-mails with N persons stored
  (quick: 10,000; full: 1,000,000, bulk-loaded with executemany).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from crmsync.marketing.persons import PersonService
from crmsync.store.db import open_database, upgrade_database
from crmsync.store.tables import persons

CALL_SIZE = 300
TARGET_RECORDS_PER_S = 5_000
TARGET_LOOKUP_MS = 50.0


def _record(i: int, generation: int) -> dict[str, object]:
    return {
        "email": f"person{i}@example{i % 97}.com",
        "firstName": f"First{i}",
        "lastName": f"Last{i}-{generation}",
        "company": f"Company {i % 1000}",
        "city": "Lyon" if generation else "Paris",
        "numberOfEmployees": i % 5000,
        "unsubscribed": bool(generation and i % 2),
    }


def _bench_sync(service: PersonService, total: int) -> dict[str, object]:
    figures: dict[str, object] = {}
    for generation, label in ((0, "create"), (1, "update")):
        started = time.perf_counter()
        for start in range(0, total, CALL_SIZE):
            records = [_record(i, generation) for i in range(start, start + CALL_SIZE)]
            outcomes = service.sync(records, action="createOrUpdate")
            assert all(o.status in {"created", "updated"} for o in outcomes), outcomes[:3]
        elapsed = time.perf_counter() - started
        figures[f"{label}_records_per_s"] = round(total / elapsed)
    return figures


def _bulk_load(url: str, count: int, offset: int) -> None:
    engine = open_database(url)
    chunk = 20_000
    now = "2026-01-01T00:00:00Z"
    with engine.begin() as conn:
        for start in range(offset, offset + count, chunk):
            rows = [
                {
                    "email": f"bulk{i}@example.com",
                    "email_key": f"bulk{i}@example.com",
                    "firstName": f"Bulk{i}",
                    "lastName": "Person",
                    "createdAt": now,
                    "updatedAt": now,
                }
                for i in range(start, min(start + chunk, offset + count))
            ]
            conn.execute(insert(persons), rows)
    engine.dispose()


def run(quick: bool) -> dict[str, object]:
    """Measure sync throughput and e-mail lookup latency; see the module docstring."""
    sync_total = 6_000 if quick else 60_000
    stored = 10_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade_database(url)
        engine = open_database(url)
        service = PersonService(engine)
        figures = _bench_sync(service, sync_total)
        load_started = time.perf_counter()
        _bulk_load(url, stored, offset=0)
        figures["bulk_load_persons_per_s"] = round(stored / (time.perf_counter() - load_started))
        timings = []
        for attempt in range(20):
            emails = [f"BULK{(attempt * 7919 + k * 3331) % stored}@Example.com" for k in range(300)]
            started = time.perf_counter()
            found, _token = service.find("email", emails)
            timings.append((time.perf_counter() - started) * 1000)
            assert len(found) == 300, len(found)
        engine.dispose()
    figures.update(
        {
            "call_size": CALL_SIZE,
            "sync_records": sync_total,
            "persons_stored": stored + sync_total,
            "lookup_300_emails_ms_median": round(statistics.median(timings), 2),
            "lookup_300_emails_ms_max": round(max(timings), 2),
            "targets": {
                "sync_records_per_s": TARGET_RECORDS_PER_S,
                "lookup_300_emails_ms": TARGET_LOOKUP_MS,
            },
        }
    )
    return figures
