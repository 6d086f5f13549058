"""The admin API's Fields and Setup endpoints: the same services and checks as the pages, no
secret in any answer, viewers read but do not change, and a clear 503 when Dynamics cannot be
read."""

from __future__ import annotations

import dataclasses
from typing import Any

from admin_harness import ADMIN_EMAIL, DYNAMICS_SECRET, VIEWER_EMAIL, AdminApp, SyncedAdmin
from sqlalchemy import select
from starlette.routing import Mount
from sync_harness import engine_client

from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET
from crmsync.errors import TransientServerError
from crmsync.store.tables import audit_log
from crmsync.sync.connection import connection_in_effect
from crmsync.sync.selection import stored_selection
from crmsync.web.admin.api import API_PREFIX

BASE = API_PREFIX


def _bearer(admin: AdminApp, email: str) -> dict[str, str]:
    user = admin.users.by_email(email)
    assert user is not None
    return {"Authorization": f"Bearer {admin.users.create_token(user.id, 'test', actor='t')}"}


def _api(admin: AdminApp) -> Any:
    return next(
        route.app
        for route in admin.app.routes
        if isinstance(route, Mount) and route.path == API_PREFIX
    )


def _reach_org(synced: SyncedAdmin) -> AdminApp:
    api = _api(synced.admin)
    api.state.admin = dataclasses.replace(
        api.state.admin, dynamics_client=lambda: engine_client(synced.org.base)
    )
    return synced.admin


def test_columns_are_listed_with_type_and_state(synced_admin: SyncedAdmin) -> None:
    admin = _reach_org(synced_admin)
    answer = admin.browser().get(f"{BASE}/fields/lead", headers=_bearer(admin, VIEWER_EMAIL))
    assert answer.status_code == 200
    columns = {c["attribute"]: c for c in answer.json()}
    assert columns["lastname"]["display_name"] == "Last Name"
    assert columns["lastname"]["state"] == "synced"
    assert columns["lastname"]["marketing_field"] == "lastName"
    assert columns["websiteurl"]["state"] == "not_synced"
    assert columns["websiteurl"]["type"] == "String"


def test_saving_a_selection_queues_a_quick_sync_and_is_audited(synced_admin: SyncedAdmin) -> None:
    admin = _reach_org(synced_admin)
    client = admin.browser()
    viewer = client.put(
        f"{BASE}/fields/lead",
        json={"add": [{"column": "websiteurl"}]},
        headers=_bearer(admin, VIEWER_EMAIL),
    )
    assert viewer.status_code == 403
    answer = client.put(
        f"{BASE}/fields/lead",
        json={
            "add": [{"column": "websiteurl"}],
            "rules": {"lastname": {"rule": "dynamics-wins", "never_blank": True}},
        },
        headers=_bearer(admin, ADMIN_EMAIL),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "entity": "lead",
        "added": ["websiteurl"],
        "removed": [],
        "rules_changed": ["lastname"],
        "quick_sync": True,
    }
    listed = client.get(f"{BASE}/fields/lead", headers=_bearer(admin, ADMIN_EMAIL)).json()
    by_name = {c["attribute"]: c for c in listed}
    assert by_name["websiteurl"]["state"] == "quick_sync_queued"
    assert by_name["lastname"]["sync_rule"] == "dynamics-wins"
    assert by_name["lastname"]["never_blank"] is True
    with admin.engine.connect() as conn:
        assert "websiteurl" in stored_selection(conn, "lead")
        actors = conn.execute(select(audit_log.c.actor)).scalars().all()
    assert ADMIN_EMAIL in actors


def test_a_refused_selection_says_why_and_stores_nothing(synced_admin: SyncedAdmin) -> None:
    admin = _reach_org(synced_admin)
    answer = admin.browser().put(
        f"{BASE}/fields/lead",
        json={"add": [{"column": "nosuchcolumn"}]},
        headers=_bearer(admin, ADMIN_EMAIL),
    )
    assert answer.status_code == 400
    assert "nosuchcolumn" in answer.json()["error"]["message"]
    with admin.engine.connect() as conn:
        assert "nosuchcolumn" not in stored_selection(conn, "lead")


