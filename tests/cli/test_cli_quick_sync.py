"""``crmsync fields quick-sync status|run`` and ``fields select --since/--until`` against an
emulator on 127.0.0.1 (B12): an admin selects a field after go-live, sees its quick sync
queued, cannot deselect it meanwhile, runs it, and sees it done with its counts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from cli_support import emulated_org_env
from typer.testing import CliRunner

from crmsync.cli import fields as fields_cli
from crmsync.cli import sync as sync_cli
from crmsync.emulator.config import default_config
from crmsync.emulator.metadata import AttributeDef

pytestmark = pytest.mark.e2e
runner = CliRunner()


def _root() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _settings_root(ctx: typer.Context) -> None:
        ctx.obj = None

    root.add_typer(fields_cli.app, name="fields")
    root.add_typer(sync_cli.app, name="sync")
    return root


@pytest.fixture
def org(tmp_path: Path) -> Iterator[tuple[dict[str, str], Any]]:
    with emulated_org_env(tmp_path, default_config(), 4) as (env, app):
        app.state.storage.add_attribute(
            "lead", AttributeDef("new_tier", "String", "Tier", max_length=20, is_custom=True)
        )
        yield env, app


def _run(env: dict[str, str], *args: str) -> Any:
    result = runner.invoke(_root(), list(args), env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_status_shows_a_queued_quick_sync_and_run_finishes_it(
    org: tuple[dict[str, str], Any],
) -> None:
    env, app = org
    assert "no quick sync yet" in _run(env, "fields", "quick-sync", "status")
    _run(env, "sync", "once")  # go-live
    saved = _run(env, "fields", "select", "lead", "--add", "new_tier")
    assert "quick sync" in saved
    [queued] = _run(env, "fields", "quick-sync", "status", "--json")
    assert queued["entity"] == "lead" and queued["fields"] == ["new_tier"]
    assert queued["state"] == "queued" and queued["done"] == 0

    refused = runner.invoke(_root(), ["fields", "select", "lead", "--remove", "new_tier"], env=env)
    said = " ".join(refused.stderr.split())
    assert refused.exit_code == 1
    assert "new_tier cannot be deselected while its quick sync is queued" in said
    assert "Traceback" not in refused.output

    [done] = _run(env, "fields", "quick-sync", "run", "--page-size", "3", "--json")
    leads = len(app.state.storage.execute("SELECT leadid FROM e_lead").fetchall())
    assert done["state"] == "done" and done["done"] == done["total"] == leads
    assert done["finishedAt"] is not None and done["ratePerSecond"] is not None
    table = " ".join(_run(env, "fields", "quick-sync", "status").split())
    assert "new_tier" in table and "done" in table and f"{leads} of {leads} (100%)" in table
    assert "no field is waiting" in _run(env, "fields", "quick-sync", "run")
    # now it can be deselected
    assert "removed new_tier" in _run(env, "fields", "select", "lead", "--remove", "new_tier")


def test_select_with_a_date_range_queues_a_ranged_quick_sync(
    org: tuple[dict[str, str], Any],
) -> None:
    env, _ = org
    _run(env, "sync", "once")
    bad = runner.invoke(
        _root(),
        [
            "fields",
            "select",
            "lead",
            "--add",
            "new_tier",
            "--since",
            "2026-03-01",
            "--until",
            "2026-02-01",
        ],
        env=env,
    )
    assert bad.exit_code == 1 and "ends" in bad.stderr and "before it starts" in bad.stderr
    _run(
        env,
        "fields",
        "select",
        "lead",
        "--add",
        "new_tier",
        "--since",
        "2026-01-01",
        "--until",
        "2026-01-31",
    )
    [job] = _run(env, "fields", "quick-sync", "status", "--json")
    assert job["modifiedSince"].startswith("2026-01-01T00:00:00")
    assert job["modifiedUntil"].startswith("2026-01-31T23:59:59")
