"""Sync engine throughput beside its limits, into SQLite and PostgreSQL (issue 15).

The emulator runs as its own process (``crmsync emulator --seed N``: N leads, N contacts, N/5
accounts, N/10 opportunities, salespeople and teams: 230,058 records for N = 100,000); the
engine runs here with one :class:`~crmsync.sync.cycle.SyncCycle`, as ``crmsync sync run``
keeps one. Each sample starts from an empty store; see :mod:`bench.sync_limits` for what one
sample measures. The figures held against goals:

* ``initial_vs_raw_paging`` (SQLite): the initial sync's records/s ÷ raw paging's, ≥ 0.50;
* ``engine_cpu_s_per_1000`` (SQLite): this process's CPU seconds per 1,000 records of the
  initial sync, ≤ 0.06;
* ``push_vs_raw_batch`` (SQLite): the push of 10,000 updates ÷ raw ``$batch``, ≥ 0.50;
* ``postgres_vs_sqlite``: PostgreSQL's initial-sync rate ÷ SQLite's in the same sample,
  ≥ 0.80 (only when a PostgreSQL server is named).

Quick mode seeds 2,000 leads and pushes 500 updates.
"""

from __future__ import annotations

import resource
from typing import Any

from bench.org_harness import (
    samples_by_store,
    spread,
)
from bench.sync_limits import sample


def figure(
    name: str, values: list[float], goal: float, *, at_least: bool, unit: str = "ratio"
) -> dict[str, Any]:
    """One figure against its goal: min/median/max of ``values``; passes on the median."""
    measured = spread(values)
    median = measured["median"]
    return {
        "figure": name,
        "unit": unit,
        "measured": measured,
        "goal": f"{'>=' if at_least else '<='} {goal}",
        "pass": median >= goal if at_least else median <= goal,
    }


def run(quick: bool) -> dict[str, object]:
    return measure(leads=2_000 if quick else 100_000, pushes=500 if quick else 10_000)


def measure(leads: int, pushes: int) -> dict[str, object]:
    """Seed ``leads`` and take :func:`~bench.sync_limits.samples_wanted` samples per store."""
    samples = samples_by_store(
        leads, lambda org, url: sample(org, url, pushes=pushes, scenarios=True)
    )
    lite = samples["sqlite"]
    figures = [
        figure(
            "initial sync ÷ raw paging (SQLite)",
            [s["initial_vs_raw_paging"] for s in lite],
            0.5,
            at_least=True,
        ),
        figure(
            "engine CPU s per 1,000 records, initial sync (SQLite)",
            [s["initial"]["engine_cpu_s_per_1000"] for s in lite],
            0.06,
            at_least=False,
            unit="s",
        ),
        figure(
            "push ÷ raw $batch (SQLite)",
            [s["push_vs_raw_batch"] for s in lite],
            0.5,
            at_least=True,
        ),
    ]
    if "postgresql" in samples:
        pg = samples["postgresql"]
        figures += [
            figure(
                "initial sync PostgreSQL ÷ SQLite, same sample",
                [
                    p["initial"]["records_per_s"] / s["initial"]["records_per_s"]
                    for p, s in zip(pg, lite, strict=True)
                ],
                0.8,
                at_least=True,
            ),
            figure(
                "push ÷ raw $batch (PostgreSQL)",
                [s["push_vs_raw_batch"] for s in pg],
                0.5,
                at_least=True,
            ),
        ]
    return {
        "seeded_leads": leads,
        "pushes": pushes,
        "figures": figures,
        "summary": {kind: summarise(found) for kind, found in samples.items()},
        "samples": samples,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def summarise(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Min/median/max of every measured number across ``samples`` (per scenario)."""
    out: dict[str, Any] = {}
    for key, first in samples[0].items():
        if isinstance(first, int | float):
            out[key] = spread([s[key] for s in samples])
        elif isinstance(first, dict):
            out[key] = {
                name: spread([s[key][name] for s in samples])
                for name, value in first.items()
                if isinstance(value, int | float)
            }
    return out
