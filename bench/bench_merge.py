"""Merge throughput: ``merge_record`` over many records of 40 synced fields.

Each record has a baseline and both sides' values; about one record in ten has a Dynamics-side
edit, one in ten a marketing-side edit, and one in a hundred a collision, which is a busy
cycle's mix. Only the merge is timed; building the inputs is not.
"""

from __future__ import annotations

import random
import time

from crmsync.sync.merge import merge_record
from crmsync.sync.policy import policy_for

FIELDS = tuple(f"field{i:02d}" for i in range(40))
TARGET_MERGES_PER_SECOND = 20_000


def _copy(value: object) -> object:
    if isinstance(value, str):
        return (value + ".")[:-1]
    if isinstance(value, int) and not isinstance(value, bool):
        return int(str(value))
    return value


Record = tuple[dict[str, object], dict[str, object], dict[str, object]]


def _records(count: int, seed: int = 7) -> list[Record]:
    rng = random.Random(seed)
    records: list[Record] = []
    for index in range(count):
        baseline: dict[str, object] = {}
        for position, name in enumerate(FIELDS):
            kind = position % 4
            if kind == 0:
                baseline[name] = f"value {index} {position}"
            elif kind == 1:
                baseline[name] = index * position
            elif kind == 2:
                baseline[name] = bool(index % 2)
            else:
                baseline[name] = None
        # Each side holds its own equal objects, as values read from Dynamics and the database do.
        crm = {name: _copy(value) for name, value in baseline.items()}
        marketing = {name: _copy(value) for name, value in baseline.items()}
        roll = rng.random()
        name = FIELDS[rng.randrange(len(FIELDS))]
        if roll < 0.1:
            crm[name] = "edited in Dynamics"
        elif roll < 0.2:
            marketing[name] = "edited in marketing"
        elif roll < 0.21:
            crm[name] = "Dynamics"
            marketing[name] = "marketing"
        records.append((baseline, crm, marketing))
    return records


def run(quick: bool) -> dict[str, object]:
    """Time the merge of 100,000 records × 40 fields (5,000 when quick), with and without
    a baseline."""
    count = 5_000 if quick else 100_000
    records = _records(count)
    policy = policy_for("lead")
    writes = collisions = 0
    started = time.perf_counter()
    for baseline, crm, marketing in records:
        result = merge_record(baseline, crm, marketing, policy, FIELDS)
        writes += len(result.crm_writes) + len(result.marketing_writes)
        collisions += len(result.collisions)
    elapsed = time.perf_counter() - started
    rate = count / elapsed if elapsed else float("inf")
    # The initial sync's path: no baseline yet, Dynamics values win.
    started = time.perf_counter()
    for _, crm, marketing in records:
        merge_record(None, crm, marketing, policy, FIELDS)
    first_link_elapsed = time.perf_counter() - started
    return {
        "records": count,
        "fields_per_record": len(FIELDS),
        "merge_seconds": round(elapsed, 3),
        "merges_per_second": round(rate),
        "field_merges_per_second": round(rate * len(FIELDS)),
        "first_link_merges_per_second": round(count / first_link_elapsed),
        "writes": writes,
        "collisions": collisions,
        "target_merges_per_second": TARGET_MERGES_PER_SECOND,
        "meets_target": rate >= TARGET_MERGES_PER_SECOND,
    }
