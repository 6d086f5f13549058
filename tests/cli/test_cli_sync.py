"""``crmsync sync once|run|enable|disable|status|errors|retry`` against an emulator on
127.0.0.1 (B15, B16, B21, B37–B40, B44). Settings come from ``CRMSYNC_*`` variables, the
client secret included, as a deployment would give them.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from cli_support import dynamics_client, emulated_org_env, group_root
from sqlalchemy import select
from typer.testing import CliRunner

from crmsync.cli import sync as sync_cli
from crmsync.dynamics.types import LookupValue
from crmsync.emulator.config import (
    PluginRule,
    default_config,
)
from crmsync.marketing.activity_types import SYNC_LEAD_TO_MICROSOFT
from crmsync.marketing.persons import PersonService
from crmsync.store.db import open_database
from crmsync.store.tables import (
    activities,
    audit_log,
    crm_links,
    notifications,
    sales_persons,
)
from crmsync.sync.cursors import INITIAL_PHASE, set_cursor
from crmsync.sync.failures import ErrorReport, record_errors
from crmsync.sync.lease import SyncLease
from mail_support import Inbox

pytestmark = pytest.mark.e2e
runner = CliRunner()

RULE = PluginRule("lead", "telephone1", "regex", r"[0-9 +()-]*", "Business phone: digits only.")


def _root() -> typer.Typer:
    return group_root(sync_cli.app, "sync")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A seeded emulator over HTTP and the environment that points crmsync at it."""
    config = dataclasses.replace(default_config(), plugin_rules=(RULE,))
    with emulated_org_env(tmp_path, config, 8) as (environment, _):
        yield environment


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_once_runs_the_initial_sync_then_status_shows_it(env: dict[str, str]) -> None:
    """B15/B16/B40: `sync once --json` reports what it did; `sync status --json` shows the
    initial sync done, the last cycle and its requests, and the empty backlog."""
    report = _json(runner.invoke(_root(), ["sync", "once", "--json"], env=env))
    by_entity = {e["entity"]: e for e in report["entities"]}
    assert by_entity["lead"]["mode"] == "initial" and by_entity["lead"]["created"] == 8
    assert report["status"] == "ok" and report["records_synced"] > 8

    status = _json(runner.invoke(_root(), ["sync", "status", "--json"], env=env))
    assert status["enabled"] is False
    assert all(status["initial_sync_done"].values()) and len(status["initial_sync_done"]) == 6
    assert status["last_cycle_api_calls"] == report["api_calls"]
    assert status["records_synced_last_hour"] == report["records_synced"]
    assert status["backlog"] == []
    traffic = status["traffic_last_hour"]
    assert traffic == report["traffic"]
    assert sum(traffic["requests_by_kind"].values()) == report["api_calls"]
    assert traffic["requests_by_kind"]["track"] >= 6 and traffic["throttled"] == 0
    assert traffic["bytes_received"] > 0  # the reads; a read sends no body

    human = runner.invoke(_root(), ["sync", "status"], env=env)
    assert human.exit_code == 0 and "initial sync done for" in human.stdout
    assert "Dynamics traffic last hour: " in human.stdout and "0 throttled (429)" in human.stdout


def test_once_says_when_a_stopped_initial_read_could_not_be_resumed(
    env: dict[str, str],
) -> None:
    """B16: an initial read stopped on a page link that does not fit the current field
    selection starts again, and `sync once` says so under its table."""
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        with engine.begin() as conn:
            set_cursor(conn, "lead", "leads?$skiptoken=stale", phase=INITIAL_PHASE)
    finally:
        engine.dispose()
    result = runner.invoke(_root(), ["sync", "once"], env=env)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if line.startswith("lead: ")]
    assert len(notes) == 1 and "the initial read started again" in notes[0]


def test_enable_disable_are_audited_and_run_cycles_only_while_enabled(
    env: dict[str, str],
) -> None:
    """B21/B44: enable and disable are recorded in the audit trail; `sync run` cycles while
    enabled (pause from the settings)."""
    assert runner.invoke(_root(), ["sync", "enable"], env=env).exit_code == 0
    ran = runner.invoke(_root(), ["sync", "run", "--max-cycles", "2"], env=env)
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.count("cycle ok") == 2
    assert runner.invoke(_root(), ["sync", "disable"], env=env).exit_code == 0
    status = _json(runner.invoke(_root(), ["sync", "status", "--json"], env=env))
    assert status["enabled"] is False and status["cycles_last_hour"] == 2
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    with engine.connect() as conn:
        actions = conn.execute(select(audit_log.c.action).order_by(audit_log.c.id)).scalars()
        assert list(actions) == ["sync_enabled", "sync_disabled"]
    engine.dispose()


