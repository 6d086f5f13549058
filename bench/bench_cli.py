"""CLI start-up: how long ``crmsync --help`` and ``crmsync sync status`` take, wall clock, from
process start to exit (the console script as a user runs it, on a migrated SQLite database).

Each command runs a few times and the median counts; the first run warms the file cache.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crmsync.store.db import upgrade_database

TARGET_SECONDS = 0.5
CRMSYNC = str(Path(sys.executable).parent / "crmsync")


def _seconds(args: list[str], env: dict[str, str], cwd: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [CRMSYNC, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"crmsync {' '.join(args)} failed: {done.stderr}")
    return elapsed


def run(quick: bool) -> dict[str, object]:
    """Median seconds of ``crmsync --help`` and ``crmsync sync status``."""
    rounds = 3 if quick else 9
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade_database(url)
        env = {key: value for key, value in os.environ.items() if not key.startswith("CRMSYNC_")}
        env["CRMSYNC_DATABASE_URL"] = url
        figures: dict[str, object] = {}
        for label, args in (("help", ["--help"]), ("sync_status", ["sync", "status"])):
            _seconds(args, env, folder)  # warm-up
            times = [_seconds(args, env, folder) for _ in range(rounds)]
            figures[f"{label}_seconds_median"] = round(statistics.median(times), 3)
            figures[f"{label}_seconds_max"] = round(max(times), 3)
    figures["targets"] = {"help_seconds": TARGET_SECONDS, "sync_status_seconds": TARGET_SECONDS}
    return figures
