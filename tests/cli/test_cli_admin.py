"""``crmsync admin create|token``: users for the admin UI and tokens for the admin API."""

from __future__ import annotations

from pathlib import Path

import typer
from cli_support import group_root
from sqlalchemy import select
from typer.testing import CliRunner

from crmsync.cli import admin as admin_cli
from crmsync.store.db import open_database, upgrade_database
from crmsync.store.tables import admin_users, audit_log
from crmsync.web.admin.users import AdminUserStore

runner = CliRunner()


def _root() -> typer.Typer:
    return group_root(admin_cli.app, "admin")


def _env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'admin.db'}"
    upgrade_database(url)
    return {"CRMSYNC_DATABASE_URL": url, "CRMSYNC_CONFIG": ""}


def test_create_prints_a_generated_password_once_that_signs_in(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = runner.invoke(_root(), ["admin", "create", "--email", "Ana@Example.com"], env=env)
    assert result.exit_code == 0, result.output
    assert "created admin ana@example.com" in result.stdout
    password = result.stdout.split("password (shown only now): ")[1].strip()
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        assert AdminUserStore(engine).authenticate("ana@example.com", password).role == "admin"
        with engine.connect() as conn:
            stored = conn.execute(select(admin_users.c.password_hash)).scalar_one()
            actions = conn.execute(select(audit_log.c.actor, audit_log.c.action)).all()
        assert password not in stored and stored.startswith("$argon2id$")
        assert actions == [("cli", "admin_user_created")]
    finally:
        engine.dispose()


def test_create_reads_a_password_from_stdin_and_refuses_bad_input(tmp_path: Path) -> None:
    env = _env(tmp_path)
    args = ["admin", "create", "--email", "v@example.com", "--role", "viewer", "--password-stdin"]
    result = runner.invoke(_root(), args, env=env, input="viewer-password-1\n")
    assert result.exit_code == 0 and "password" not in result.stdout
    again = runner.invoke(_root(), args, env=env, input="viewer-password-1\n")
    assert again.exit_code == 1 and "already a user" in again.output
    short = runner.invoke(
        _root(),
        ["admin", "create", "--email", "s@example.com", "--password-stdin"],
        env=env,
        input="short\n",
    )
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    bad_role = runner.invoke(
        _root(), ["admin", "create", "--email", "r@example.com", "--role", "root"], env=env
    )
    assert bad_role.exit_code == 2
    not_email = runner.invoke(_root(), ["admin", "create", "--email", "nobody"], env=env)
    assert not_email.exit_code == 1 and "e-mail address" in not_email.output


def test_token_prints_a_bearer_token_for_the_admin_api(tmp_path: Path) -> None:
    env = _env(tmp_path)
    runner.invoke(_root(), ["admin", "create", "--email", "ana@example.com"], env=env)
    result = runner.invoke(
        _root(), ["admin", "token", "--email", "ana@example.com", "--name", "ci"], env=env
    )
    assert result.exit_code == 0
    token = result.stdout.strip()
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        user = AdminUserStore(engine).user_of_token(token)
        assert user is not None and user.email == "ana@example.com"
    finally:
        engine.dispose()
    unknown = runner.invoke(_root(), ["admin", "token", "--email", "x@example.com"], env=env)
    assert unknown.exit_code == 1 and "no active user" in unknown.output
