"""The Custom entities pages and admin API (B45): the tables that can be enabled are read from
Dynamics, one is enabled from the page (audited), the next cycle loads it and its detail page
shows its path, fields and records; disabling keeps the records; viewers look but cannot
change; the API lists, shows and switches stored entities."""

from __future__ import annotations

import dataclasses

from admin_harness import ADMIN_EMAIL, VIEWER_EMAIL, VIEWER_PASSWORD, AdminApp, SyncedAdmin, text_of
from sqlalchemy import select
from sync_harness import engine_client

from crmsync.store.tables import audit_log
from crmsync.sync.custom_entities import enable
from custom_tables import create_row, create_visit_tables


def _reach_org(synced: SyncedAdmin) -> AdminApp:
    admin = synced.admin
    context = admin.app.state.admin
    admin.app.state.admin = dataclasses.replace(
        context, dynamics_client=lambda: engine_client(synced.org.base)
    )
    return admin


def _visit(synced: SyncedAdmin) -> str:
    with engine_client(synced.org.base) as client:
        http, root = client.http, client.service_root
        create_visit_tables(http, root)
        contact = http.get(f"{root}/contacts?$select=contactid&$top=1").json()["value"][0]
        project = create_row(
            http,
            root,
            "new_projects",
            {"new_name": "Alpha", "new_contactid@odata.bind": f"/contacts({contact['contactid']})"},
        )
        return create_row(
            http,
            root,
            "new_visits",
            {
                "new_name": "v1",
                "new_note": "Site tour",
                "new_projectid@odata.bind": f"/new_projects({project})",
            },
        )


def test_enable_from_the_page_load_show_and_disable(synced_admin: SyncedAdmin) -> None:
    visit = _visit(synced_admin)
    admin = _reach_org(synced_admin)
    browser = admin.signed_in()
    text = text_of(admin.page(browser, "/admin/custom-entities"))
    assert "No custom entity enabled yet." in text
    assert "new_visit Visit new_visit.new_projectid → new_project.new_contactid → contact" in text

    answer = admin.submit(
        browser, "/admin/custom-entities", "/admin/custom-entities/enable", name="new_visit"
    )
    assert answer.status_code == 303
    text = text_of(admin.page(browser, answer.headers["location"]))
    assert "new_visit enabled: the next sync cycle loads its records." in text
    assert "No records yet: the next sync cycle loads them." in text

    synced_admin.cycle.run()
    text = text_of(admin.page(browser, "/admin/custom-entities/new_visit"))
    assert "Reading changes (loaded" in text
    assert "Records 1 (1 linked, 0 deleted in Dynamics)" in text
    assert visit in text and "Site tour" in text
    assert "new_note Note string" in text

    answer = admin.submit(
        browser,
        "/admin/custom-entities/new_visit",
        "/admin/custom-entities/new_visit/enabled",
        enabled="false",
    )
    text = text_of(admin.page(browser, answer.headers["location"]))
    assert "new_visit disabled: its records stay." in text
    assert "Disabled: its records stay, no longer read" in text and "Site tour" in text
    with admin.engine.connect() as conn:
        actions = [a for (a,) in conn.execute(select(audit_log.c.action))]
    assert actions.count("custom_entity_enabled") == 1
    assert actions.count("custom_entity_disabled") == 1

    viewer = admin.signed_in(VIEWER_EMAIL, VIEWER_PASSWORD)
    html = admin.page(viewer, "/admin/custom-entities/new_visit")
    assert "Enable again" not in html
    refused = admin.submit(
        viewer,
        "/admin/custom-entities/new_visit",
        "/admin/custom-entities/new_visit/enabled",
        enabled="true",
    )
    assert refused.status_code == 403


def test_unknown_entity_and_unreachable_org_are_said(admin_app: AdminApp) -> None:
    browser = admin_app.signed_in()
    missing = browser.get("/admin/custom-entities/new_nothing")
    assert missing.status_code == 404
    assert "No custom entity called 'new_nothing'." in text_of(missing.text)
    text = text_of(admin_app.page(browser, "/admin/custom-entities"))
    assert "Dynamics could not be read" in text


def test_admin_api_lists_shows_and_switches(synced_admin: SyncedAdmin) -> None:
    _visit(synced_admin)
    admin = _reach_org(synced_admin)
    with engine_client(synced_admin.org.base) as client:
        enable(admin.engine, client, "new_visit")
    synced_admin.cycle.run()
    user = admin.users.by_email(ADMIN_EMAIL)
    assert user is not None
    token = admin.users.create_token(user.id, "api", actor="test")
    api = admin.browser()
    headers = {"Authorization": f"Bearer {token}"}
    (listed,) = api.get("/api/admin/v1/custom-entities", headers=headers).json()
    assert (listed["name"], listed["records"], listed["phase"]) == ("new_visit", 1, "changes")
    detail = api.get("/api/admin/v1/custom-entities/new_visit", headers=headers).json()
    assert detail["recent"][0]["values"]["new_note"] == "Site tour"
    switched = api.put(
        "/api/admin/v1/custom-entities/new_visit/enabled", json={"enabled": False}, headers=headers
    )
    assert switched.json() == {"enabled": False}
    missing = api.get("/api/admin/v1/custom-entities/new_nothing", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
