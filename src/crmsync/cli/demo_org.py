"""The demo's Dynamics organization: the bundled Dataverse emulator, running inside the demo.

:func:`running_org` opens (and on first use seeds) the emulated org in a SQLite file, serves it
with uvicorn on a background thread of this process and stops it on exit, so the demo never
leaves a server process behind. :func:`write_demo_config` writes the ``crmsync.toml`` that
points crmsync's ``[dynamics]`` settings at it.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from crmsync.emulator.app import create_emulator_app
from crmsync.emulator.config import EmulatorConfig, load_emulator_config
from crmsync.emulator.errors import EmulatorConfigError
from crmsync.emulator.runtime import EmulatorRuntime
from crmsync.emulator.seed import planned_counts, seed_dataset
from crmsync.errors import ConfigurationError
from crmsync.settings import Secret

API_PATH = "/api/data/v9.2/"
DEFAULT_EMULATOR_PORT = 5580
_STARTUP_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class DemoOrg:
    """How to reach the running emulated org and who can sign in to it."""

    base_url: str
    tenant: str
    app_client_id: str
    app_client_secret: Secret
    public_client_id: str
    salesperson_upn: str
    salesperson_name: str
    salesperson_password: Secret
    seeded: Mapping[str, int]
    counts: Mapping[str, int]

    @property
    def web_api_url(self) -> str:
        """The Web API root, e.g. ``http://127.0.0.1:5580/api/data/v9.2/``."""
        return self.base_url + API_PATH


SeedProgress = Callable[[dict[str, int]], AbstractContextManager[Callable[[str, int], None]]]
"""Given the planned row counts, a context giving the per-batch callback ``(table, rows_done)``."""


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(512)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from exc
    return sock


def listen_with_fallback(port: int | None, default: int) -> socket.socket:
    """Bind ``port`` (0: any free one); with ``None`` try ``default``, then any free port."""
    if port is not None:
        return _listen(port)
    try:
        return _listen(default)
    except ConfigurationError:
        return _listen(0)


def _org_details(
    config: EmulatorConfig, base_url: str, seeded: dict[str, int], counts: dict[str, int]
) -> DemoOrg:
    app_user = next(user for user in config.users if user.kind == "application")
    seller = next(user for user in config.users if user.kind == "user")
    if app_user.client_id is None or seller.upn is None:
        raise ConfigurationError("the emulator configuration has no app user or salesperson")
    return DemoOrg(
        base_url=base_url,
        tenant=config.tenant,
        app_client_id=app_user.client_id,
        app_client_secret=Secret(config.secret_for(app_user).reveal()),
        public_client_id=config.public_client_id,
        salesperson_upn=seller.upn,
        salesperson_name=seller.fullname,
        salesperson_password=Secret(config.secret_for(seller).reveal()),
        seeded=seeded,
        counts=counts,
    )


def _serve_in_thread(app: Any, sock: socket.socket) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="demo-emulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + _STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ConfigurationError("the Dataverse emulator did not start")
        time.sleep(0.01)
    return server, thread


@contextmanager
def running_org(
    db_path: Path, port: int | None, leads: int, *, seed_progress: SeedProgress | None = None
) -> Iterator[DemoOrg]:
    """Serve the emulated org in ``db_path`` on 127.0.0.1 until the block ends.

    A new org is seeded with ``leads`` leads and proportional accounts, contacts,
    opportunities and salespeople (always the same rows); an existing one is served as it is.
    ``port`` 0 picks a free port; ``None`` tries 5580 and falls back to a free one.
    """
    try:
        config = load_emulator_config(None)
    except EmulatorConfigError as exc:  # the emulator's own error, told as crmsync's
        raise ConfigurationError(exc.message) from exc
    sock = listen_with_fallback(port, DEFAULT_EMULATOR_PORT)
    try:
        try:
            app = create_emulator_app(config, str(db_path), runtime=EmulatorRuntime(config))
        except (sqlite3.Error, OSError) as exc:
            raise ConfigurationError(f"cannot open the emulator database {db_path}: {exc}") from exc
        storage = app.state.storage
        try:
            seeded: dict[str, int] = {}
            if storage.count("lead") == 0:
                acting = next(u for u in config.users if u.kind == "application").systemuserid
                plan = planned_counts(leads).as_dict()
                bar = seed_progress(plan) if seed_progress else nullcontext(None)
                with bar as advance:
                    seeded = seed_dataset(
                        storage, leads, config.seed, acting_user=acting, progress=advance
                    ).as_dict()
            base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            counts = {table: storage.count(table) for table in planned_counts(0).as_dict()}
            org = _org_details(config, base_url, seeded, counts)
            server, thread = _serve_in_thread(app, sock)
            try:
                yield org
            finally:
                server.should_exit = True
                thread.join(10)
        finally:
            storage.close()
    finally:
        sock.close()


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def write_demo_config(
    directory: Path, database_url: str, org: DemoOrg, *, pause_seconds: float
) -> Path:
    """Write ``directory/crmsync.toml``: the demo database, the org, a short sync pause.

    The sync application's secret is a published test value of the emulator; it is kept in
    the file (readable by its owner only) so that ``crmsync --config`` commands work as they
    are, and is never printed.
    """
    path = directory / "crmsync.toml"
    lines = [
        "# Written by `crmsync demo`: the demo database and the local Dataverse emulator.",
        "[database]",
        f"url = {_toml_string(database_url)}",
        "",
        "[dynamics]",
        f"url = {_toml_string(org.base_url)}",
        f"authority = {_toml_string(org.base_url)}",
        f"tenant = {_toml_string(org.tenant)}",
        'auth_mode = "adfs"',
        f"client_id = {_toml_string(org.app_client_id)}",
        f"client_secret = {_toml_string(org.app_client_secret.reveal())}",
        "timeout_seconds = 30.0",
        "",
        "[sync]",
        f"pause_seconds = {float(pause_seconds)}",
        "lease_seconds = 60.0",
        "",
    ]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    os.chmod(path, 0o600)
    return path
