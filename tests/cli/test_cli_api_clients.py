"""``crmsync api-client create/list/revoke`` (issue 2 §4: API clients with hashed secrets)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from crmsync.cli import api_clients
from crmsync.store.db import open_database
from crmsync.web.clients import ApiClientStore

runner = CliRunner()
CRMSYNC = str(Path(sys.executable).parent / "crmsync")


def _root() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _settings_root(ctx: typer.Context) -> None:
        ctx.obj = None

    root.add_typer(api_clients.app, name="api-client")
    return root


def test_create_prints_the_secret_once_and_list_never_shows_it(sqlite_database_url: str) -> None:
    """The secret printed at creation works for a token; ``list`` shows no secret."""
    env = {"CRMSYNC_DATABASE_URL": sqlite_database_url}
    created = runner.invoke(_root(), ["api-client", "create", "--name", "crm", "--json"], env=env)
    assert created.exit_code == 0, created.output
    document = json.loads(created.stdout)
    assert document["name"] == "crm"
    engine = open_database(sqlite_database_url)
    try:
        token = ApiClientStore(engine).issue_token(document["client_id"], document["client_secret"])
        assert token.expires_in == 3600
    finally:
        engine.dispose()
    listed = runner.invoke(_root(), ["api-client", "list", "--json"], env=env)
    assert listed.exit_code == 0
    assert document["client_secret"] not in listed.stdout
    rows = json.loads(listed.stdout)
    assert [(row["client_id"], row["revoked_at"]) for row in rows] == [
        (document["client_id"], None)
    ]
    table = runner.invoke(_root(), ["api-client", "list"], env=env)
    assert "crm" in table.stdout and "active" in table.stdout


def test_revoke_marks_the_client_revoked(sqlite_database_url: str) -> None:
    """``revoke`` stops a client; ``list`` then shows when."""
    env = {"CRMSYNC_DATABASE_URL": sqlite_database_url}
    created = runner.invoke(_root(), ["api-client", "create", "--name", "old", "--json"], env=env)
    client_id = json.loads(created.stdout)["client_id"]
    revoked = runner.invoke(_root(), ["api-client", "revoke", client_id], env=env)
    assert revoked.exit_code == 0, revoked.output
    rows = json.loads(runner.invoke(_root(), ["api-client", "list", "--json"], env=env).stdout)
    assert rows[0]["revoked_at"] is not None


def test_unknown_client_and_unmigrated_database_fail_with_exit_1(tmp_path: Path) -> None:
    """Errors reach the user as one line and exit code 1, naming the fix."""
    unmigrated = {"CRMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "PATH": ""}
    result = subprocess.run(
        [CRMSYNC, "api-client", "create", "--name", "x"],
        env=unmigrated,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "crmsync db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
