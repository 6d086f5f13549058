"""``crmsync fields dynamics|select`` against an emulator on 127.0.0.1 (B8–B14): an admin sees
the columns Dynamics has, selects a custom one after go-live, and the next cycle fills it for
every person (quick sync); the field is in the catalog and syncs both ways from then on."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from cli_support import dynamics_client, emulated_org_env
from sqlalchemy import select
from typer.testing import CliRunner

from crmsync.cli import fields as fields_cli
from crmsync.cli import notifications as notifications_cli
from crmsync.cli import sync as sync_cli
from crmsync.dynamics.types import WriteRequest
from crmsync.emulator.config import default_config
from crmsync.emulator.metadata import AttributeDef
from crmsync.marketing.persons import PersonService
from crmsync.store.db import open_database
from crmsync.store.tables import crm_links, field_selection, persons

pytestmark = pytest.mark.e2e
runner = CliRunner()


def _root() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _settings_root(ctx: typer.Context) -> None:
        ctx.obj = None

    root.add_typer(fields_cli.app, name="fields")
    root.add_typer(sync_cli.app, name="sync")
    root.add_typer(notifications_cli.app, name="notifications")
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


def _unread_kinds(env: dict[str, str]) -> set[str]:
    return {n["kind"] for n in _run(env, "notifications", "list", "--unread", "--json")}


def _first_lead(storage: Any) -> str:
    (lead_id,) = storage.execute("SELECT leadid FROM e_lead ORDER BY leadid LIMIT 1").fetchone()
    return str(lead_id)


def _lead_person(env: dict[str, str], lead_id: str) -> dict[str, Any]:
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            row = (
                conn.execute(
                    select(persons)
                    .join(crm_links, crm_links.c.local_id == persons.c.id)
                    .where(crm_links.c.entity == "lead", crm_links.c.crm_id == lead_id)
                )
                .mappings()
                .one()
            )
    finally:
        engine.dispose()
    return dict(row)


def test_selecting_a_custom_column_after_go_live_fills_it_and_syncs_it(
    org: tuple[dict[str, str], Any],
) -> None:
    env, app = org
    storage = app.state.storage
    _run(env, "sync", "once")  # go-live on the default selection
    columns = {c["attribute"]: c for c in _run(env, "fields", "dynamics", "lead", "--json")}
    assert columns["jobtitle"]["status"] == "selected"
    assert columns["jobtitle"]["marketing_field"] == "title"
    assert columns["new_tier"]["status"] is None and columns["new_tier"]["can_sync"] is True

    lead_id = _first_lead(storage)
    with dynamics_client(env) as client:
        (written,) = client.write_batch(
            [WriteRequest.update("lead", lead_id, {"new_tier": "Gold"})]
        )
    assert written.ok

    refused = runner.invoke(_root(), ["fields", "select", "lead", "--add", "new_nope"], env=env)
    said = " ".join(refused.stderr.split())  # the console wraps long lines
    assert refused.exit_code == 1 and "no column new_nope" in said
    assert "never creates fields in Dynamics" in said
    saved = _run(env, "fields", "select", "lead", "--add", "new_tier")
    assert "added new_tier" in saved and "quick sync" in saved
    catalog = {f["name"]: f for f in _run(env, "fields", "list", "--json")}
    assert catalog["newTier"]["dataType"] == "string" and catalog["newTier"]["length"] == 20

    report = _run(env, "sync", "once", "--json")
    lead = {e["entity"]: e for e in report["entities"]}["lead"]
    assert lead["mode"] == "delta" and report["push"]["sent"] == 0  # no full re-read
    person = _lead_person(env, lead_id)
    assert (person["custom"] or {}).get("newTier") == "Gold"
    selected = {
        c["attribute"]: c["status"]
        for c in _run(env, "fields", "dynamics", "lead", "--selected", "--json")
    }
    assert selected["new_tier"] == "selected"
    notices = [n["title"] for n in _run(env, "notifications", "list", "--json")]
    assert "Quick sync done: lead" in notices

    # both ways from now on: a marketing edit reaches Dynamics
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        PersonService(engine).sync([{"id": person["id"], "newTier": "Platinum"}], lookup_field="id")
    finally:
        engine.dispose()
    pushed = _run(env, "sync", "once", "--json")
    assert pushed["push"]["updated"] == 1
    assert storage.get("lead", lead_id)["new_tier"] == "Platinum"


def test_saving_clears_a_deleted_column_and_removing_keeps_values(
    org: tuple[dict[str, str], Any],
) -> None:
    env, app = org
    _run(env, "fields", "select", "lead")  # save the default selection as is
    _run(env, "sync", "once")
    lead_id = _first_lead(app.state.storage)
    title = _lead_person(env, lead_id)["title"]
    app.state.storage.remove_attribute("lead", "jobtitle")
    _run(env, "sync", "once")
    missing = {
        c["attribute"]: c["status"] for c in _run(env, "fields", "dynamics", "lead", "--json")
    }
    assert missing["jobtitle"] == "missing"
    assert "field_missing" in _unread_kinds(env)

    saved = _run(env, "fields", "select", "lead", "--remove", "address1_city")
    assert "removed address1_city" in saved
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            stored = set(
                conn.execute(
                    select(field_selection.c.attribute).where(field_selection.c.entity == "lead")
                ).scalars()
            )
    finally:
        engine.dispose()
    assert "jobtitle" not in stored and "address1_city" not in stored
    assert "field_missing" not in _unread_kinds(env)  # cleared with the missing state
    report = _run(env, "sync", "once", "--json")
    assert report["status"] == "ok"
    assert _lead_person(env, lead_id)["title"] == title  # marketing values are kept


def test_a_column_secured_from_the_sync_user_cannot_be_selected(tmp_path: Path) -> None:
    """B8: a secured column the sync user may not read is shown as unable to sync, and
    selecting it is refused (its empty reads would look like cleared values)."""
    config = dataclasses.replace(
        default_config(), secured_attributes=frozenset({("lead", "telephone1")})
    )
    with emulated_org_env(tmp_path, config, 2) as (env, _):
        columns = {c["attribute"]: c for c in _run(env, "fields", "dynamics", "lead", "--json")}
        refused = runner.invoke(
            _root(), ["fields", "select", "lead", "--add", "telephone1"], env=env
        )
    assert columns["telephone1"]["can_sync"] is False and columns["telephone1"]["status"] is None
    said = " ".join(refused.stderr.split())
    assert refused.exit_code == 1 and "telephone1 cannot be synced" in said
