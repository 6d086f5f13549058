"""The sync engine at a million persons (issue 5 "Performance", B16, B17).

The same measurements as :mod:`bench.bench_sync` on an org of 500,000 leads and 500,000
contacts (with 100,000 accounts, 50,000 opportunities, salespeople and teams): the initial
sync's rate and this process's peak memory (under 500 MB: pages are streamed, never all
loaded), then a cycle with no changes over the 1,000,000 persons (under 200 ms, one request
per entity) and one with 100 leads changed on each side (under 1 s). The push is measured in
:mod:`bench.bench_sync`; its cost does not depend on the size of the database.

Quick mode seeds 5,000 leads.
"""

from __future__ import annotations

from bench.bench_sync import measure


def run(quick: bool) -> dict[str, object]:
    return measure(leads=5_000 if quick else 500_000, pushes=0)
