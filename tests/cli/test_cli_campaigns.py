"""``crmsync campaigns``: create from TOML or JSON, list, show, activate, run, results."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from cli_support import group_root
from sqlalchemy import select
from typer.testing import CliRunner

from crmsync.cli import campaigns as campaigns_cli
from crmsync.marketing.campaigns.schedules import CampaignSchedules, ScheduledRun
from crmsync.marketing.persons import PersonService
from crmsync.store.db import open_database, upgrade_database
from crmsync.store.tables import audit_log

runner = CliRunner()

BATCH_TOML = """
name = "Tag the web leads"
type = "batch"

[smartList]
logic = "all"
filters = [{ field = "leadSource", operator = "is", values = ["Web"] }]

[[flow]]
type = "change_data_value"
field = "rating"
value = "Warm"
"""


def _root() -> typer.Typer:
    return group_root(campaigns_cli.app, "campaigns")


def _env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_database(url)
    return {"CRMSYNC_DATABASE_URL": url}


def test_create_run_and_read_results(tmp_path: Path) -> None:
    env = _env(tmp_path)
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    (web, other) = PersonService(engine).sync(
        [{"email": "w@example.com", "leadSource": "Web"}, {"email": "o@example.com"}]
    )
    definition = tmp_path / "batch.toml"
    definition.write_text(BATCH_TOML, encoding="utf-8")
    trigger = tmp_path / "trigger.json"
    trigger.write_text(
        json.dumps(
            {
                "name": "Welcome",
                "triggers": [{"type": "person_created"}],
                "flow": [{"type": "sync_person_to_microsoft", "syncAs": "contact"}],
            }
        ),
        encoding="utf-8",
    )

    created = runner.invoke(_root(), ["campaigns", "create", "--file", str(definition)], env=env)
    assert created.exit_code == 0, created.output
    assert "campaign 1 'Tag the web leads' created" in created.output
    assert (
        runner.invoke(_root(), ["campaigns", "create", "-f", str(trigger)], env=env).exit_code == 0
    )

    listed = runner.invoke(_root(), ["campaigns", "list", "--json"], env=env)
    assert [c["name"] for c in json.loads(listed.output)] == ["Tag the web leads", "Welcome"]
    shown = json.loads(runner.invoke(_root(), ["campaigns", "show", "1", "--json"], env=env).output)
    assert shown["smartListCount"] == 1 and shown["type"] == "batch"

    activated = runner.invoke(_root(), ["campaigns", "activate", "Welcome"], env=env)
    assert "is active" in activated.output
    refused = runner.invoke(_root(), ["campaigns", "activate", "1"], env=env)
    assert refused.exit_code == 1 and "only trigger campaigns are activated" in refused.output

    ran = runner.invoke(_root(), ["campaigns", "run", "Tag the web leads", "--wait"], env=env)
    assert ran.exit_code == 0, ran.output
    assert "1 person(s) queued" in ran.output
    results = json.loads(
        runner.invoke(_root(), ["campaigns", "results", "1", "--json"], env=env).output
    )
    assert [(r["personId"], r["status"]) for r in results] == [(web.id, "done")]
    found = PersonService(engine).get_by_ids([web.id, other.id], ["rating"])  # type: ignore[list-item]
    assert [p["rating"] for p in found] == ["Warm", None]
    with engine.connect() as conn:  # B44: every change, none of the refusals
        trail = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.details).order_by(
                audit_log.c.id
            )
        ).all()
    assert [(a.actor, a.action, a.details["campaign"]) for a in trail] == [
        ("cli", "campaign_created", 1),
        ("cli", "campaign_created", 2),
        ("cli", "campaign_activated", 2),
        ("cli", "campaign_run", 1),
    ]
    engine.dispose()


def test_bad_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    env = _env(tmp_path)
    broken = tmp_path / "broken.toml"
    broken.write_text("name = ", encoding="utf-8")
    result = runner.invoke(_root(), ["campaigns", "create", "--file", str(broken)], env=env)
    assert result.exit_code == 1 and "broken.toml is not valid toml" in result.output
    missing = runner.invoke(
        _root(), ["campaigns", "create", "--file", str(tmp_path / "nope.json")], env=env
    )
    assert missing.exit_code == 1 and "cannot read" in missing.output
    unknown = runner.invoke(_root(), ["campaigns", "show", "Nope"], env=env)
    assert unknown.exit_code == 1 and "campaign 'Nope' not found" in unknown.output


def test_update_edits_the_parts_in_the_file_and_is_audited(tmp_path: Path) -> None:
    """``campaigns update`` changes the smart list and flow given in the file, keeps the
    rest, says what changed, refuses a change of type and is audited."""
    env = _env(tmp_path)
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    (web, other) = PersonService(engine).sync(
        [{"email": "w@example.com", "leadSource": "Web"}, {"email": "o@example.com"}]
    )
    definition = tmp_path / "batch.toml"
    definition.write_text(BATCH_TOML, encoding="utf-8")
    assert (
        runner.invoke(_root(), ["campaigns", "create", "-f", str(definition)], env=env).exit_code
        == 0
    )
    edit = tmp_path / "edit.json"
    edit.write_text(
        json.dumps(
            {
                "smartList": {
                    "filters": [{"field": "email", "operator": "starts_with", "values": ["o@"]}]
                },
                "flow": [{"type": "change_data_value", "field": "rating", "value": "Cold"}],
            }
        ),
        encoding="utf-8",
    )
    updated = runner.invoke(
        _root(), ["campaigns", "update", "Tag the web leads", "-f", str(edit)], env=env
    )
    assert updated.exit_code == 0, updated.output
    assert "campaign 1 'Tag the web leads' updated: smartList, flow" in updated.output
    again = runner.invoke(_root(), ["campaigns", "update", "1", "-f", str(edit)], env=env)
    assert again.exit_code == 0 and "updated: nothing" in again.output
    kind = tmp_path / "kind.json"
    kind.write_text(json.dumps({"type": "trigger"}), encoding="utf-8")
    refused = runner.invoke(_root(), ["campaigns", "update", "1", "-f", str(kind)], env=env)
    assert refused.exit_code == 1 and "cannot become a trigger campaign" in refused.output

    ran = runner.invoke(_root(), ["campaigns", "run", "1", "--wait"], env=env)
    assert ran.exit_code == 0, ran.output
    found = PersonService(engine).get_by_ids([web.id, other.id], ["rating"])  # type: ignore[list-item]
    assert [p["rating"] for p in found] == [None, "Cold"]
    with engine.connect() as conn:
        trail = conn.execute(
            select(audit_log.c.action, audit_log.c.details).order_by(audit_log.c.id)
        ).all()
    assert [(a.action, a.details.get("changed")) for a in trail] == [
        ("campaign_created", None),
        ("campaign_updated", ["smartList", "flow"]),
        ("campaign_run", None),
    ]
    engine.dispose()


def test_update_and_schedule_set_the_schedule_and_are_audited(tmp_path: Path) -> None:
    """``campaigns schedule`` and a ``[schedule]`` table in an update file go through the same
    checks; the update replaces the run not started yet, and both are audited."""
    env = _env(tmp_path)
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    definition = tmp_path / "batch.toml"
    definition.write_text(BATCH_TOML, encoding="utf-8")
    assert runner.invoke(_root(), ["campaigns", "create", "-f", str(definition)], env=env)
    scheduled = runner.invoke(
        _root(), ["campaigns", "schedule", "1", "--at", "2026-12-20T08:00Z"], env=env
    )
    assert scheduled.exit_code == 0, scheduled.output
    edit = tmp_path / "edit.toml"
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    edit.write_text(
        f"[schedule]\nrunAt = {start:%Y-%m-%dT%H:%M:%SZ}\neveryDays = 7\n", encoding="utf-8"
    )
    updated = runner.invoke(_root(), ["campaigns", "update", "1", "-f", str(edit)], env=env)
    assert updated.exit_code == 0, updated.output
    assert "updated: schedule" in updated.output
    assert CampaignSchedules(engine).pending(1) == [ScheduledRun(start, 7, None)]
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[schedule]\nrunAt = "soon"\n', encoding="utf-8")
    refused = runner.invoke(_root(), ["campaigns", "update", "1", "-f", str(wrong)], env=env)
    assert refused.exit_code == 1 and "must be a date-time" in refused.output
    with engine.connect() as conn:
        trail = conn.execute(
            select(audit_log.c.action, audit_log.c.details).order_by(audit_log.c.id)
        ).all()
    assert [(a.action, a.details.get("changed")) for a in trail] == [
        ("campaign_created", None),
        ("campaign_scheduled", None),
        ("campaign_updated", ["schedule"]),
    ]
    assert trail[1].details["runAt"] == "2026-12-20T08:00Z"
    engine.dispose()
