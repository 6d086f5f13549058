"""An emulator process and a fresh store per sample: what every sync bench runs over.

:func:`emulator` seeds and serves an org in its own process (its CPU seconds are read apart
from the engine's); :func:`store` creates a new, migrated SQLite or PostgreSQL database per
sample (PostgreSQL when ``CRMSYNC_BENCH_POSTGRES_URL``, else ``CRMSYNC_TEST_POSTGRES_URL``,
names a server) and drops it afterwards; :class:`Clock` times a stretch in wall seconds,
engine CPU and emulator CPU.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import create_engine, make_url, text

from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.db import upgrade_database


def postgres_url() -> str | None:
    """The PostgreSQL server the bench may create databases on, if one is named."""
    return os.environ.get("CRMSYNC_BENCH_POSTGRES_URL") or os.environ.get(
        "CRMSYNC_TEST_POSTGRES_URL"
    )


def samples_wanted(default: int = 3) -> int:
    """How many samples each figure takes (``BENCH_SAMPLES``, else ``default``)."""
    return max(1, int(os.environ.get("BENCH_SAMPLES", default)))


def spread(values: Sequence[float]) -> dict[str, float]:
    """Minimum, median and maximum of ``values``, rounded for the report."""
    return {
        "min": round(min(values), 4),
        "median": round(statistics.median(values), 4),
        "max": round(max(values), 4),
    }


@dataclass
class Emulator:
    """A running ``crmsync emulator`` process and the org it describes."""

    process: subprocess.Popen[str]
    org: dict[str, Any]

    def cpu_seconds(self) -> float:
        """CPU time the emulator (and any child) has used so far."""
        proc = psutil.Process(self.process.pid)
        total = 0.0
        for one in [proc, *proc.children(recursive=True)]:
            times = one.cpu_times()
            total += times.user + times.system
        return total

    def settings(self) -> DynamicsSettings:
        """Settings for a client of this org."""
        return DynamicsSettings(
            url=self.org["base_url"],
            authority=self.org["base_url"],
            auth_mode="adfs",
            client_id=self.org["client_id"],
            client_secret=Secret(self.org["client_secret"]),
        )


@contextmanager
def emulator(work: Path, leads: int) -> Iterator[Emulator]:
    """Seed and serve an org of ``leads`` leads (and the rest) in its own process."""
    crmsync = str(Path(sys.executable).parent / "crmsync")
    log = work / "emulator.log"
    process = subprocess.Popen(
        [
            crmsync,
            "emulator",
            "--port",
            "0",
            "--json",
            "--seed",
            str(leads),
            "--db",
            str(work / "org.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the emulator did not start: {_tail(log)}")
    try:
        yield Emulator(process, json.loads(line))
        if process.poll() is not None:
            raise RuntimeError(f"the emulator stopped: {_tail(log)}")
    except Exception as exc:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator stopped: {_tail(log)}") from exc
        raise
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


@contextmanager
def store(kind: str, work: Path, sample: int) -> Iterator[str]:
    """A new, migrated database of ``kind`` (``sqlite`` or ``postgresql``); its URL."""
    if kind == "sqlite":
        url = f"sqlite:///{work / f'bench-{sample}.db'}"
        upgrade_database(url)
        yield url
        return
    server = postgres_url()
    if server is None:
        raise RuntimeError("no PostgreSQL server named")
    name = f"crmsync_bench_{os.getpid()}_{sample}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_database(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-2000:]


class Clock:
    """Wall time, engine CPU and emulator CPU over one stretch."""

    def __init__(self, org: Emulator) -> None:
        self._org = org
        self.wall = self.cpu = self.emulator_cpu = 0.0

    def __enter__(self) -> Clock:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._emu = self._org.cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        self.emulator_cpu = self._org.cpu_seconds() - self._emu


def samples_by_store(
    leads: int, take: Callable[[Emulator, str], dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Seed an emulated org with ``leads`` leads once, then, for each of
    :func:`samples_wanted` samples, call ``take(org, url)`` on a new SQLite database and, when
    :func:`postgres_url` is set, a new PostgreSQL one; the samples by store kind."""
    kinds = ["sqlite"] + (["postgresql"] if postgres_url() else [])
    samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with emulator(work, leads) as org:
            for number in range(samples_wanted()):
                for kind in kinds:
                    with store(kind, work, number) as url:
                        samples[kind].append(take(org, url))
    return samples
