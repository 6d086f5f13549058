"""Run every benchmark module (``bench/bench_*.py``), each in its own process; one report.

Each module exposes ``run(quick: bool) -> dict[str, object]`` returning its measured figures.
A module may return ``figures``: a list of ``{figure, unit, measured: {min, median, max},
goal, pass}``; those are gathered into one pass/fail table. Each module runs in a process of
its own, so its peak memory is its own and one module's leftovers do not slow the next. The
report records the machine's CPU count and load average before and after every module.
Usage::

    python -m bench.run [--quick] [--only NAME] [--samples N] [--out bench/reports/latest.json]

Besides the JSON report it writes ``table.md`` (the figures against their goals) and PNG
plots (:mod:`bench.plots`) beside it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(p.stem for p in here.glob("bench_*.py"))


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def run_one(name: str, quick: bool, out: Path) -> int:
    """Run module ``name`` in this process and write its figures to ``out``."""
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{name}")
        figures = module.run(quick=quick)
    except Exception:
        out.write_text(json.dumps({"error": traceback.format_exc()}), encoding="utf-8")
        print(traceback.format_exc(), file=sys.stderr)
        return 1
    figures["seconds"] = round(time.perf_counter() - started, 2)
    out.write_text(json.dumps(figures), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", action="append", default=[], help="run only these modules")
    parser.add_argument("--samples", type=int, help="samples per figure (default 3)")
    parser.add_argument("--out", default="bench/reports/latest.json")
    parser.add_argument("--module", help=argparse.SUPPRESS)  # the child process's module
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.module:
        return run_one(args.module, args.quick, Path(args.result))

    names = [n for n in discover() if not args.only or n in args.only or n[6:] in args.only]
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_at_start": load(),
        },
        "quick": args.quick,
        "results": {},
    }
    env = dict(os.environ)
    if args.samples:
        env["BENCH_SAMPLES"] = str(args.samples)
    results: dict[str, Any] = {}
    failed = False
    for name in names:
        print(f"bench: {name} ... (load {load()})", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.json"
            command = [sys.executable, "-m", "bench.run", "--module", name, "--result", str(result)]
            before = load()
            code = subprocess.run(
                [*command, *(["--quick"] if args.quick else [])], env=env
            ).returncode
            figures = (
                json.loads(result.read_text(encoding="utf-8"))
                if result.exists()
                else {"error": f"exited with {code}"}
            )
        figures["load_before"] = before
        figures["load_after"] = load()
        failed = failed or code != 0 or "error" in figures
        results[name] = figures
        print(json.dumps(_brief(figures), indent=2), flush=True)
    report["results"] = results
    report["machine"]["load_at_end"] = load()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    table = out.with_name("table.md")
    table.write_text(render_table(report), encoding="utf-8")
    from bench.plots import plot_report  # matplotlib loads only for the report

    plots = plot_report(report, out.parent)
    print(table.read_text(encoding="utf-8"))
    print(f"bench: report written to {out}, table to {table}, plots: {', '.join(map(str, plots))}")
    return 1 if failed else 0


def _brief(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures without per-sample detail (pages, latencies), for the console."""
    return {k: v for k, v in figures.items() if k not in ("samples",)}


def render_table(report: dict[str, Any]) -> str:
    """The figures held against goals, as a Markdown table."""
    machine = report["machine"]
    lines = [
        f"Run {report['started']} on {machine['cpu_count']} CPUs, load at start "
        f"{machine['load_at_start']}, at end {machine.get('load_at_end')}"
        f"{' (quick sizes)' if report['quick'] else ''}.",
        "",
        "| Module | Figure | min | median | max | goal | pass | load before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in report["results"].items():
        for fig in result.get("figures", []):
            m = fig["measured"]
            lines.append(
                f"| {name} | {fig['figure']} | {_num(m['min'])} | {_num(m['median'])} | "
                f"{_num(m['max'])} | {fig['goal']} | {'pass' if fig['pass'] else 'FAIL'} | "
                f"{result['load_before'][0]} → {result['load_after'][0]} |"
            )
    lines += ["", "Requests ÷ minimum per scenario (median of the samples):", ""]
    lines += [
        "| Module | Store | Scenario | requests | minimum | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in report["results"].items():
        for kind, summary in result.get("summary", {}).items():
            for scenario, values in summary.items():
                if isinstance(values, dict) and "ratio" in values and "minimum" in values:
                    lines.append(
                        f"| {name} | {kind} | {scenario} | {_num(values['requests']['median'])} "
                        f"| {_num(values['minimum']['median'])} | "
                        f"{_num(values['ratio']['median'])} |"
                    )
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


if __name__ == "__main__":
    raise SystemExit(main())
