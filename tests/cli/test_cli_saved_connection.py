"""The command line syncs and checks with the connection an admin saved on the Setup page: it
takes precedence over the ``[dynamics]`` settings of the file and environment (here a stale
secret), as it does in ``crmsync serve``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import emulated_org_env, group_root
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from typer.testing import CliRunner

from crmsync.cli import dynamics as dynamics_cli
from crmsync.cli import sync as sync_cli
from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET, default_config
from crmsync.settings import DynamicsSettings, Secret, load_settings
from crmsync.store.db import open_database
from crmsync.store.secret_box import SecretBox
from crmsync.store.tables import persons
from crmsync.sync.connection import ConnectionChange, save_connection

pytestmark = pytest.mark.e2e
runner = CliRunner()


def test_sync_once_uses_the_saved_connection(tmp_path: Path) -> None:
    with emulated_org_env(tmp_path, default_config(), 3) as (env, _app):
        env = {**env, "CRMSYNC_DYNAMICS_CLIENT_SECRET": "stale-secret-from-the-file"}
        refused = runner.invoke(group_root(sync_cli.app, "sync"), ["sync", "once"], env=env)
        assert refused.exit_code == 1

        _save_good_connection(env)
        engine = open_database(env["CRMSYNC_DATABASE_URL"])
        try:
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


def _save_good_connection(env: dict[str, str]) -> None:
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    box = SecretBox.of(load_settings(environ=env).database)  # the commands' own key
    try:
        change = ConnectionChange.checked(
            env["CRMSYNC_DYNAMICS_URL"], "", "adfs", DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET
        )
        current = DynamicsSettings(client_secret=Secret("stale-secret-from-the-file"))
        with engine.begin() as conn:
            save_connection(conn, current, change, actor="ana@example.com", box=box)
    finally:
        engine.dispose()


def test_dynamics_check_uses_the_saved_connection(tmp_path: Path) -> None:
    with emulated_org_env(tmp_path, default_config(), 3) as (env, _app):
        env = {**env, "CRMSYNC_DYNAMICS_CLIENT_SECRET": "stale-secret-from-the-file"}
        check = group_root(dynamics_cli.app, "dynamics")
        refused = runner.invoke(check, ["dynamics", "check", "--json"], env=env)
        assert refused.exit_code == 1
        (first, *_) = json.loads(refused.stdout)["checks"]
        assert first["ok"] is False  # the file's stale secret cannot sign in

        _save_good_connection(env)
        result = runner.invoke(check, ["dynamics", "check", "--json"], env=env)
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert document["ok"] is True
        assert all(item["ok"] for item in document["checks"])
        assert "using the connection saved on the Setup page" in result.stderr
        assert "stale-secret-from-the-file" not in result.output
        assert DEFAULT_APP_SECRET not in result.output


def test_dynamics_check_with_a_wrong_key_says_what_to_do(tmp_path: Path) -> None:
    with emulated_org_env(tmp_path, default_config(), 3) as (env, _app):
        _save_good_connection(env)
        key_file = SecretBox.of(load_settings(environ=env).database).key_file
        key_file.write_text(Fernet.generate_key().decode())
        check = group_root(dynamics_cli.app, "dynamics")
        result = runner.invoke(check, ["dynamics", "check"], env=env)
        assert result.exit_code == 1
        assert "cannot be decrypted with the key file" in result.stderr
        assert "Put the original key back" in result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert DEFAULT_APP_SECRET not in result.output
