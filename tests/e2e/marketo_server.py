"""Start ``crmsync serve`` as a subprocess for the end-to-end Marketo tests.

The database is migrated with ``crmsync db upgrade`` and the API client made with
``crmsync api-client create --json``, exactly as a user would; the server listens on a free
port of 127.0.0.1 and prints its URL on its first line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from marketorestpython.client import MarketoClient

from crmsync.store.db import open_database, upgrade_database
from crmsync.web.clients import ApiClientStore

CRMSYNC = str(Path(sys.executable).parent / "crmsync")


@dataclass(frozen=True)
class RunningServer:
    """A running server's base URL and the credentials of its API client."""

    url: str
    client_id: str
    client_secret: str


def _run(args: list[str], env: Mapping[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [CRMSYNC, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@contextmanager
def running_server(
    workdir: Path, settings: Mapping[str, str] | None = None, *, setup_by_cli: bool = True
) -> Iterator[RunningServer]:
    """Migrate a SQLite database in ``workdir``, create a client, serve until the block ends.

    ``settings`` are extra ``CRMSYNC_*`` environment variables for the server. With
    ``setup_by_cli`` false the database and client are made in process (faster) rather than
    by ``crmsync db upgrade`` / ``crmsync api-client create``.
    """
    url = f"sqlite:///{workdir / 'crmsync.db'}"
    env = {**os.environ, "CRMSYNC_DATABASE_URL": url}
    if setup_by_cli:
        _run(["db", "upgrade"], env, workdir)
        created = json.loads(
            _run(["api-client", "create", "--name", "e2e", "--json"], env, workdir)
        )
    else:
        upgrade_database(url)
        engine = open_database(url)
        try:
            client = ApiClientStore(engine).create("e2e")
        finally:
            engine.dispose()
        created = {"client_id": client.client_id, "client_secret": client.client_secret.reveal()}
    process = subprocess.Popen(
        [CRMSYNC, "serve", "--host", "127.0.0.1", "--port", "0", "--no-sync"],
        env={**env, **(settings or {})},
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "serving on http://127.0.0.1:" not in line:
            detail = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"server did not start: {line}{detail}")
        url = line.split("serving on ", 1)[1].split()[0]
        yield RunningServer(url, created["client_id"], created["client_secret"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def marketo_client(server: RunningServer, secret: str | None = None) -> MarketoClient:
    """An unmodified ``MarketoClient`` pointed at ``server`` (spec marketo-rest §9.5)."""
    mc = MarketoClient(
        "000-AAA-000",
        client_id=server.client_id,
        client_secret=secret or server.client_secret,
        max_retry_time=20,
        requests_timeout=(3, 10),
    )
    mc.host = server.url
    return mc
