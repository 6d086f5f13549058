"""``crmsync db upgrade`` / ``crmsync db status`` (issue 2 §2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer
from cli_support import group_root
from typer.testing import CliRunner

from crmsync.cli import db
from crmsync.store.db import current_revision, head_revision, open_database

runner = CliRunner()


def _root() -> typer.Typer:
    return group_root(db.app, "db")


def test_status_then_upgrade_then_status(tmp_path: Path) -> None:
    """Status says the database needs migrating (exit 1), upgrade fixes it, status is 0."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"CRMSYNC_DATABASE_URL": url}
    before = runner.invoke(_root(), ["db", "status", "--json"], env=env)
    assert before.exit_code == 1
    assert json.loads(before.stdout)["up_to_date"] is False
    upgraded = runner.invoke(_root(), ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert "schema revision" in upgraded.stdout
    after = runner.invoke(_root(), ["db", "status", "--json"], env=env)
    assert after.exit_code == 0
    report = json.loads(after.stdout)
    assert report["up_to_date"] is True and report["current"] == report["head"]


def test_database_url_option_wins(tmp_path: Path) -> None:
    """--database-url overrides the configured URL."""
    target = tmp_path / "explicit.db"
    env = {"CRMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"}
    result = runner.invoke(
        _root(), ["db", "upgrade", "--database-url", f"sqlite:///{target}"], env=env
    )
    assert result.exit_code == 0 and target.exists()
    assert not (tmp_path / "other.db").exists()


def test_bad_url_is_a_clear_error(tmp_path: Path) -> None:
    """An unsupported URL fails with exit code 1 and a message, no traceback."""
    result = runner.invoke(_root(), ["db", "upgrade", "--database-url", "mysql://h/db"])
    assert result.exit_code == 1
    assert "unsupported database" in result.output
    assert "Traceback" not in result.output


def test_console_script_registers_db_group(tmp_path: Path) -> None:
    """The installed CLI exposes `db upgrade` (one subprocess: imports are slow)."""
    url = f"sqlite:///{tmp_path / 'script.db'}"
    result = subprocess.run(
        [sys.executable, "-c", "from crmsync.cli import main; main()", "db", "upgrade"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"CRMSYNC_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    engine = open_database(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_a_command_without_configuration_creates_no_database(tmp_path: Path) -> None:
    """Run with no configuration in an empty folder, a command refuses with how to configure
    and leaves no empty ``crmsync.db`` behind."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    crmsync = str(Path(sys.executable).parent / "crmsync")
    for command in (["sync", "status"], ["api-client", "list"], ["fields", "list"]):
        done = subprocess.run(
            [crmsync, *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        said = " ".join(done.stderr.split())
        assert "there is no database at crmsync.db" in said, said
        assert "--config" in said and "CRMSYNC_DATABASE_URL" in said
        assert "([database] url = ...)" in said  # brackets are text, not console markup
        assert "run `crmsync db upgrade` first" in said
        assert "Traceback" not in done.stderr
        assert list(tmp_path.iterdir()) == []
