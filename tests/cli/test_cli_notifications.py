"""``crmsync notifications list|read`` (B41): what the sync raised, newest first, read or not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import group_root
from typer.testing import CliRunner

from crmsync.cli import notifications as notifications_cli
from crmsync.store.db import open_database, upgrade_database
from crmsync.sync.history import notify

runner = CliRunner()
ROOT = group_root(notifications_cli.app, "notifications")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    upgrade_database(url)
    engine = open_database(url)
    try:
        with engine.begin() as conn:
            for severity, title in (
                ("info", "Initial sync done"),
                ("critical", "Field lead.jobtitle was deleted in Dynamics"),
            ):
                notify(
                    conn,
                    severity=severity,
                    kind="test",
                    title=title,
                    message=f"Details of {title}.",
                    dedupe_key=title,
                )
    finally:
        engine.dispose()
    return {"CRMSYNC_DATABASE_URL": url, "CRMSYNC_CONFIG": ""}


def _list(env: dict[str, str], *args: str) -> list[dict[str, object]]:
    result = runner.invoke(ROOT, ["notifications", "list", "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_list_shows_newest_first_with_the_message(env: dict[str, str]) -> None:
    rows = _list(env)
    assert [r["title"] for r in rows] == [
        "Field lead.jobtitle was deleted in Dynamics",
        "Initial sync done",
    ]
    assert rows[0]["severity"] == "critical" and rows[0]["read_at"] is None
    assert rows[0]["emailed_at"] is None
    human = runner.invoke(ROOT, ["notifications", "list"], env=env)
    assert human.exit_code == 0
    assert "Details of Field lead.jobtitle was deleted in Dynamics." in human.stdout


def test_read_marks_one_then_all_and_unread_hides_them(env: dict[str, str]) -> None:
    newest = _list(env)[0]["id"]
    marked = runner.invoke(ROOT, ["notifications", "read", str(newest)], env=env)
    assert marked.exit_code == 0 and "marked 1 notification(s) as read" in marked.stdout
    assert [r["title"] for r in _list(env, "--unread")] == ["Initial sync done"]

    again = runner.invoke(ROOT, ["notifications", "read", str(newest)], env=env)
    assert again.exit_code == 1 and f"no unread notification {newest}" in again.stderr
    everything = runner.invoke(ROOT, ["notifications", "read", "--all"], env=env)
    assert everything.exit_code == 0 and "marked 1 notification(s)" in everything.stdout
    assert _list(env, "--unread") == []
    nothing = runner.invoke(ROOT, ["notifications", "list", "--unread"], env=env)
    assert "no notifications unread" in nothing.stdout


def test_read_needs_an_id_or_all(env: dict[str, str]) -> None:
    assert runner.invoke(ROOT, ["notifications", "read"], env=env).exit_code == 2
    assert runner.invoke(ROOT, ["notifications", "read", "1", "--all"], env=env).exit_code == 2
