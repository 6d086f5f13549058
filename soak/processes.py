"""The real processes of a soak: the emulator, ``crmsync serve`` and ``crmsync sync run``.

Everything is started as a user would start it (the ``crmsync`` console script with a
``crmsync.toml`` in a working directory and the secret in the environment). The sync
processes are the ones the soak kills: :class:`SyncProcesses` sends SIGKILL, SIGTERM or SIGINT
to one of them and starts a new one in its place.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CRMSYNC = str(Path(sys.executable).parent / "crmsync")


class SoakError(RuntimeError):
    """A process of the soak could not be started or a command failed."""


def _stop(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Emulator:
    """A running ``crmsync emulator`` and the details it printed."""

    process: subprocess.Popen[str]
    details: dict[str, Any]

    @classmethod
    def start(cls, work: Path, leads: int, seed: int) -> Emulator:
        """Start an emulator on a free port with ``leads`` seeded leads (and as many contacts)."""
        stderr = (work / "emulator.err").open("w")
        process = subprocess.Popen(
            [
                CRMSYNC,
                "emulator",
                "--port",
                "0",
                "--json",
                "--seed",
                str(leads),
                "--random-seed",
                str(seed),
                "--db",
                str(work / "org.db"),
            ],
            cwd=work,
            env={**os.environ, "NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        stderr.close()
        if not line:
            process.wait(timeout=10)
            raise SoakError("emulator exited: " + (work / "emulator.err").read_text())
        return cls(process, json.loads(line))

    def stop(self) -> None:
        """Stop the emulator."""
        _stop(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class Workdir:
    """A working directory with ``crmsync.toml`` for one database, and the environment."""

    path: Path
    database_url: str
    env: dict[str, str]

    @classmethod
    def create(cls, path: Path, database_url: str, org: dict[str, Any]) -> Workdir:
        """Write the configuration for ``database_url`` and the emulator ``org``."""
        path.mkdir(parents=True, exist_ok=True)
        (path / "crmsync.toml").write_text(
            f'[database]\nurl = "{database_url}"\n\n'
            f'[dynamics]\nurl = "{org["base_url"]}"\nauthority = "{org["base_url"]}"\n'
            f'tenant = "{org["tenant"]}"\nauth_mode = "adfs"\nclient_id = "{org["client_id"]}"\n'
            "page_size = 40\nbatch_size = 10\nconcurrency = 2\ntimeout_seconds = 20\n\n"
            "[sync]\npause_seconds = 0.3\nlease_seconds = 3\n\n"
            "[web]\ncalls_per_window = 1000000\ndaily_calls = 0\nmax_concurrent_calls = 100\n",
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "NO_COLOR": "1",
            "CRMSYNC_DYNAMICS_CLIENT_SECRET": org["client_secret"],
        }
        for name in [
            n for n in env if n.startswith("CRMSYNC_") and n != "CRMSYNC_DYNAMICS_CLIENT_SECRET"
        ]:
            env.pop(name)
        env["CRMSYNC_DYNAMICS_CLIENT_SECRET"] = org["client_secret"]
        return cls(path, database_url, env)

    def cli(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``crmsync ARGS`` here; raise :class:`SoakError` when it fails and ``check``."""
        done = subprocess.run(
            [CRMSYNC, *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise SoakError(f"crmsync {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done


@dataclass
class MarketingServer:
    """A running ``crmsync serve --no-sync`` (the Marketo REST API) and its API client."""

    process: subprocess.Popen[str]
    url: str
    client_id: str
    client_secret: str

    @classmethod
    def start(cls, work: Workdir) -> MarketingServer:
        """Create an API client with the CLI, then serve on a free port of 127.0.0.1."""
        created = json.loads(work.cli("api-client", "create", "--name", "soak", "--json").stdout)
        stderr = (work.path / "serve.err").open("w")
        process = subprocess.Popen(
            [CRMSYNC, "serve", "--host", "127.0.0.1", "--port", "0", "--no-sync"],
            cwd=work.path,
            env=work.env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        stderr.close()
        assert process.stdout is not None
        line = process.stdout.readline()
        if "serving on http://127.0.0.1:" not in line:
            _stop(process)
            raise SoakError("crmsync serve did not start: " + (work.path / "serve.err").read_text())
        url = line.split("serving on ", 1)[1].split()[0]
        return cls(process, url, created["client_id"], created["client_secret"])

    def stop(self) -> None:
        """Stop the server."""
        _stop(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()


SIGNALS = {"sigkill": signal.SIGKILL, "sigterm": signal.SIGTERM, "sigint": signal.SIGINT}


@dataclass
class SyncProcesses:
    """``count`` background ``crmsync sync run`` processes, killed and restarted on demand."""

    work: Workdir
    count: int
    running: list[subprocess.Popen[str]] = field(default_factory=list)
    started: int = 0
    exits: dict[str, int] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)

    def _spawn(self) -> subprocess.Popen[str]:
        self.started += 1
        log = self.work.path / f"sync-run-{self.started}.log"
        self.logs.append(log)
        with log.open("w") as out:
            return subprocess.Popen(
                [CRMSYNC, "sync", "run"],
                cwd=self.work.path,
                env=self.work.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def start(self) -> None:
        """Start the processes that are not running."""
        self.running = [p for p in self.running if p.poll() is None]
        while len(self.running) < self.count:
            self.running.append(self._spawn())

    def kill_one(self, index: int, kind: str) -> None:
        """Send signal ``kind`` (a key of :data:`SIGNALS`) to process ``index`` and replace it.

        SIGTERM and SIGINT let the work in hand finish: the soak waits (up to a minute) for
        the process to end before starting its replacement.
        """
        self.running = [p for p in self.running if p.poll() is None]
        if not self.running:
            self.start()
        process = self.running[index % len(self.running)]
        process.send_signal(SIGNALS[kind])
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        code = process.returncode
        self.exits[str(code)] = self.exits.get(str(code), 0) + 1
        self.running.remove(process)
        self.start()

    def failures(self) -> list[str]:
        """The log tails of processes that ended on their own with an error."""
        found = []
        for process, log in zip(self.running, self.logs[-len(self.running) :], strict=False):
            if process.poll() not in (None, 0):
                found.append(log.read_text()[-2000:])
        return found

    def stop(self) -> None:
        """Stop every process with SIGTERM (the cycle in hand finishes)."""
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 120
        for process in self.running:
            try:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running = []
