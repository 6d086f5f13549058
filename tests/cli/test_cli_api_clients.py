"""``crmsync api-client create/list/revoke`` (issue 2 §4: API clients with hashed secrets)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from cli_support import group_root
from sqlalchemy import select
from typer.testing import CliRunner

from crmsync.cli import api_clients
from crmsync.errors import DatabaseNotMigratedError, RecordNotFoundError
from crmsync.store import tables
from crmsync.store.db import open_database, upgrade_database
from crmsync.web.clients import ApiClientStore

runner = CliRunner()


def _root() -> typer.Typer:
    return group_root(api_clients.app, "api-client")


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
    """``revoke`` stops a client; ``list`` shows when; both acts are in the audit trail."""
    env = {"CRMSYNC_DATABASE_URL": sqlite_database_url}
    created = runner.invoke(_root(), ["api-client", "create", "--name", "old", "--json"], env=env)
    client_id = json.loads(created.stdout)["client_id"]
    revoked = runner.invoke(_root(), ["api-client", "revoke", client_id], env=env)
    assert revoked.exit_code == 0, revoked.output
    rows = json.loads(runner.invoke(_root(), ["api-client", "list", "--json"], env=env).stdout)
    assert rows[0]["revoked_at"] is not None
    engine = open_database(sqlite_database_url)
    try:
        with engine.connect() as conn:
            audit = conn.execute(
                select(tables.audit_log.c.action, tables.audit_log.c.details).order_by(
                    tables.audit_log.c.id
                )
            ).all()
    finally:
        engine.dispose()
    assert [(action, details["client_id"]) for action, details in audit] == [
        ("api_client_created", client_id),
        ("api_client_revoked", client_id),
    ]
    assert json.loads(created.stdout)["client_secret"] not in repr(audit)


def test_unmigrated_database_and_unknown_client_are_refused(tmp_path: Path) -> None:
    """Errors name their fix: an unmigrated database, a client id that does not exist."""
    env = {"CRMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = runner.invoke(_root(), ["api-client", "create", "--name", "x"], env=env)
    assert isinstance(result.exception, DatabaseNotMigratedError)
    assert "crmsync db upgrade" in result.exception.message
    upgrade_database(env["CRMSYNC_DATABASE_URL"])
    missing = runner.invoke(_root(), ["api-client", "revoke", "no-such-client"], env=env)
    assert isinstance(missing.exception, RecordNotFoundError)
    assert "no-such-client" in missing.exception.message