def test_fields_say_when_dynamics_cannot_be_read(admin_sqlite: AdminApp) -> None:
    api = _api(admin_sqlite)
    refused = "no route to the org (test)"

    def unreachable() -> Any:
        raise TransientServerError(refused)

    api.state.admin = dataclasses.replace(api.state.admin, dynamics_client=unreachable)
    answer = admin_sqlite.browser().get(
        f"{BASE}/fields/lead", headers=_bearer(admin_sqlite, ADMIN_EMAIL)
    )
    assert answer.status_code == 503
    assert answer.json()["error"]["message"] == f"Dynamics could not be read: {refused}"
    unknown = admin_sqlite.browser().get(
        f"{BASE}/fields/invoice", headers=_bearer(admin_sqlite, ADMIN_EMAIL)
    )
    assert unknown.status_code == 422


def test_the_connection_is_answered_without_secrets(admin_sqlite: AdminApp) -> None:
    answer = admin_sqlite.browser().get(
        f"{BASE}/setup/connection", headers=_bearer(admin_sqlite, VIEWER_EMAIL)
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "url": "https://org.example.com",
        "tenant": "",
        "authority": "https://login.microsoftonline.com",
        "auth_mode": "client_credentials",
        "client_id": "",
        "client_secret_set": True,
        "saved_by_admin": False,
        "secret_problem": None,
    }
    assert DYNAMICS_SECRET not in answer.text


def test_a_connection_change_is_validated_then_saved(synced_admin: SyncedAdmin) -> None:
    admin, org = synced_admin.admin, synced_admin.org
    client = admin.browser()
    body = {
        "url": org.base,
        "auth_mode": "adfs",
        "client_id": DEFAULT_APP_CLIENT_ID,
        "client_secret": "a-wrong-secret-5e6f",
    }
    # The org signs in through its own token endpoint (the ADFS authority).
    api = _api(admin)
    api.state.admin = dataclasses.replace(
        api.state.admin,
        dynamics=dataclasses.replace(api.state.admin.dynamics, authority=org.base),
    )
    viewer = client.put(f"{BASE}/setup/connection", json=body, headers=_bearer(admin, VIEWER_EMAIL))
    assert viewer.status_code == 403
    refused = client.put(f"{BASE}/setup/connection", json=body, headers=_bearer(admin, ADMIN_EMAIL))
    assert refused.status_code == 409
    assert refused.json()["saved"] is False
    assert refused.json()["checks"][0]["ok"] is False
    assert "a-wrong-secret-5e6f" not in refused.text

    body["client_secret"] = DEFAULT_APP_SECRET
    saved = client.put(f"{BASE}/setup/connection", json=body, headers=_bearer(admin, ADMIN_EMAIL))
    assert saved.status_code == 200, saved.text
    assert saved.json()["saved"] is True
    assert saved.json()["failed"] == 0
    assert DEFAULT_APP_SECRET not in saved.text
    effective = connection_in_effect(
        admin.engine, api.state.admin.dynamics, api.state.admin.secrets
    )
    assert effective.url == org.base and effective.client_id == DEFAULT_APP_CLIENT_ID

    checked = client.post(f"{BASE}/setup/validate", headers=_bearer(admin, VIEWER_EMAIL))
    assert checked.status_code == 200
    assert checked.json()["failed"] == 0 and checked.json()["passed"] >= 1

    bad = client.put(
        f"{BASE}/setup/connection",
        json={**body, "url": "contoso"},
        headers=_bearer(admin, ADMIN_EMAIL),
    )
    assert bad.status_code == 400
    assert "organization URL" in bad.json()["error"]["message"]
