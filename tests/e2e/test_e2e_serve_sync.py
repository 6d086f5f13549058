"""``crmsync serve`` runs the background sync: several serve processes on one database take
turns through the lease (never two cycles at once), one killed in the middle of a cycle is
replaced by another once its lease expires, ``--no-sync`` serves without syncing, and SIGTERM
stops a server cleanly.

Everything runs as real processes: ``crmsync emulator`` and ``crmsync serve`` on free ports.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_process import CRMSYNC, emulator_process
from sqlalchemy import Engine, select

from crmsync.store.db import open_database
from crmsync.store.tables import sync_history, sync_lease
from crmsync.sync.runner import set_enabled

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def org(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with emulator_process(tmp_path, "--seed", "20", https=False) as details:
        yield details


def _configure(tmp_path: Path, database_url: str, org: dict[str, Any]) -> dict[str, str]:
    (tmp_path / "crmsync.toml").write_text(
        f'[database]\nurl = "{database_url}"\n\n[dynamics]\nurl = "{org["base_url"]}"\n'
        f'authority = "{org["base_url"]}"\ntenant = "{org["tenant"]}"\n'
        f'auth_mode = "adfs"\nclient_id = "{org["client_id"]}"\n\n'
        "[sync]\nlease_seconds = 6.0\npause_seconds = 0.1\n",
        encoding="utf-8",
    )
    env = {**os.environ, "NO_COLOR": "1", "CRMSYNC_DYNAMICS_CLIENT_SECRET": org["client_secret"]}
    env.pop("CRMSYNC_CONFIG", None)
    return env


class Servers:
    """The serve processes of one test, all stopped at its end."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, *extra: str) -> tuple[subprocess.Popen[str], str]:
        log = (self.tmp_path / f"serve-{len(self.processes)}.err").open("w")
        process = subprocess.Popen(
            [CRMSYNC, "serve", "--port", "0", *extra],
            cwd=self.tmp_path,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        self.processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "serving on" in line, f"serve did not start: {line!r}"
        url = line.split("serving on ", 1)[1].split()[0]
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        return process, url

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()


def _cycles(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(sync_history.c.started_at, sync_history.c.finished_at)
                .where(sync_history.c.kind == "cycle")
                .order_by(sync_history.c.started_at)
            ).all()
        )


def _lease_pid(engine: Engine) -> int | None:
    with engine.connect() as conn:
        holder = conn.execute(select(sync_lease.c.holder)).scalar_one_or_none()
    return int(str(holder).split(":")[1]) if holder else None


def _wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_serve_processes_share_the_sync_through_the_lease(
    tmp_path: Path, database_url: str, org: dict[str, Any]
) -> None:
    env = _configure(tmp_path, database_url, org)
    engine = open_database(database_url)
    servers = Servers(tmp_path, env)
    try:
        set_enabled(engine, True)
        quiet, _ = servers.start("--no-sync")
        time.sleep(1.5)
        assert _cycles(engine) == [], "a --no-sync server ran a cycle"

        # Slow Dynamics down so that a cycle lasts long enough to be caught holding the lease.
        httpx.patch(
            f"{org['base_url']}/_emulator/faults",
            json={"latency_ms": 10},
            headers={"X-Emulator-Key": org["admin_key"]},
        ).raise_for_status()
        first, _ = servers.start()
        second, _ = servers.start()
        _wait_for(lambda: len(_cycles(engine)) >= 3, "three cycles")

        holder = _wait_for(
            lambda: _lease_pid(engine) in {first.pid, second.pid} and _lease_pid(engine),
            "a serve process holding the lease",
        )
        killed_at = len(_cycles(engine))
        os.kill(holder, signal.SIGKILL)
        survivor = second if holder == first.pid else first
        # The dead holder's lease expires (6 s) and the survivor runs cycles again.
        _wait_for(
            lambda: len([c for c in _cycles(engine)[killed_at:] if c.finished_at]) >= 2,
            "cycles after the lease holder died",
            timeout=30,
        )
        assert _wait_for(lambda: _lease_pid(engine) == survivor.pid, "the survivor's lease")

        finished = [c for c in _cycles(engine) if c.finished_at is not None]
        for earlier, later in itertools.pairwise(finished):
            assert later.started_at >= earlier.finished_at, "two cycles overlapped"

        # SIGTERM: the cycle in hand finishes and the lease is released (uvicorn shuts down
        # gracefully, then ends with the signal it caught).
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=30) in (0, -signal.SIGTERM)
        assert _lease_pid(engine) is None
        logs = "".join(p.read_text() for p in tmp_path.glob("serve-*.err"))
        assert "Traceback" not in logs
        assert quiet.poll() is None
    finally:
        servers.stop_all()
        engine.dispose()
