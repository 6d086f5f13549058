"""Emulator control plane: seeding speed and the per-request cost of auth + throttling.

* Seeding: ``seed_dataset`` into a SQLite file — leads (with their contacts, accounts,
  opportunities, users and teams) per second, extrapolated to a 1,000,000-lead org, and the
  growth of resident memory while seeding (it must stay flat: rows go in batches).
* Control plane: ASGI calls through ``wrap_with_control`` (bearer check, service protection,
  fault checks) to a do-nothing app; the microseconds it adds to each Web API request.
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from crmsync.emulator.auth import issue_access_token
from crmsync.emulator.config import default_config
from crmsync.emulator.faults import wrap_with_control
from crmsync.emulator.metadata import Catalog
from crmsync.emulator.runtime import EmulatorRuntime, system_clock
from crmsync.emulator.schema import builtin_entities
from crmsync.emulator.seed import seed_dataset
from crmsync.emulator.storage import Storage

TARGET_SECONDS_PER_MILLION_LEADS = 300.0
TARGET_OVERHEAD_MICROSECONDS = 200.0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_seed(quick: bool) -> dict[str, object]:
    """Seed 100,000 leads (5,000 when quick) into a temporary SQLite file."""
    leads = 5_000 if quick else 100_000
    with tempfile.TemporaryDirectory() as directory:
        catalog = Catalog(builtin_entities(default_config().change_tracking))
        storage = Storage(str(Path(directory) / "org.db"), catalog, system_clock)
        rss_before = _rss_mb()
        started = time.perf_counter()
        summary = seed_dataset(storage, leads, seed=1)
        elapsed = time.perf_counter() - started
        rss_growth = _rss_mb() - rss_before
        storage.close()
    rows = sum(summary.as_dict().values())
    per_million = elapsed * 1_000_000 / leads
    return {
        "leads": leads,
        "rows": rows,
        "seconds": round(elapsed, 2),
        "leads_per_second": round(leads / elapsed),
        "rows_per_second": round(rows / elapsed),
        "estimated_seconds_per_million_leads": round(per_million),
        "peak_rss_growth_mb": round(rss_growth, 1),
        "target_seconds_per_million_leads": TARGET_SECONDS_PER_MILLION_LEADS,
        "meets_target": per_million <= TARGET_SECONDS_PER_MILLION_LEADS,
    }


def run_control_overhead(quick: bool) -> dict[str, object]:
    """Time ASGI calls through the control plane to an app that answers 204 at once."""
    count = 2_000 if quick else 20_000
    config = default_config()
    runtime = EmulatorRuntime(config)
    token, _ = issue_access_token(config, runtime, config.users[0], "http://bench")

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = wrap_with_control(inner, config, runtime)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/data/v9.2/WhoAmI",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    async def calls(wrapped: Any) -> float:
        started = time.perf_counter()
        for _ in range(count):
            await wrapped(dict(scope), receive, send)
        return time.perf_counter() - started

    bare = asyncio.run(calls(inner))
    wrapped = asyncio.run(calls(app))
    overhead_us = (wrapped - bare) / count * 1e6
    return {
        "requests": count,
        "overhead_microseconds_per_request": round(overhead_us, 1),
        "requests_per_second_through_control_plane": round(count / wrapped),
        "target_overhead_microseconds": TARGET_OVERHEAD_MICROSECONDS,
        "meets_target": overhead_us <= TARGET_OVERHEAD_MICROSECONDS,
    }


def run(quick: bool) -> dict[str, object]:
    """Both measurements; ``meets_target`` only when both meet theirs."""
    seeding = run_seed(quick)
    control = run_control_overhead(quick)
    return {
        "seeding": seeding,
        "control_plane": control,
        "meets_target": bool(seeding["meets_target"]) and bool(control["meets_target"]),
    }
