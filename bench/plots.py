"""PNG plots of a bench report (matplotlib): initial-sync throughput per page, push latency.

``initial_pages.png``: for every sample of :mod:`bench.bench_sync` (and the million run),
records per second of each page of the initial sync against the time it was committed.
``push_latency.png``: the seconds of each ``$batch`` call of the push, per sample and store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def page_rates(pages: list[list[Any]]) -> tuple[list[float], list[float]]:
    """(commit time, records/s of that page) for each page after the first."""
    times: list[float] = []
    rates: list[float] = []
    last_time = 0.0
    last: dict[str, int] = {}
    for when, entity, records in pages:
        done = records - last.get(entity, 0)
        last[entity] = records
        if when > last_time and done > 0:
            times.append(when)
            rates.append(done / (when - last_time))
        last_time = when
    return times, rates


def plot_report(report: dict[str, Any], directory: Path) -> list[Path]:
    """Write the plots of ``report`` into ``directory``; return their paths."""
    written: list[Path] = []
    fig, ax = plt.subplots(figsize=(9, 4.5))
    drawn = False
    for module, result in report["results"].items():
        for kind, samples in _samples(result):
            for number, sample in enumerate(samples):
                times, rates = page_rates(sample.get("initial", {}).get("pages", []))
                if times:
                    ax.plot(times, rates, lw=0.8, label=f"{module} {kind} #{number + 1}")
                    drawn = True
    if drawn:
        ax.set(xlabel="seconds into the initial sync", ylabel="records/s of the page")
        ax.set_title("Initial sync: throughput per page")
        ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(directory / "initial_pages.png")
        fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    drawn = False
    for module, result in report["results"].items():
        for kind, samples in _samples(result):
            for number, sample in enumerate(samples):
                calls = sample.get("push", {}).get("batch_call_seconds", [])
                if calls:
                    ax.plot(
                        range(1, len(calls) + 1),
                        calls,
                        marker="o",
                        ms=3,
                        lw=0.8,
                        label=f"{module} {kind} #{number + 1}",
                    )
                    drawn = True
    if drawn:
        ax.set(xlabel="write_batch call of the push", ylabel="seconds")
        ax.set_title("Push: latency of each $batch call (batch size × concurrency updates)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(directory / "push_latency.png")
        fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    return written


def _samples(result: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    found = result.get("samples")
    if isinstance(found, dict):
        return list(found.items())
    if isinstance(found, list):
        return [("sqlite", found)]
    return []