def test_errors_list_rejections_and_retry_queues_them(env: dict[str, str]) -> None:
    """B37–B39: a rejected person shows in `sync errors` with Dynamics' code; `sync retry ID`
    queues it again (the backlog shows it); a bad retry call is a usage error."""
    _json(runner.invoke(_root(), ["sync", "once", "--json"], env=env))
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    with engine.connect() as conn:
        person_id = conn.execute(
            select(crm_links.c.local_id).where(crm_links.c.entity == "lead").limit(1)
        ).scalar_one()
    PersonService(engine).sync([{"id": person_id, "phone": "not a phone"}], lookup_field="id")
    report = _json(runner.invoke(_root(), ["sync", "once", "--json"], env=env))
    assert report["push"]["failed"] == 1

    errors = _json(runner.invoke(_root(), ["sync", "errors", "--json"], env=env))
    assert [(e["local_id"], e["error_code"]) for e in errors] == [(person_id, "0x80040265")]
    assert "digits only" in errors[0]["message"]

    retried = runner.invoke(_root(), ["sync", "retry", str(errors[0]["id"])], env=env)
    assert retried.exit_code == 0 and "queued 1" in retried.stdout
    status = _json(runner.invoke(_root(), ["sync", "status", "--json"], env=env))
    assert [(b["entity"], b["pending_updates"]) for b in status["backlog"]] == [("lead", 1)]
    assert runner.invoke(_root(), ["sync", "retry"], env=env).exit_code == 2
    assert runner.invoke(_root(), ["sync", "retry", "999"], env=env).exit_code == 1
    with engine.connect() as conn:  # B44: the retry is in the audit trail, the refusals not
        audited = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.details).where(
                audit_log.c.action == "sync_errors_retried"
            )
        ).all()
    assert [(a.actor, a.details["errors"], a.details["queued"]) for a in audited] == [
        ("cli", [errors[0]["id"]], 1)
    ]
    engine.dispose()


def test_once_refuses_while_another_cycle_holds_the_lease(env: dict[str, str]) -> None:
    """One cycle at a time per database: a second `sync once` fails clearly (exit 1)."""
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    other = SyncLease(engine, seconds=60, holder="another-host:1")
    assert other.try_acquire()
    result = runner.invoke(_root(), ["sync", "once"], env=env)
    assert result.exit_code == 1
    assert "another sync cycle is running" in result.output
    other.release()
    engine.dispose()


def test_bad_connection_settings_are_a_clear_error(env: dict[str, str]) -> None:
    """B42: a refused secret fails the command with a message and never prints the secret."""
    wrong = {**env, "CRMSYNC_DYNAMICS_CLIENT_SECRET": "not-the-secret-123"}
    result = runner.invoke(_root(), ["sync", "once"], env=wrong)
    assert result.exit_code == 1
    assert "not-the-secret-123" not in result.output
    assert httpx.get(env["CRMSYNC_DYNAMICS_URL"] + "/_emulator/health").is_success

    # B41: the background loop stops on it and leaves a critical notification.
    assert runner.invoke(_root(), ["sync", "enable"], env=wrong).exit_code == 0
    stopped = runner.invoke(_root(), ["sync", "run"], env=wrong)
    assert stopped.exit_code == 1
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(select(notifications.c.severity, notifications.c.kind)).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("critical", "sync_stopped")]


def test_retry_of_an_incoming_failure_reads_the_record_again(env: dict[str, str]) -> None:
    """B38: a record that failed on its way in (direction to_marketing) is read again from
    Dynamics on the next cycle after `sync retry --all`, and its error closes once it syncs."""
    _json(runner.invoke(_root(), ["sync", "once", "--json"], env=env))
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    with engine.begin() as conn:
        crm_id = conn.execute(
            select(crm_links.c.crm_id).where(crm_links.c.entity == "lead").limit(1)
        ).scalar_one()
        record_errors(
            conn,
            [ErrorReport("lead", "to_marketing", "update", None, None, crm_id, "X1", "bad value")],
        )
    assert len(_json(runner.invoke(_root(), ["sync", "errors", "--json"], env=env))) == 1
    assert runner.invoke(_root(), ["sync", "retry", "--all"], env=env).exit_code == 0
    report = _json(runner.invoke(_root(), ["sync", "once", "--json"], env=env))
    assert report["api_calls"] >= 7  # the six delta reads plus the record read again
    assert _json(runner.invoke(_root(), ["sync", "errors", "--json"], env=env)) == []
    engine.dispose()


