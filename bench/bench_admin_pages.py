"""Server time of every admin page over a large database (issue 11 "Performance").

The database holds 1,000,000 persons (10,000 companies), 10,000,000 activities (one person
has a long log of 20,000), 50,000 open sync errors, a day of cycles (one every 30 s), 5,000
notifications, 5,000 audit entries and 200 campaigns, stored with bulk ``INSERT ... SELECT``
over a generated series (quick mode: 20,000 persons, 200,000 activities, 5,000 errors;
``CRMSYNC_BENCH_ADMIN_SIZES`` sets other sizes).

Each page is requested in-process through the real application (signed in as an admin):
one warm-up, then the median of five requests is its server time (target < 300 ms). The
Fields page reads the table's columns from an emulated org served on 127.0.0.1 (one metadata
round trip, as against a real org).

The SQL each of the overview, sync errors and person pages runs is captured and explained
(SQLite ``EXPLAIN QUERY PLAN``, PostgreSQL ``EXPLAIN``); the report lists the plans and any
table read in full. SQLite always; PostgreSQL too when ``CRMSYNC_BENCH_POSTGRES_URL`` names
an empty database (left filled for inspection).
"""

from __future__ import annotations

import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select, text

from crmsync.emulator.app import create_emulator_app
from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET, default_config
from crmsync.emulator.seed import seed_dataset
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.settings import load_settings
from crmsync.store import tables
from crmsync.store.db import open_database, upgrade_database
from crmsync.sync.error_counts import open_error_total, rebuild_error_counts
from crmsync.web.admin.queries import error_counts_by_entity, error_kinds
from crmsync.web.admin.users import AdminUserStore
from crmsync.web.app import create_app

TARGET_MS = 300
EMAIL = "bench-admin@example.com"
PASSWORD = secrets.token_urlsafe(16)  # a fresh admin of a throw-away database
LONG_LOG_PERSON = 1
LONG_LOG = 20_000
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')

PAGES: dict[str, str] = {
    "overview": "/admin/",
    "errors": "/admin/errors",
    "errors_filtered": "/admin/errors?entity=lead&q=phone",
    "errors_last_page": "/admin/errors?last=1",  # keyset: the oldest rows, by the index
    "errors_page_1000_typed": "/admin/errors?page=1000",  # a typed number: counted off (OFFSET)
    "people": "/admin/people",
    "people_search_name": "/admin/people?q=smi",
    "people_search_no_match": "/admin/people?q=zzzz",
    "people_search_email": "/admin/people?q=p777%40bench.example",
    "person_long_log": f"/admin/people/{LONG_LOG_PERSON}",
    "companies": "/admin/companies",
    "fields": "/admin/fields?entity=lead",
    "campaigns": "/admin/campaigns",
    "notifications": "/admin/notifications",
    "audit": "/admin/audit",
}
PLANNED = ("overview", "errors", "errors_last_page", "person_long_log")


# ---- seeding -------------------------------------------------------------------------------


def _col(table: Any, key: str) -> str:
    return str(table.c[key].name)


def _series(dialect: str, count: int) -> tuple[str, str]:
    """A (WITH clause, FROM clause) generating ``i`` = 1..count."""
    if dialect == "sqlite":
        return (
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) ",
            "n",
        )
    return "", f"generate_series(1, {count}) AS n(i)"


def _stamp(dialect: str, seconds: str) -> str:
    """A UTC datetime ``seconds`` before now, as the dialect stores it."""
    if dialect == "sqlite":
        return f"datetime('now', '-' || ({seconds}) || ' seconds')"
    return f"(now() - ({seconds}) * interval '1 second')"


def _insert(engine: Engine, table: str, columns: dict[str, str], count: int) -> None:
    dialect = engine.dialect.name
    with_clause, source = _series(dialect, count)
    names = ", ".join(f'"{name}"' for name in columns)
    values = ", ".join(columns.values())
    sql = f"INSERT INTO {table} ({names}) {with_clause}SELECT {values} FROM {source}"
    if dialect == "sqlite":
        sql = f"{with_clause}INSERT INTO {table} ({names}) SELECT {values} FROM {source}"
    with engine.begin() as conn:
        conn.execute(text(sql))


