"""The push beside raw ``$batch``, measured in one run over one emulator.

Used by :mod:`bench.sync_limits` (inside a full sample) and :mod:`bench.bench_push` (on its
own, after an untimed initial sync of a smaller org):

* **the push**: ``pushes`` persons get a new title through the REST API's service (one
  outbox entry each) and one cycle sends them; its records/s, requests, engine and emulator
  CPU seconds, and the seconds of every ``write_batch`` call (the latency plot);
* **raw $batch**: the same client sends as many updates to other leads, built beforehand, in
  calls of the push's size (``batch_size`` × concurrency), doing nothing with the answers;
* ``push_vs_raw_batch``: the push's rate ÷ raw ``$batch``'s; requests ÷ the minimum (one read
  per entity and one ``$batch`` per 1,000 updates, Dynamics' limit).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.org_harness import Clock, Emulator
from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import WriteRequest, WriteResult
from crmsync.marketing.persons import PersonService
from crmsync.sync.cycle import SyncCycle

MAX_BATCH_OPERATIONS = 1000
"""Dynamics' limit of operations per ``$batch``: the minimum number of push requests."""


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
    with Clock(org) as clock:
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


def timed_batches(client: DynamicsClient, latencies: list[float]) -> None:
    """Record every ``write_batch`` call's seconds (the push latency plot)."""
    send: Callable[[Sequence[WriteRequest]], list[WriteResult]] = client.write_batch

    def timed(requests: Sequence[WriteRequest]) -> list[WriteResult]:
        started = time.perf_counter()
        try:
            return send(requests)
        finally:
            latencies.append(time.perf_counter() - started)

    client.write_batch = timed  # type: ignore[method-assign]


def push_and_raw(
    org: Emulator,
    client: DynamicsClient,
    cycle: SyncCycle,
    service: PersonService,
    linked: Sequence[tuple[str, int]],
    *,
    pushes: int,
    tag: str,
) -> dict[str, Any]:
    """Push ``pushes`` title changes of the first ``linked`` (Dynamics id, person id) pairs,
    then raw ``$batch`` to the next ``pushes`` leads; the figures of both and their ratio."""
    if len(linked) < 2 * pushes:
        raise RuntimeError(f"{len(linked)} linked leads; the push bench needs {2 * pushes}")
    entities = len(cycle.mappings())
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
    timed_batches(client, latencies)
    with Clock(org) as clock:
        pushed = cycle.run()
    minimum = entities + math.ceil(pushes / MAX_BATCH_OPERATIONS)
    out: dict[str, Any] = {
        "push": {
            "records": pushed.push.updated,
            "failed": pushed.push.failed,
            "seconds": clock.wall,
            "records_per_s": pushed.push.updated / clock.wall,
            "engine_cpu_s": clock.cpu,
            "emulator_cpu_s": clock.emulator_cpu,
            "batch_call_seconds": [round(s, 4) for s in latencies],
            "requests": pushed.api_calls,
            "minimum": minimum,
            "ratio": round(pushed.api_calls / minimum, 3),
        }
    }
    raw_ids = [crm_id for crm_id, _ in linked[pushes : 2 * pushes]]
    out["raw_batch"] = raw_batch(client, raw_ids, org, tag)
    out["push_vs_raw_batch"] = out["push"]["records_per_s"] / out["raw_batch"]["records_per_s"]
    return out