def test_person_syncs_a_marketing_only_person_to_dynamics_once(env: dict[str, str]) -> None:
    """B31/B33: `sync person ID --owner USER` queues a lead for a person without one; the
    next cycle creates it in Dynamics with the person's values, owned by that sales user.
    Asking again, or asking for a contact, does nothing; an unknown person or owner is
    refused and nothing is queued."""
    assert runner.invoke(_root(), ["sync", "once"], env=env).exit_code == 0
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        (outcome,) = PersonService(engine).sync(
            [{"email": "walk.in@example.com", "firstName": "Walk", "lastName": "In"}]
        )
    finally:
        engine.dispose()
    person_id = outcome.id
    assert person_id is not None

    refused = runner.invoke(_root(), ["sync", "person", str(person_id), "999999"], env=env)
    assert refused.exit_code == 1 and "no person 999999" in refused.stderr
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            seller = (
                conn.execute(
                    select(sales_persons.c.externalSalesPersonId).order_by(sales_persons.c.id)
                )
                .scalars()
                .first()
            )
    finally:
        engine.dispose()
    assert seller is not None
    nobody = runner.invoke(
        _root(), ["sync", "person", str(person_id), "--owner", "not-a-user"], env=env
    )
    assert nobody.exit_code == 1 and "no sales user 'not-a-user'" in nobody.stderr
    (queued,) = _json(
        runner.invoke(
            _root(), ["sync", "person", str(person_id), "--owner", seller, "--json"], env=env
        )
    )
    assert queued["queued"] is True and queued["entity"] == "lead"
    again = runner.invoke(_root(), ["sync", "person", str(person_id), "--as", "contact"], env=env)
    assert again.exit_code == 0
    assert f"already has lead {queued['crm_id']}: nothing to do" in again.stdout

    report = _json(runner.invoke(_root(), ["sync", "once", "--json"], env=env))
    assert report["push"]["created"] == 1 and report["push"]["failed"] == 0

    with dynamics_client(env) as client:
        lead = client.get(
            "leads", queued["crm_id"], ["firstname", "lastname", "emailaddress1", "ownerid"]
        )
    assert (lead.values["firstname"], lead.values["lastname"]) == ("Walk", "In")
    assert lead.values["ownerid"] == LookupValue(seller, "systemuser")
    assert lead.values["emailaddress1"] == "walk.in@example.com"
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            links = (
                conn.execute(select(crm_links.c.crm_id).where(crm_links.c.local_id == person_id))
                .scalars()
                .all()
            )
            logged = conn.execute(
                select(activities.c.type_id, activities.c.attributes).where(
                    activities.c.person_id == person_id,
                    activities.c.type_id == SYNC_LEAD_TO_MICROSOFT,
                )
            ).all()
    finally:
        engine.dispose()
    assert links == [queued["crm_id"]]
    # Marketo logs the flow action as "Sync Person to Microsoft" on the person, once.
    assert [row.attributes["CRM Id"] for row in logged] == [queued["crm_id"]]


def test_run_mails_notifications_to_the_configured_recipients(
    env: dict[str, str], smtp_server: tuple[Inbox, int]
) -> None:
    """B41: with SMTP given through the environment, `sync run` e-mails what it raised
    (here: the initial sync done) to every recipient."""
    inbox, port = smtp_server
    mail_env = {
        **env,
        "CRMSYNC_SMTP_HOST": "127.0.0.1",
        "CRMSYNC_SMTP_PORT": str(port),
        "CRMSYNC_SMTP_SENDER": "crmsync@example.com",
        "CRMSYNC_SMTP_RECIPIENTS": "ops@example.com, admin@example.com",
    }
    assert runner.invoke(_root(), ["sync", "enable"], env=mail_env).exit_code == 0
    ran = runner.invoke(_root(), ["sync", "run", "--max-cycles", "1"], env=mail_env)
    assert ran.exit_code == 0, ran.output
    assert [m["Subject"] for m in inbox.messages] == ["[crmsync] info: Initial sync done"]
    assert inbox.recipients == [["ops@example.com", "admin@example.com"]]


