"""CLI start-up: how long ``crmsync --help`` and ``crmsync sync status`` take, wall clock, from
process start to exit (the console script as a user runs it, on a migrated SQLite database),
and how many Dynamics requests a one-off ``crmsync sync once`` costs on a quiet org.

Each command runs a few times and the median counts; the first run warms the file cache. The
one-off cycle runs against ``crmsync emulator`` in its own process, after an initial sync; the
emulator counts the requests it answered.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crmsync.store.db import upgrade_database

TARGET_SECONDS = 0.5
ONE_OFF_ENTITIES = 6  # systemuser, team, account, lead, contact, opportunity
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
    figures["one_off_cycle_requests"] = _one_off_cycle_requests()
    figures["targets"] = {
        "help_seconds": TARGET_SECONDS,
        "sync_status_seconds": TARGET_SECONDS,
        "one_off_cycle_requests": ONE_OFF_ENTITIES + 2,
    }
    return figures


def _one_off_cycle_requests() -> int:
    """Requests the emulator answered for a second ``crmsync sync once`` (nothing changed)."""
    with tempfile.TemporaryDirectory() as folder:
        emulator = subprocess.Popen(
            [CRMSYNC, "emulator", "--port", "0", "--json", "--seed", "50"],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert emulator.stdout is not None
            org = json.loads(emulator.stdout.readline())
            (Path(folder) / "crmsync.toml").write_text(
                f'[database]\nurl = "sqlite:///{Path(folder) / "one-off.db"}"\n\n'
                f'[dynamics]\nurl = "{org["base_url"]}"\nauthority = "{org["base_url"]}"\n'
                f'tenant = "{org["tenant"]}"\nauth_mode = "adfs"\n'
                f'client_id = "{org["client_id"]}"\n',
                encoding="utf-8",
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
            env["CRMSYNC_DYNAMICS_CLIENT_SECRET"] = org["client_secret"]
            _seconds(["db", "upgrade"], env, folder)
            _seconds(["sync", "once", "--json"], env, folder)  # the initial sync
            before = _emulator_requests(org)
            _seconds(["sync", "once", "--json"], env, folder)
            return _emulator_requests(org) - before
        finally:
            emulator.terminate()
            emulator.wait(timeout=10)
            if emulator.stdout is not None:
                emulator.stdout.close()


def _emulator_requests(org: dict[str, str]) -> int:
    import httpx  # only this figure needs it

    stats = httpx.get(
        f"{org['base_url']}/_emulator/stats",
        headers={"x-emulator-key": org["admin_key"]},
        timeout=30,
    )
    stats.raise_for_status()
    return int(stats.json()["api_requests"])
