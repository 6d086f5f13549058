"""The Custom entities pages and admin API (B45): the tables that can be enabled are read from
Dynamics, one is enabled from the page (audited), the next cycle loads it and its detail page
shows its path, fields and records; disabling keeps the records; viewers look but cannot
change; the API enables a table (audited, said plainly when it cannot), lists, shows and
switches stored entities."""

from __future__ import annotations

import dataclasses

from admin_harness import ADMIN_EMAIL, VIEWER_EMAIL, VIEWER_PASSWORD, AdminApp, SyncedAdmin, text_of
from sqlalchemy import select
from starlette.routing import Mount
from sync_harness import engine_client

from crmsync.dynamics.client import DynamicsClient
from crmsync.errors import TransientServerError
from crmsync.store.tables import audit_log
from crmsync.sync.custom_entities import enable
from crmsync.web.admin.api import API_PREFIX
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


def _api_reaching_org(synced: SyncedAdmin) -> tuple[AdminApp, dict[str, str], dict[str, str]]:
    """The admin app whose API reads the synced org, an admin's and a viewer's token headers."""
    admin = synced.admin
    api = next(
        route.app
        for route in admin.app.routes
        if isinstance(route, Mount) and route.path == API_PREFIX
    )
    api.state.admin = dataclasses.replace(
        api.state.admin, dynamics_client=lambda: engine_client(synced.org.base)
    )
    headers = {}
    for email in (ADMIN_EMAIL, VIEWER_EMAIL):
        user = admin.users.by_email(email)
        assert user is not None
        headers[email] = f"Bearer {admin.users.create_token(user.id, 'api', actor='test')}"
    return (
        admin,
        {"Authorization": headers[ADMIN_EMAIL]},
        {"Authorization": headers[VIEWER_EMAIL]},
    )


def test_admin_api_enables_a_table_for_the_first_time(synced_admin: SyncedAdmin) -> None:
    visit = _visit(synced_admin)
    admin, headers, viewer = _api_reaching_org(synced_admin)
    api = admin.browser()
    assert api.get("/api/admin/v1/custom-entities", headers=headers).json() == []

    refused = api.post("/api/admin/v1/custom-entities", json={"name": "new_visit"}, headers=viewer)
    assert refused.status_code == 403
    unknown = api.post(
        "/api/admin/v1/custom-entities", json={"name": "new_nothing"}, headers=headers
    )
    assert unknown.status_code == 400
    assert "cannot be a custom entity" in unknown.json()["error"]["message"]
    bad_field = api.post(
        "/api/admin/v1/custom-entities",
        json={"name": "new_visit", "fields": ["new_missing"]},
        headers=headers,
    )
    assert bad_field.status_code == 400
    assert "no readable field named new_missing" in bad_field.json()["error"]["message"]
    assert api.get("/api/admin/v1/custom-entities", headers=headers).json() == []

    answer = api.post(
        "/api/admin/v1/custom-entities",
        json={"name": "new_visit", "fields": ["new_note"]},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    enabled = answer.json()
    assert enabled["enabled"] is True and enabled["phase"] == "waiting"
    assert enabled["path"] == "new_visit.new_projectid → new_project.new_contactid → contact"
    assert enabled["fields"] == ["new_projectid", "new_note"]
    with admin.engine.connect() as conn:
        audited = conn.execute(
            select(audit_log.c.actor, audit_log.c.details).where(
                audit_log.c.action == "custom_entity_enabled"
            )
        ).all()
    assert [(actor, details["entity"]) for actor, details in audited] == [
        (ADMIN_EMAIL, "new_visit")
    ]

    synced_admin.cycle.run()
    detail = api.get("/api/admin/v1/custom-entities/new_visit", headers=headers).json()
    assert (detail["records"], detail["linked"], detail["phase"]) == (1, 1, "changes")
    assert detail["recent"][0]["crm_id"] == visit
    values = detail["recent"][0]["values"]
    assert sorted(values) == ["new_note", "new_projectid"] and values["new_note"] == "Site tour"


def test_admin_api_says_why_a_table_cannot_be_enabled(synced_admin: SyncedAdmin) -> None:
    with engine_client(synced_admin.org.base) as client:
        create_visit_tables(client.http, client.service_root, visit_tracked=False)
    admin, headers, _ = _api_reaching_org(synced_admin)
    api = admin.browser()
    untracked = api.post(
        "/api/admin/v1/custom-entities", json={"name": "new_visit"}, headers=headers
    )
    assert untracked.status_code == 409
    assert untracked.json()["error"]["code"] == "change_tracking_off"
    assert "change tracking is off for new_visit" in untracked.json()["error"]["message"]

    api_app = next(
        route.app
        for route in admin.app.routes
        if isinstance(route, Mount) and route.path == API_PREFIX
    )
    api_app.state.admin = dataclasses.replace(api_app.state.admin, dynamics_client=_unreachable)
    offline = api.post(
        "/api/admin/v1/custom-entities", json={"name": "new_project"}, headers=headers
    )
    assert offline.status_code == 503
    assert offline.json()["error"]["code"] == "dynamics_unavailable"
    assert "out of reach" in offline.json()["error"]["message"]
    assert api.get("/api/admin/v1/custom-entities", headers=headers).json() == []


def _unreachable() -> DynamicsClient:
    raise TransientServerError("the org is out of reach in this test")