def test_errors_can_be_searched_filtered_and_exported_as_csv(
    env: dict[str, str], tmp_path: Path
) -> None:
    """B39: browse, search (message, code or Dynamics id, any case) and export to CSV the
    failing records, with operation, direction, code, message and first/last seen."""
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        with engine.begin() as conn:
            record_errors(
                conn,
                [
                    ErrorReport(
                        "lead",
                        "to_crm",
                        "update",
                        "person",
                        1,
                        "aa-1",
                        "0x80044331",
                        'Business phone: digits only, "+1 555" refused',
                    ),
                    ErrorReport(
                        "contact",
                        "to_crm",
                        "create",
                        "person",
                        2,
                        "bb-2",
                        "0x80040237",
                        "A record with these values already exists",
                    ),
                    ErrorReport(
                        "lead",
                        "to_marketing",
                        "update",
                        None,
                        None,
                        "cc-3",
                        None,
                        "Value 100% too long\nfor city",
                    ),
                ],
            )
    finally:
        engine.dispose()

    def ids(*args: str) -> list[str]:
        rows = _json(runner.invoke(_root(), ["sync", "errors", "--json", *args], env=env))
        return sorted(str(r["crm_id"]) for r in rows)

    assert ids() == ["aa-1", "bb-2", "cc-3"]
    assert ids("--entity", "lead") == ["aa-1", "cc-3"]
    assert ids("--search", "DIGITS") == ["aa-1"]
    assert ids("--search", "0x80040237") == ["bb-2"]
    assert ids("--search", "bb-") == ["bb-2"]
    assert ids("--search", "100%") == ["cc-3"]  # a wildcard character is searched as typed
    assert ids("--search", "_") == []

    target = tmp_path / "errors.csv"
    exported = runner.invoke(_root(), ["sync", "errors", "--csv", str(target)], env=env)
    assert exported.exit_code == 0 and "exported 3 failing record(s)" in exported.stdout
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(sync_cli.ERROR_COLUMNS)
    by_id = {r["crm_id"]: r for r in rows}
    assert by_id["aa-1"]["message"] == 'Business phone: digits only, "+1 555" refused'
    assert by_id["cc-3"]["message"] == "Value 100% too long\nfor city"
    assert by_id["bb-2"]["operation"] == "create" and by_id["bb-2"]["error_code"] == "0x80040237"
    assert by_id["aa-1"]["first_seen"].startswith("20") and by_id["aa-1"]["last_seen"]
    stdout = runner.invoke(_root(), ["sync", "errors", "--csv", "-", "--search", "exists"], env=env)
    assert stdout.exit_code == 0
    assert [r["crm_id"] for r in csv.DictReader(stdout.stdout.splitlines())] == ["bb-2"]


def test_summaries_count_each_outcome_and_status_names_failed_records(
    env: dict[str, str],
) -> None:
    """A cycle's summary counts created, failed and skipped (with why) apart, never "0
    created" alone over what it dropped; `sync status` says the last cycle was ok with two
    records failed."""
    assert runner.invoke(_root(), ["sync", "once"], env=env).exit_code == 0
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        outcomes = PersonService(engine).sync(
            [
                {"email": "good@example.com", "lastName": "Good"},
                {"email": "bad.one@example.com", "lastName": "One", "leadSource": "Telepathy"},
                {"email": "bad.two@example.com", "lastName": "Two", "leadSource": "Smoke Signal"},
                {"email": "stays.here@example.com", "lastName": "Marketing Only"},
            ]
        )
    finally:
        engine.dispose()
    ids = [str(o.id) for o in outcomes[:3]]
    assert runner.invoke(_root(), ["sync", "person", *ids], env=env).exit_code == 0

    once = runner.invoke(_root(), ["sync", "once"], env=env, terminal_width=200)
    assert once.exit_code == 0, once.output
    text = " ".join(once.stdout.split())
    assert "sync cycle (ok, 2 records failed" in text
    assert (
        "to Dynamics: 1 created, 0 updated, 2 failed, "
        "1 skipped (1 marketing-only: no Dynamics lead or contact)"
    ) in text

    status = runner.invoke(_root(), ["sync", "status"], env=env, terminal_width=200)
    assert status.exit_code == 0
    assert ", ok, 2 records failed, " in status.stdout
    snapshot = _json(runner.invoke(_root(), ["sync", "status", "--json"], env=env))
    assert snapshot["last_cycle_failed"] == 2
