"""``crmsync fields dynamics|select`` against an emulator on 127.0.0.1 (B8–B14): an admin sees
the columns Dynamics has, selects a custom one after go-live, and the next cycle fills it for
every person (quick sync); the field is in the catalog and syncs both ways from then on."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from cli_support import dynamics_client, emulated_org_env
from fields_support import fields_root, first_lead, lead_person, run_ok, runner
from sqlalchemy import select

from crmsync.dynamics.types import WriteRequest
from crmsync.emulator.config import default_config
from crmsync.emulator.metadata import AttributeDef
from crmsync.marketing.persons import PersonService
from crmsync.store.db import open_database
from crmsync.store.tables import field_selection

pytestmark = pytest.mark.e2e


@pytest.fixture
def org(fields_org: tuple[dict[str, str], Any]) -> tuple[dict[str, str], Any]:
    """The shared org with a custom lead column created after go-live."""
    fields_org[1].state.storage.add_attribute(
        "lead", AttributeDef("new_tier", "String", "Tier", max_length=20, is_custom=True)
    )
    return fields_org


def _unread_kinds(env: dict[str, str]) -> set[str]:
    return {n["kind"] for n in run_ok(env, "notifications", "list", "--unread", "--json")}


def test_selecting_a_custom_column_after_go_live_fills_it_and_syncs_it(
    org: tuple[dict[str, str], Any],
) -> None:
    env, app = org
    storage = app.state.storage
    run_ok(env, "sync", "once")  # go-live on the default selection
    columns = {c["attribute"]: c for c in run_ok(env, "fields", "dynamics", "lead", "--json")}
    assert columns["jobtitle"]["status"] == "selected"
    assert columns["jobtitle"]["marketing_field"] == "title"
    assert columns["new_tier"]["status"] is None and columns["new_tier"]["can_sync"] is True

    lead_id = first_lead(storage)
    with dynamics_client(env) as client:
        (written,) = client.write_batch(
            [WriteRequest.update("lead", lead_id, {"new_tier": "Gold"})]
        )
    assert written.ok

    refused = runner.invoke(
        fields_root(), ["fields", "select", "lead", "--add", "new_nope"], env=env
    )
    said = " ".join(refused.stderr.split())  # the console wraps long lines
    assert refused.exit_code == 1 and "no column new_nope" in said
    assert "never creates fields in Dynamics" in said
    saved = run_ok(env, "fields", "select", "lead", "--add", "new_tier")
    assert "added new_tier" in saved and "quick sync" in saved
    catalog = {f["name"]: f for f in run_ok(env, "fields", "list", "--json")}
    assert catalog["newTier"]["dataType"] == "string" and catalog["newTier"]["length"] == 20

    report = run_ok(env, "sync", "once", "--json")
    lead = {e["entity"]: e for e in report["entities"]}["lead"]
    assert lead["mode"] == "delta" and report["push"]["sent"] == 0  # no full re-read
    person = lead_person(env, lead_id)
    assert (person["custom"] or {}).get("newTier") == "Gold"
    selected = {
        c["attribute"]: c["status"]
        for c in run_ok(env, "fields", "dynamics", "lead", "--selected", "--json")
    }
    assert selected["new_tier"] == "selected"
    notices = [n["title"] for n in run_ok(env, "notifications", "list", "--json")]
    assert "Quick sync done: lead" in notices

    # both ways from now on: a marketing edit reaches Dynamics
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        PersonService(engine).sync([{"id": person["id"], "newTier": "Platinum"}], lookup_field="id")
    finally:
        engine.dispose()
    pushed = run_ok(env, "sync", "once", "--json")
    assert pushed["push"]["updated"] == 1
    assert storage.get("lead", lead_id)["new_tier"] == "Platinum"


def test_saving_clears_a_deleted_column_and_removing_keeps_values(
    org: tuple[dict[str, str], Any],
) -> None:
    env, app = org
    run_ok(env, "fields", "select", "lead")  # save the default selection as is
    run_ok(env, "sync", "once")
    lead_id = first_lead(app.state.storage)
    title = lead_person(env, lead_id)["title"]
    app.state.storage.remove_attribute("lead", "jobtitle")
    run_ok(env, "sync", "once")
    missing = {
        c["attribute"]: c["status"] for c in run_ok(env, "fields", "dynamics", "lead", "--json")
    }
    assert missing["jobtitle"] == "missing"
    assert "field_missing" in _unread_kinds(env)

    saved = run_ok(env, "fields", "select", "lead", "--remove", "address1_city")
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
    report = run_ok(env, "sync", "once", "--json")
    assert report["status"] == "ok"
    assert lead_person(env, lead_id)["title"] == title  # marketing values are kept


def test_a_column_secured_from_the_sync_user_cannot_be_selected(tmp_path: Path) -> None:
    """B8: a secured column the sync user may not read is shown as unable to sync, and
    selecting it is refused (its empty reads would look like cleared values)."""
    config = dataclasses.replace(
        default_config(), secured_attributes=frozenset({("lead", "telephone1")})
    )
    with emulated_org_env(tmp_path, config, 2) as (env, _):
        columns = {c["attribute"]: c for c in run_ok(env, "fields", "dynamics", "lead", "--json")}
        refused = runner.invoke(
            fields_root(), ["fields", "select", "lead", "--add", "telephone1"], env=env
        )
    assert columns["telephone1"]["can_sync"] is False and columns["telephone1"]["status"] is None
    said = " ".join(refused.stderr.split())
    assert refused.exit_code == 1 and "telephone1 cannot be synced" in said
