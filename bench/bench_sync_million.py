"""The initial sync at 1.15 million records, in its own process (issue 15).

An org of 500,000 leads and 500,000 contacts (with 100,000 accounts, 50,000 opportunities,
salespeople and teams) is synced into an empty SQLite store, beside raw paging of the same
records by the same client. Held against goals: the initial sync's records/s (≥ 10,000) and
this process's peak resident memory (< 300 MB: pages are streamed, never all loaded). The
scenarios after the initial sync are measured in :mod:`bench.bench_sync`; their cost does not
depend on the size of the database.

Quick mode seeds 5,000 leads.
"""

from __future__ import annotations

import resource
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_sync import figure, summarise
from bench.org_harness import emulator, samples_wanted, store
from bench.sync_limits import sample


def run(quick: bool) -> dict[str, object]:
    leads = 5_000 if quick else 500_000
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with emulator(work, leads) as org:
            for number in range(samples_wanted()):
                with store("sqlite", work, number) as url:
                    samples.append(sample(org, url, pushes=0, scenarios=False))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seeded_leads": leads,
        "figures": [
            figure(
                "initial sync records/s, 1.15M records (SQLite)",
                [s["initial"]["records_per_s"] for s in samples],
                10_000,
                at_least=True,
                unit="records/s",
            ),
            figure(
                "initial sync ÷ raw paging, 1.15M records (SQLite)",
                [s["initial_vs_raw_paging"] for s in samples],
                0.5,
                at_least=True,
            ),
            figure("peak memory MB, own process", [peak], 300, at_least=False, unit="MB"),
        ],
        "summary": {"sqlite": summarise(samples)},
        "samples": samples,
        "peak_rss_mb": round(peak),
    }
