"""``crmsync fields select --add COL=FIELD --rule COL=RULE`` and ``fields dynamics`` against an
emulator on 127.0.0.1: a Dynamics column mapped onto an existing marketing field fills it and
edits travel both ways; per-field sync rules (B46) are set, shown with display names, refused
with a clear message where they cannot apply, and every change is in the audit log."""

from __future__ import annotations

from typing import Any

import pytest
from cli_support import dynamics_client
from fields_support import first_lead, lead_person, run_ok, run_refused
from sqlalchemy import select

from crmsync.dynamics.types import WriteRequest
from crmsync.marketing.persons import PersonService
from crmsync.store.db import open_database
from crmsync.store.tables import audit_log

pytestmark = pytest.mark.e2e


def _audit(env: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(audit_log.c.action, audit_log.c.details).order_by(audit_log.c.id)
            ).all()
    finally:
        engine.dispose()
    return [(str(action), dict(details)) for action, details in rows]


def test_a_column_mapped_onto_an_existing_field_fills_it_and_syncs_both_ways(
    fields_org: tuple[dict[str, str], Any],
) -> None:
    env, app = fields_org
    storage = app.state.storage
    run_ok(env, "sync", "once")  # go-live on the default selection
    lead_id = first_lead(storage)
    website = storage.get("lead", lead_id)["websiteurl"]
    assert website and lead_person(env, lead_id)["website"] is None

    said = run_refused(env, "fields", "select", "lead", "--add", "websiteurl=leadScore")
    assert "websiteurl holds String values" in said and "leadScore is of type" in said
    said = run_refused(env, "fields", "select", "lead", "--add", "websiteurl=homePage")
    assert "no marketing field 'homePage'" in said
    said = run_refused(env, "fields", "select", "lead", "--add", "description=website")
    assert "holds Memo values" in said
    said = run_refused(env, "fields", "select", "lead", "--add", "websiteurl=title")
    assert "jobtitle and websiteurl both map to the marketing field 'title'" in said

    saved = run_ok(env, "fields", "select", "lead", "--add", "websiteurl=website", "--json")
    assert saved["added"] == {"websiteurl": "website"} and saved["quickSync"] is True
    catalog = {f["name"] for f in run_ok(env, "fields", "list", "--json")}
    assert "websiteurl" not in catalog  # no new field beside the existing one
    columns = {c["attribute"]: c for c in run_ok(env, "fields", "dynamics", "lead", "--json")}
    assert columns["websiteurl"]["marketing_field"] == "website"
    assert columns["websiteurl"]["display_name"] == "Website"
    assert columns["websiteurl"]["two_way"] is True

    run_ok(env, "sync", "once")  # the quick sync fills the existing field
    person = lead_person(env, lead_id)
    assert person["website"] == website

    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        outcome = PersonService(engine).sync(
            [{"id": person["id"], "website": "https://marketing.example"}], lookup_field="id"
        )
        assert outcome[0].status == "updated"
    finally:
        engine.dispose()
    pushed = run_ok(env, "sync", "once", "--json")
    assert pushed["push"]["updated"] == 1
    assert storage.get("lead", lead_id)["websiteurl"] == "https://marketing.example"

    with dynamics_client(env) as client:
        (written,) = client.write_batch(
            [WriteRequest.update("lead", lead_id, {"websiteurl": "https://dynamics.example"})]
        )
    assert written.ok
    run_ok(env, "sync", "once")
    assert lead_person(env, lead_id)["website"] == "https://dynamics.example"
    selected = [d for a, d in _audit(env) if a == "field_selected"]
    assert selected == [
        {"entity": "lead", "attribute": "websiteurl", "field": "website", "rule": "entity-default"}
    ]


