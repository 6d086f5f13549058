"""The command line syncs with the connection an admin saved on the Setup page: it takes
precedence over the ``[dynamics]`` settings of the file and environment (here a stale
secret), as it does in ``crmsync serve``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import emulated_org_env, group_root
from sqlalchemy import func, select
from typer.testing import CliRunner

from crmsync.cli import sync as sync_cli
from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET, default_config
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.db import open_database
from crmsync.store.tables import persons
from crmsync.sync.connection import ConnectionChange, save_connection

pytestmark = pytest.mark.e2e
runner = CliRunner()


def test_sync_once_uses_the_saved_connection(tmp_path: Path) -> None:
    with emulated_org_env(tmp_path, default_config(), 3) as (env, _app):
        env = {**env, "CRMSYNC_DYNAMICS_CLIENT_SECRET": "stale-secret-from-the-file"}
        refused = runner.invoke(group_root(sync_cli.app, "sync"), ["sync", "once"], env=env)
        assert refused.exit_code == 1

        engine = open_database(env["CRMSYNC_DATABASE_URL"])
        try:
            change = ConnectionChange.checked(
                env["CRMSYNC_DYNAMICS_URL"], "", "adfs", DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET
            )
            current = DynamicsSettings(client_secret=Secret("stale-secret-from-the-file"))
            with engine.begin() as conn:
                save_connection(conn, current, change, actor="ana@example.com")
            result = runner.invoke(
                group_root(sync_cli.app, "sync"), ["sync", "once", "--json"], env=env
            )
            assert result.exit_code == 0, result.output
            assert json.loads(result.output)["status"] == "ok"
            with engine.connect() as conn:
                synced = conn.execute(select(func.count()).select_from(persons)).scalar_one()
            assert synced >= 3
        finally:
            engine.dispose()
