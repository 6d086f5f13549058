"""The sync engine beside its physical limits, measured in one run over one emulator.

Used by :mod:`bench.bench_sync` and :mod:`bench.bench_sync_million`. Every figure is taken
beside the limit it is held against, in the same run, so a loaded machine slows both alike:

* **raw paging**: the same client reads every record of every synced entity with the same
  columns and page size, doing nothing with them; the initial sync's rate divided by that
  rate is ``initial_vs_raw_paging``;
* **the push and raw $batch** (:mod:`bench.push_limits`): the push's rate divided by the
  same client's sending as many prepared updates is ``push_vs_raw_batch``;
* **requests ÷ minimum** for the initial sync (one read per 5,000 records per entity), a
  cycle with no changes (one read per entity), 100 changes on each side (one read per entity
  and one ``$batch``), the push (one read per entity and one ``$batch`` per 1,000 updates,
  Dynamics' limit) and a one-off ``sync once`` (a new client: one schema read and one change
  read per entity);
* the engine's CPU seconds (this process) and the emulator's (its process) separately, per
  1,000 records;
* per page of the initial sync, the time it was committed (for the throughput plot), and per
  ``$batch`` call of the push its latency (for the latency plot).

The emulator process and the stores come from :mod:`bench.org_harness`.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from bench.org_harness import Clock, Emulator
from bench.push_limits import push_and_raw
from bench.support import salesperson
from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.marketing.persons import PersonService
from crmsync.store.db import open_database
from crmsync.store.tables import crm_links
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.reports import Progress

READ_KINDS = ("track", "delta")
CHANGES_EACH_SIDE = 100


def _reads(client: DynamicsClient) -> int:
    kinds = client.stats().requests_by_kind
    return sum(kinds.get(kind, 0) for kind in READ_KINDS)


def raw_paging(client: DynamicsClient, cycle: SyncCycle, org: Emulator) -> dict[str, float]:
    """Every record of every synced entity read by ``client`` with the sync's columns,
    nothing done with them: records, requests, seconds and CPU."""
    records = 0
    before = _reads(client)
    with Clock(org) as clock:
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


def _salesperson_edits(org: dict[str, Any], ids: list[str], tag: str) -> None:
    with salesperson(org) as http:
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
            with Clock(org) as clock:
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
            out.update(
                push_and_raw(
                    org,
                    client,
                    cycle,
                    service,
                    linked[2 * CHANGES_EACH_SIDE :],
                    pushes=pushes,
                    tag=tag,
                )
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