def test_rules_are_set_shown_refused_where_they_cannot_apply_and_audited(
    fields_org: tuple[dict[str, str], Any],
) -> None:
    env, _ = fields_org
    help_text = run_ok(env, "fields", "select", "--help")
    for name in ("entity-default", "dynamics-wins", "marketing-wins", "never-blank"):
        assert name in help_text
    assert "dynamics-to-marketing" in help_text and "marketing-to-dynamics" in help_text

    saved = run_ok(env, "fields", "select", "lead", "--rule", "jobtitle=dynamics-wins")
    assert "jobtitle: dynamics-wins" in saved
    columns = {c["attribute"]: c for c in run_ok(env, "fields", "dynamics", "lead", "--json")}
    assert columns["jobtitle"]["sync_rule"] == "dynamics-wins"
    assert columns["jobtitle"]["display_name"] == "Job Title"
    assert columns["jobtitle"]["never_blank"] is False
    assert columns["telephone1"]["sync_rule"] == "entity-default"
    assert columns["websiteurl"]["sync_rule"] is None  # not selected
    wide = {**env, "COLUMNS": "250"}
    table = run_ok(wide, "fields", "dynamics", "lead", "--selected")
    assert "Job Title" in table and "dynamics-wins" in table

    saved = run_ok(
        env, "fields", "select", "lead", "--rule", "jobtitle=marketing-wins,never-blank", "--json"
    )
    assert saved["rules"] == {"jobtitle": "marketing-wins,never-blank"}
    selected = run_ok(env, "fields", "dynamics", "lead", "--selected", "--json")
    (jobtitle,) = [c for c in selected if c["attribute"] == "jobtitle"]
    assert (jobtitle["sync_rule"], jobtitle["never_blank"]) == ("marketing-wins", True)
    run_ok(env, "fields", "select", "lead", "--rule", "address1_city=dynamics-to-marketing")
    direction = run_ok(wide, "fields", "dynamics", "lead", "--selected")
    (city_row,) = [line for line in direction.splitlines() if "address1_city" in line]
    assert "from Dynamics" in city_row and "dynamics-to-marketing" in city_row
    (title_row,) = [line for line in direction.splitlines() if "jobtitle" in line]
    assert "both ways" in title_row and "Job Title" in title_row

    said = run_refused(env, "fields", "select", "lead", "--rule", "jobtitle=dynamics")
    assert "unknown sync rule 'dynamics'" in said and "marketing-to-dynamics" in said
    said = run_refused(env, "fields", "select", "lead", "--rule", "jobtitle")
    assert "write COL=RULE" in said
    said = run_refused(env, "fields", "select", "lead", "--rule", "leadid=marketing-wins")
    assert "lead.leadid syncs from Dynamics only" in said
    said = run_refused(env, "fields", "select", "account", "--rule", "name=marketing-to-dynamics")
    assert "account.name syncs from Dynamics only" in said
    said = run_refused(env, "fields", "select", "lead", "--rule", "websiteurl=dynamics-wins")
    assert "websiteurl is not selected" in said

    run_ok(env, "fields", "select", "lead", "--remove", "jobtitle")
    remapped = run_ok(env, "fields", "select", "lead", "--add", "fax=department", "--json")
    assert remapped["added"] == {"fax": "department"}
    audit = _audit(env)
    (mapped,) = [d for a, d in audit if a == "field_mapped"]
    assert (mapped["attribute"], mapped["previousField"], mapped["field"]) == (
        "fax",
        "fax",
        "department",
    )
    ruled = [d for a, d in audit if a == "field_rule_changed"]
    assert [(d["attribute"], d["previousRule"], d["rule"]) for d in ruled] == [
        ("jobtitle", "entity-default", "dynamics-wins"),
        ("jobtitle", "dynamics-wins", "marketing-wins,never-blank"),
        ("address1_city", "entity-default", "dynamics-to-marketing"),
    ]
    (deselected,) = [d for a, d in audit if a == "field_deselected"]
    assert deselected["attribute"] == "jobtitle" and deselected["field"] == "title"
