"""Shared by the CLI tests: one command group mounted under a root app, as ``crmsync`` does."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
import uvicorn

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.emulator.app import create_emulator_app
from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET, EmulatorConfig
from crmsync.emulator.seed import seed_dataset
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.db import upgrade_database


def group_root(group: typer.Typer, name: str) -> typer.Typer:
    """A root app with ``group`` mounted as ``name``.

    Its callback stores no ``--config`` path in the context, as ``crmsync`` without
    ``--config`` does, so the commands read their settings from the environment alone.
    """
    root = typer.Typer()

    @root.callback()
    def _settings_root(ctx: typer.Context) -> None:
        ctx.obj = None

    root.add_typer(group, name=name)
    return root


@contextmanager
def emulated_org_env(
    tmp_path: Path, config: EmulatorConfig, leads: int
) -> Iterator[tuple[dict[str, str], Any]]:
    """A seeded emulator over HTTP on 127.0.0.1, a migrated SQLite database, and the
    ``CRMSYNC_*`` environment that points crmsync at both (the client secret included, as a
    deployment gives it); yields the environment and the emulator app."""
    app = create_emulator_app(config)
    seed_dataset(app.state.storage, leads, 3)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_database(url)
    env = {
        "CRMSYNC_DATABASE_URL": url,
        "CRMSYNC_DYNAMICS_URL": base,
        "CRMSYNC_DYNAMICS_AUTHORITY": base,
        "CRMSYNC_DYNAMICS_AUTH_MODE": "adfs",
        "CRMSYNC_DYNAMICS_CLIENT_ID": DEFAULT_APP_CLIENT_ID,
        "CRMSYNC_DYNAMICS_CLIENT_SECRET": DEFAULT_APP_SECRET,
        "CRMSYNC_SYNC_PAUSE_SECONDS": "0",
        "CRMSYNC_CONFIG": "",
    }
    try:
        yield env, app
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.storage.close()


def dynamics_client(env: dict[str, str]) -> DynamicsClient:
    """A Dynamics client built from the ``CRMSYNC_DYNAMICS_*`` values of ``env``: to act in
    the emulated org over HTTP, or to read what the sync wrote there."""
    return build_client(
        DynamicsSettings(
            url=env["CRMSYNC_DYNAMICS_URL"],
            authority=env["CRMSYNC_DYNAMICS_AUTHORITY"],
            auth_mode=env["CRMSYNC_DYNAMICS_AUTH_MODE"],
            client_id=env["CRMSYNC_DYNAMICS_CLIENT_ID"],
            client_secret=Secret(env["CRMSYNC_DYNAMICS_CLIENT_SECRET"]),
        )
    )
