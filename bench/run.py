"""Run every benchmark module (``bench/bench_*.py``) and write one JSON report.

Each module exposes ``run(quick: bool) -> dict[str, object]`` returning its measured figures
and the targets they are held against. Usage::

    python -m bench.run [--quick] [--only NAME] [--out bench/reports/latest.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(p.stem for p in here.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", action="append", default=[], help="run only these modules")
    parser.add_argument("--out", default="bench/reports/latest.json")
    args = parser.parse_args(argv)

    names = [n for n in discover() if not args.only or n in args.only or n[6:] in args.only]
    report: dict[str, object] = {
        "started": datetime.now(UTC).isoformat(),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "quick": args.quick,
        "results": {},
    }
    results: dict[str, object] = {}
    failed = False
    for name in names:
        print(f"bench: {name} ...", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            figures = module.run(quick=args.quick)
            figures["seconds"] = round(time.perf_counter() - started, 2)
            results[name] = figures
            print(json.dumps(figures, indent=2), flush=True)
        except Exception:
            failed = True
            results[name] = {"error": traceback.format_exc()}
            print(traceback.format_exc(), file=sys.stderr)
    report["results"] = results
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"bench: report written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
