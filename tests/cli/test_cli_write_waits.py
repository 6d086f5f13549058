"""The command line when the sync user lost the write privilege on leads: ``sync once`` says
the lead changes wait and why (not ``ok``), ``sync status`` (text and ``--json``) names the
wait and its fix, and ``dynamics check`` fails the write-privilege line with its fix; once the
privilege is granted again the next cycle sends the waiting change and everything clears."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from cli_support import emulated_org_env, group_root
from typer.testing import CliRunner

from crmsync.cli import dynamics as dynamics_cli
from crmsync.cli import sync as sync_cli
from crmsync.emulator.config import default_config
from crmsync.marketing.persons import PersonService
from crmsync.store.db import open_database
from crmsync.store.tables import crm_links
from crmsync.sync.validate import selected_columns

pytestmark = pytest.mark.e2e
runner = CliRunner()


@pytest.fixture
def org(tmp_path: Path) -> Iterator[tuple[dict[str, str], Any]]:
    with emulated_org_env(tmp_path, default_config(), 3) as (environment, app):
        yield environment, app


def _privileges(env: dict[str, str], app: Any, **change: list[str]) -> None:
    answer = httpx.patch(
        f"{env['CRMSYNC_DYNAMICS_URL']}/_emulator/privileges",
        json={"table": "lead", **change},
        headers={"X-Emulator-Key": app.state.config.admin_key.reveal()},
    )
    answer.raise_for_status()


def _run(group: typer.Typer, name: str, args: list[str], env: dict[str, str]) -> Any:
    return runner.invoke(group_root(group, name), [name, *args], env=env, terminal_width=300)


def _edit_a_lead_person(env: dict[str, str]) -> str:
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            person_id, lead_id = conn.execute(
                crm_links.select()
                .with_only_columns(crm_links.c.local_id, crm_links.c.crm_id)
                .where(crm_links.c.entity == "lead")
                .limit(1)
            ).one()
            assert selected_columns(conn) == {}  # no field selection saved: nothing to check
        (outcome,) = PersonService(engine).sync(
            [{"id": person_id, "title": "Waits for a grant"}], lookup_field="id"
        )
        assert outcome.status == "updated"
    finally:
        engine.dispose()
    return str(lead_id)


def test_sync_once_status_and_check_say_the_lead_writes_wait(
    org: tuple[dict[str, str], Any],
) -> None:
    env, app = org
    assert _run(sync_cli.app, "sync", ["once"], env).exit_code == 0
    _privileges(env, app, revoke=["write"])
    lead_id = _edit_a_lead_person(env)

    once = _run(sync_cli.app, "sync", ["once"], env)
    assert once.exit_code == 0, once.output
    text = " ".join(once.stdout.split())
    assert "sync cycle (partial" in text
    assert "1 waiting (writes to lead wait, permission lost: prvWriteLead missing)" in text

    status = _run(sync_cli.app, "sync", ["status"], env)
    words = " ".join(status.stdout.split())
    assert "writes to lead wait since" in words
    assert "permission lost: prvWriteLead missing; their changes stay queued." in words
    assert "Fix: Grant prvWriteLead at Organization depth" in words
    snapshot = json.loads(_run(sync_cli.app, "sync", ["status", "--json"], env).stdout)
    assert [w["entity"] for w in snapshot["writes_waiting"]] == ["lead"]
    assert snapshot["last_cycle_status"] == "partial"

    check = _run(dynamics_cli.app, "dynamics", ["check"], env)
    assert check.exit_code == 1
    lines = check.stdout.splitlines()
    failing = [n for n, line in enumerate(lines) if line.startswith("FAIL")]
    assert [lines[n] for n in failing] == [
        "FAIL lead: write privileges (create and update): missing prvWriteLead at Organization "
        "depth: marketing changes to lead records would wait"
    ]
    assert lines[failing[0] + 1].strip().startswith("fix: Add prvWriteLead at Organization")

    _privileges(env, app, grant=["write"])
    again = _run(sync_cli.app, "sync", ["once", "--json"], env)
    report = json.loads(again.stdout)
    assert report["status"] == "ok" and report["push"]["updated"] == 1
    assert app.state.storage.get("lead", lead_id)["jobtitle"] == "Waits for a grant"
    snapshot = json.loads(_run(sync_cli.app, "sync", ["status", "--json"], env).stdout)
    assert snapshot["writes_waiting"] == []
    assert _run(dynamics_cli.app, "dynamics", ["check"], env).exit_code == 0
