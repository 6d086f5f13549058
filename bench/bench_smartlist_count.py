"""Counting a smart list of three filters over 1,000,000 persons (issue 10 "Performance").

The persons are stored in bulk (quick mode: 100,000) with varied countries, scores and
Dynamics types; the smart list is ``country is FR or BE`` and ``leadScore > 50`` and ``crmType
is empty``, compiled to one SQL condition (:func:`crmsync.marketing.smartlists.
compile_smart_list`) and counted with :meth:`SmartListQuery.count`, as ``crmsync campaigns
show`` counts it. The median of five counts is reported with the query plan.

SQLite always; PostgreSQL too when ``CRMSYNC_BENCH_POSTGRES_URL`` names an empty database
(its tables are created, filled and left for inspection; after the fill it is vacuumed and
analysed, as autovacuum would do, so that the planner knows the table and index-only scans
need no heap visits). Target: < 300 ms.

The count is served by the smart-list index of migration ``0012_campaign_indexes`` (country
compared ignoring case, lead score, CRM type): SQLite answers it from the covering index
(``SEARCH persons USING COVERING INDEX``), PostgreSQL with an index-only scan.

A second smart list (``more_filters``: state is CA or NY, lead status is Nurture, created
after June) counts the filters of migration ``0017_smartlist_filter_indexes``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, func, insert, select, text

from crmsync.marketing.smartlists import SmartList, SmartListQuery, compile_smart_list
from crmsync.store import tables
from crmsync.store.db import open_database, upgrade_database

TARGET_MS = 300
COUNTRIES = ("FR", "BE", "DE", "US", "GB", "ES", "IT", "NL", "SE", "PL")
SMART_LIST = SmartList.from_dict(
    {
        "filters": [
            {"field": "country", "operator": "is", "values": ["FR", "BE"]},
            {"field": "leadScore", "operator": "gt", "value": 50},
            {"field": "crmType", "operator": "is_empty"},
        ]
    }
)

STATES = ("CA", "NY", "TX", "WA", "FL", "IL", "MA", "OR", "CO", "GA", "NJ", "VA")
LEAD_STATUSES = ("New", "Working", "Nurture", "Qualified", "Disqualified")
MORE_FILTERS = SmartList.from_dict(
    {
        "filters": [
            {"field": "state", "operator": "is", "values": ["ca", "ny"]},
            {"field": "leadStatus", "operator": "is", "values": ["Nurture"]},
            {"field": "createdAt", "operator": "gt", "value": "2026-06-01T00:00:00Z"},
        ]
    }
)
"""The next most common filters (migration ``0017_smartlist_filter_indexes``)."""


def _fill(engine: Engine, count: int) -> None:
    stamp = "2026-01-01T00:00:00Z"
    with engine.begin() as conn:
        for start in range(0, count, 20_000):
            rows = [
                {
                    "email": f"p{i}@bench.example",
                    "email_key": f"p{i}@bench.example",
                    "lastName": "Person",
                    "country": COUNTRIES[i % len(COUNTRIES)],
                    "leadScore": (i * 7) % 101,
                    "crmType": "Lead" if i % 3 == 0 else None,
                    "state": STATES[i % len(STATES)],
                    "leadStatus": LEAD_STATUSES[(i // 7) % len(LEAD_STATUSES)],
                    "createdAt": f"2026-{1 + (i // 3) % 12:02d}-01T00:00:00Z",
                    "updatedAt": stamp,
                    "crmIsDeleted": False,
                }
                for i in range(start, min(count, start + 20_000))
            ]
            conn.execute(insert(tables.persons), rows)


def _plan(engine: Engine, smart_list: SmartList) -> list[str]:
    with engine.connect() as conn:
        statement = (
            select(func.count())
            .select_from(tables.persons)
            .where(compile_smart_list(conn, smart_list))
        )
        compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        if conn.dialect.name == "sqlite":
            rows = conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
            return [str(r[-1]) for r in rows]
        rows = conn.execute(text(f"EXPLAIN ANALYZE {compiled}")).all()
        return [str(r[0]) for r in rows]


def _measure(engine: Engine, count: int) -> dict[str, object]:
    started = time.perf_counter()
    _fill(engine, count)
    fill_seconds = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE persons"))
    figures: dict[str, object] = {"persons": count, "fill_seconds": round(fill_seconds, 1)}
    figures.update(_count(engine, SMART_LIST))
    figures["more_filters"] = _count(engine, MORE_FILTERS)
    return figures


def _count(engine: Engine, smart_list: SmartList) -> dict[str, object]:
    query = SmartListQuery(engine)
    timings: list[float] = []
    members = 0
    for _ in range(5):
        t0 = time.perf_counter()
        members = query.count(smart_list)
        timings.append(time.perf_counter() - t0)
    median = statistics.median(timings) * 1000
    return {
        "members": members,
        "count_median_ms": round(median, 1),
        "count_max_ms": round(max(timings) * 1000, 1),
        "target_ms": TARGET_MS,
        "met": median < TARGET_MS,
        "query_plan": _plan(engine, smart_list),
    }


def run(quick: bool) -> dict[str, object]:
    count = 100_000 if quick else 1_000_000
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade_database(url)
        engine = open_database(url)
        try:
            figures["sqlite"] = _measure(engine, count)
        finally:
            engine.dispose()
    postgres = os.environ.get("CRMSYNC_BENCH_POSTGRES_URL")
    if postgres:
        upgrade_database(postgres)
        engine = open_database(postgres)
        try:
            figures["postgresql"] = _measure(engine, count)
        finally:
            engine.dispose()
    else:
        figures["postgresql"] = "skipped: CRMSYNC_BENCH_POSTGRES_URL is not set"
    return figures
