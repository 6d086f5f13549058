"""The Fields page (B8–B14, B46): the columns of a Dynamics table with their state, a column
ticked and saved (quick sync queued, audited), a sync rule changed, a refused choice shown with
its reason, nothing offered to create in Dynamics, and a clear message when Dynamics cannot be
reached."""

from __future__ import annotations

import dataclasses
import re

from admin_harness import ADMIN_EMAIL, VIEWER_EMAIL, AdminApp, SyncedAdmin, csrf_token, text_of
from sqlalchemy import select
from sync_harness import engine_client

from crmsync.store.tables import audit_log
from crmsync.sync.selection import stored_selection


def _reach_org(synced: SyncedAdmin) -> AdminApp:
    admin = synced.admin
    context = admin.app.state.admin
    admin.app.state.admin = dataclasses.replace(
        context, dynamics_client=lambda: engine_client(synced.org.base)
    )
    return admin


def _ticked(html: str) -> list[str]:
    """The columns a browser posts as they are: ticked checkboxes and hidden inputs."""
    found = []
    for tag in re.findall(r'<input [^>]*name="column"[^>]*>', html):
        value = re.search(r'value="([^"]+)"', tag)
        if value and ('type="hidden"' in tag or (" checked" in tag and " disabled" not in tag)):
            found.append(value.group(1))
    return found


def _row(text: str, logical: str) -> str:
    """The visible text of one column's row: its state tag, names and type."""
    at = text.index(f" {logical} ", text.index("Marketing field and rule"))  # the columns
    states = (
        "Not synced",
        "Synced",
        "Quick sync queued",
        "Quick sync running",
        "Missing in Dynamics",
        "Type changed in Dynamics",
        "Cannot sync",
    )
    begin = max(text.rfind(state, 0, at) for state in states)
    return text[begin : at + len(logical) + 1]


def test_fields_page_lists_columns_with_their_state(synced_admin: SyncedAdmin) -> None:
    admin = _reach_org(synced_admin)
    browser = admin.signed_in()
    html = admin.page(browser, "/admin/fields?entity=lead")
    text = text_of(html)
    assert text.startswith("Fields: lead") or "Fields: lead (" in text
    assert "Last Name lastname String" in text
    assert _row(text, "lastname").startswith("Synced")
    assert _row(text, "websiteurl").startswith("Not synced")
    # B10: the only forms are the selection and signing out; no button creates anything
    assert set(re.findall(r'<form [^>]*action="([^"]+)"', html)) == {
        "/admin/fields",  # the table chooser (GET) and the selection (POST)
        "/admin/sign-out",
    }
    assert not re.search(r"<button[^>]*>[^<]*[Cc]reate", html)


def test_ticking_a_column_queues_its_quick_sync_and_is_audited(synced_admin: SyncedAdmin) -> None:
    admin = _reach_org(synced_admin)
    browser = admin.signed_in()
    html = admin.page(browser, "/admin/fields?entity=lead")
    ticked = [*_ticked(html), "websiteurl"]
    assert "lastname" in ticked
    answer = browser.post(
        "/admin/fields",
        data={"csrf_token": csrf_token(html), "entity": "lead", "column": ticked},
    )
    assert answer.status_code == 303, text_of(answer.text)[:500]
    shown = text_of(admin.page(browser, answer.headers["location"]))
    assert "Selection of lead saved: 1 added." in shown
    assert _row(shown, "websiteurl").startswith("Quick sync queued")
    assert "Quick syncs of lead" in shown and "websiteurl Queued not started" in shown
    with admin.engine.connect() as conn:
        assert "websiteurl" in stored_selection(conn, "lead")
        actors = conn.execute(select(audit_log.c.actor)).scalars().all()
    assert ADMIN_EMAIL in actors


def test_a_rule_change_and_a_refused_mapping(synced_admin: SyncedAdmin) -> None:
    admin = _reach_org(synced_admin)
    browser = admin.signed_in()
    html = admin.page(browser, "/admin/fields?entity=lead")
    kept = _ticked(html)
    token = csrf_token(html)
    answer = browser.post(
        "/admin/fields",
        data={
            "csrf_token": token,
            "entity": "lead",
            "column": kept,
            "rule-jobtitle": "dynamics-wins",
            "blank-jobtitle": "on",
        },
    )
    assert answer.status_code == 303
    shown = admin.page(browser, "/admin/fields?entity=lead")
    assert '<option value="dynamics-wins" title' in shown.split('id="rule-jobtitle"')[1][:2000]
    refused = browser.post(
        "/admin/fields",
        data={
            "csrf_token": token,
            "entity": "lead",
            "column": [*kept, "websiteurl"],
            "field-websiteurl": "noSuchMarketingField",
        },
    )
    assert refused.status_code == 400
    assert "There is a problem" in text_of(refused.text)
    assert "noSuchMarketingField" in text_of(refused.text)
    with admin.engine.connect() as conn:
        assert "websiteurl" not in stored_selection(conn, "lead")


def test_viewers_cannot_save_and_an_unreachable_org_is_said(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin  # its settings name https://org.example.com, not reachable
    viewer = admin.signed_in(VIEWER_EMAIL, "vic-password-long")
    page = admin.page(viewer, "/admin/fields?entity=contact")
    assert "Dynamics could not be read" in text_of(page)
    assert "Setup page" in text_of(page)
    refused = viewer.post(
        "/admin/fields", data={"csrf_token": csrf_token(page), "entity": "contact"}
    )
    assert refused.status_code == 403
    bad = admin.signed_in().get("/admin/fields?entity=invoice")
    assert bad.status_code == 400 and "Choose one of the synced tables" in text_of(bad.text)