def seed(engine: Engine, persons: int, activities: int, errors: int) -> dict[str, float]:
    """Fill the database in bulk; returns seconds per table."""
    dialect = engine.dialect.name
    false = "0" if dialect == "sqlite" else "false"
    p, c = tables.persons, tables.companies
    companies = max(10, persons // 100)
    timings: dict[str, float] = {}

    def timed(name: str, table: str, columns: dict[str, str], count: int) -> None:
        started = time.perf_counter()
        _insert(engine, table, columns, count)
        timings[name] = round(time.perf_counter() - started, 1)

    timed(
        "companies",
        "companies",
        {
            _col(c, "company"): "'Company ' || i",
            _col(c, "externalCompanyId"): "'ext-' || i",
            _col(c, "industry"): "'Industry ' || (i % 20)",
        },
        companies,
    )
    names = "CASE i % 5 WHEN 0 THEN 'Smith' WHEN 1 THEN 'Jones' WHEN 2 THEN 'Brown' "
    names += "WHEN 3 THEN 'Garcia' ELSE 'Martin' END"
    timed(
        "persons",
        "persons",
        {
            _col(p, "email"): "'p' || i || '@bench.example'",
            "email_key": "'p' || i || '@bench.example'",
            _col(p, "firstName"): "'First' || (i % 1000)",
            _col(p, "lastName"): f"{names} || (i % 97)",
            _col(p, "company"): "'Company ' || (i % 10000 + 1)",
            _col(p, "crmType"): "CASE WHEN i % 3 = 0 THEN 'Lead' ELSE 'Contact' END",
            _col(p, "crmIsDeleted"): false,
            _col(p, "leadPartitionId"): "1",
            _col(p, "createdAt"): "'2026-01-01T00:00:00Z'",
            _col(p, "updatedAt"): "'2026-01-01T00:00:00Z'",
            "company_id": f"i % {companies} + 1",
        },
        persons,
    )
    attributes = """'{"Source": "Web service API", "Old Value": "a", "New Value": "b"}'"""
    person_of = f"CASE WHEN i <= {LONG_LOG} THEN {LONG_LOG_PERSON} ELSE i % {persons} + 1 END"
    timed(
        "activities",
        "activities",
        {
            "person_id": person_of,
            "type_id": "CASE WHEN i % 2 = 0 THEN 13 ELSE 12 END",
            "activity_date": "'2026-06-01T00:00:00Z'",
            "primary_value": "'Email Address'",
            "field_name": "'email'",
            "attributes": attributes,
        },
        activities,
    )
    kinds = "CASE i % 4 WHEN 0 THEN 'lead' WHEN 1 THEN 'contact' "
    kinds += "WHEN 2 THEN 'account' ELSE 'opportunity' END"
    timed(
        "sync_errors",
        "sync_errors",
        {
            "entity": kinds,
            "direction": "'to_crm'",
            "operation": "'update'",
            "local_kind": "'person'",
            "local_id": f"i % {persons} + 1",
            "crm_id": "'00000000-0000-0000-0000-' || i",
            "error_code": "CASE WHEN i % 2 = 0 THEN '0x80040203' ELSE '0x80048408' END",
            "message": "'Business phone: digits only. (record ' || i || ')'",
            "attempts": "1",
            "first_seen": _stamp(dialect, "i"),
            "last_seen": _stamp(dialect, "i"),
        },
        errors,
    )
    details = """'{"entities": [{"entity": "lead", "read": 10, "failed": 0}], """
    details += """"push": {"sent": 5, "failed": 1}}'"""
    timed(
        "sync_history",
        "sync_history",
        {
            "kind": "'cycle'",
            "status": "'ok'",
            "started_at": _stamp(dialect, "i * 30"),
            "finished_at": _stamp(dialect, "i * 30 - 2"),
            "api_calls": "7",
            "details": details,
        },
        2880,
    )
    timed(
        "notifications",
        "notifications",
        {
            "created_at": _stamp(dialect, "i * 60"),
            "severity": "CASE WHEN i % 10 = 0 THEN 'critical' ELSE 'warning' END",
            "kind": "'records_failing'",
            "title": "'Records failing to sync'",
            "message": "'Records failed to sync today.'",
            "read_at": f"CASE WHEN i % 2 = 0 THEN NULL ELSE {_stamp(dialect, 'i')} END",
        },
        5_000,
    )
    timed(
        "audit_log",
        "audit_log",
        {
            "occurred_at": _stamp(dialect, "i * 60"),
            "actor": "'ana@example.com'",
            "action": "'sync_enabled'",
            "details": """'{"enabled": true}'""",
        },
        5_000,
    )
    started = time.perf_counter()
    with engine.begin() as conn:  # the errors went in without the code that counts them
        rebuild_error_counts(conn)
    timings["error_counts"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    timings["analyze"] = round(time.perf_counter() - started, 1)
    return timings


def seed_campaigns(engine: Engine, count: int) -> None:
    """Campaigns through the campaign service: the list page has something to show."""
    service = CampaignService(engine)
    for number in range(count):
        service.create(
            {
                "name": f"Bench campaign {number}",
                "type": "batch",
                "qualification": "once",
                "smartList": {
                    "filters": [{"field": "country", "operator": "is", "values": ["FR"]}]
                },
                "flow": [{"type": "change_data_value", "field": "leadStatus", "value": "New"}],
            }
        )


# ---- serving and measuring -----------------------------------------------------------------


@contextmanager
def _served(app: Any) -> Iterator[str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the emulator did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _signed_in(app: Any) -> TestClient:
    browser = TestClient(app, base_url="http://testserver", follow_redirects=False)
    page = browser.get("/admin/sign-in")
    found = _TOKEN.search(page.text)
    assert found is not None
    answer = browser.post(
        "/admin/sign-in",
        data={"csrf_token": found.group(1), "email": EMAIL, "password": PASSWORD},
    )
    assert answer.status_code == 303, answer.text[:300]
    return browser


class StatementLog:
    """The SQL statements the engine runs while it is on."""

    def __init__(self, engine: Engine) -> None:
        self.on = False
        self.statements: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if self.on and statement.lstrip().upper().startswith("SELECT"):
            self.statements.append((statement, params))


def _explain(engine: Engine, statement: str, params: Any) -> list[str]:
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            cursor = raw.cursor()
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            return [str(row[-1]) for row in cursor.fetchall()]
        import psycopg

        inner = raw.driver_connection
        assert isinstance(inner, psycopg.Connection)
        inlined = psycopg.ClientCursor(inner).mogrify(statement, params)
        with inner.cursor() as cursor:
            cursor.execute(f"EXPLAIN {inlined}")
            return [str(row[0]) for row in cursor.fetchall()]
    finally:
        raw.close()


def _full_scans(plan: list[str]) -> list[str]:
    """Plan lines reading a whole table (not through an index, nor a small admin table)."""
    small = ("admin_", "sync_settings", "sync_lease", "field_selection", "delta_cursors")
    found = []
    for line in plan:
        bare = line.strip().lstrip("->").strip()
        if bare.startswith("SCAN ") and "INDEX" not in bare:
            name = bare.split()[1]
        elif bare.startswith("Seq Scan on "):
            name = bare.split()[3]
        else:
            continue
        if not name.startswith(small) and name not in {"n", "CONSTANT"}:
            found.append(bare)
    return found


def _plans(engine: Engine, log: StatementLog) -> list[dict[str, object]]:
    plans: list[dict[str, object]] = []
    seen: set[str] = set()
    for statement, params in log.statements:
        if statement in seen or "admin_sessions" in statement or "admin_users" in statement:
            continue
        seen.add(statement)
        plan = _explain(engine, statement, params)
        plans.append(
            {"sql": " ".join(statement.split()), "plan": plan, "full_scans": _full_scans(plan)}
        )
    return plans


def _median_ms(work: Any, rounds: int = 5) -> float:
    work()  # warm-up
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 1)


def measure_error_groups(engine: Engine) -> dict[str, float]:
    """The errors page's aggregates, same run: the former queries over the open errors (the
    groups by code with the largest message of each, the counts per entity, the total)
    against what the pages read now (:func:`error_kinds`, :func:`error_counts_by_entity`,
    :func:`open_error_total`: the counts of open errors)."""
    errors = tables.sync_errors
    code = func.coalesce(errors.c.error_code, "")
    former = (
        select(code, func.count(), func.max(errors.c.message), func.max(errors.c.last_seen))
        .where(errors.c.resolved_at.is_(None))
        .group_by(code)
        .order_by(func.count().desc(), code)
    )
    is_open = errors.c.resolved_at.is_(None)
    former_by_entity = (
        select(errors.c.entity, func.count()).where(is_open).group_by(errors.c.entity)
    )
    former_total = select(func.count()).select_from(errors).where(is_open)
    with engine.connect() as conn:
        return {
            "former_group_query_ms": _median_ms(lambda: conn.execute(former).all()),
            "error_kinds_ms": _median_ms(lambda: error_kinds(conn)),
            "former_counts_by_entity_ms": _median_ms(lambda: conn.execute(former_by_entity).all()),
            "error_counts_by_entity_ms": _median_ms(lambda: error_counts_by_entity(conn)),
            "former_open_total_ms": _median_ms(lambda: conn.execute(former_total).scalar()),
            "open_error_total_ms": _median_ms(lambda: open_error_total(conn)),
        }


def measure_pages(engine: Engine, url: str, org_base: str, rounds: int = 5) -> dict[str, object]:
    """Time each page (median of ``rounds`` after a warm-up) and explain the planned ones."""
    dynamics = {
        "url": org_base,
        "authority": org_base,
        "auth_mode": "adfs",
        "client_id": DEFAULT_APP_CLIENT_ID,
        "client_secret": DEFAULT_APP_SECRET,
    }
    settings = load_settings(environ={}, overrides={"database": {"url": url}, "dynamics": dynamics})
    app = create_app(settings, engine=engine)
    users = AdminUserStore(engine)
    if users.by_email(EMAIL) is None:
        users.create(EMAIL, PASSWORD, "admin", actor="bench")
    log = StatementLog(engine)
    pages: dict[str, object] = {}
    plans: dict[str, object] = {}
    with _signed_in(app) as browser:
        for name, path in PAGES.items():
            answer = browser.get(path)
            if answer.status_code != 200:
                pages[name] = {"error": f"HTTP {answer.status_code}: {answer.text[:200]}"}
                continue
            timings = []
            for _ in range(rounds):
                started = time.perf_counter()
                browser.get(path)
                timings.append((time.perf_counter() - started) * 1000)
            median = statistics.median(timings)
            pages[name] = {
                "path": path,
                "median_ms": round(median, 1),
                "max_ms": round(max(timings), 1),
                "met": median < TARGET_MS,
            }
            if name in PLANNED:
                log.statements.clear()
                log.on = True
                browser.get(path)
                log.on = False
                plans[name] = _plans(engine, log)
    return {
        "target_ms": TARGET_MS,
        "pages": pages,
        "error_groups": measure_error_groups(engine),
        "all_met": all(isinstance(v, dict) and v.get("met") for v in pages.values()),
        "query_plans": plans,
        "full_scans": {
            name: [s for entry in entries for s in entry["full_scans"]]  # type: ignore[attr-defined]
            for name, entries in plans.items()
        },
    }


def _one_database(url: str, sizes: tuple[int, int, int], org_base: str) -> dict[str, object]:
    upgrade_database(url)
    engine = open_database(url)
    try:
        started = time.perf_counter()
        fill = seed(engine, *sizes)
        figures: dict[str, object] = {
            "persons": sizes[0],
            "activities": sizes[1],
            "open_sync_errors": sizes[2],
            "seed_seconds": round(time.perf_counter() - started, 1),
            "seed_seconds_by_table": fill,
        }
        seed_campaigns(engine, 200)
        figures.update(measure_pages(engine, url, org_base))
        return figures
    finally:
        engine.dispose()


def _sizes(quick: bool) -> tuple[int, int, int]:
    """(persons, activities, open errors): the full or quick sizes, or those given as
    ``CRMSYNC_BENCH_ADMIN_SIZES="20000,200000,50000"`` (all the errors on a smaller base)."""
    given = os.environ.get("CRMSYNC_BENCH_ADMIN_SIZES", "").strip()
    if given:
        persons, activities, errors = (int(part) for part in given.split(","))
        return persons, activities, errors
    return (20_000, 200_000, 5_000) if quick else (1_000_000, 10_000_000, 50_000)


def run(quick: bool) -> dict[str, object]:
    sizes = _sizes(quick)
    figures: dict[str, object] = {}
    emulator = create_emulator_app(default_config())
    seed_dataset(emulator.state.storage, 20, 5)
    with _served(emulator) as org_base:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            print("bench_admin_pages: SQLite ...", file=sys.stderr, flush=True)
            figures["sqlite"] = _one_database(url, sizes, org_base)
        postgres = os.environ.get("CRMSYNC_BENCH_POSTGRES_URL")
        if postgres:
            print("bench_admin_pages: PostgreSQL ...", file=sys.stderr, flush=True)
            figures["postgresql"] = _one_database(postgres, sizes, org_base)
        else:
            figures["postgresql"] = "skipped: CRMSYNC_BENCH_POSTGRES_URL is not set"
    emulator.state.storage.close()
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
