"""The admin API: Bearer tokens, the same services as the pages, JSON errors, OpenAPI; and the
health, readiness and metrics endpoints."""

from __future__ import annotations

from admin_harness import ADMIN_EMAIL, VIEWER_EMAIL, AdminApp, SyncedAdmin
from sqlalchemy import select
from sync_harness import edit_person, person_by_crm_id

from crmsync.store.tables import audit_log, sync_outbox
from crmsync.sync.runner import is_enabled, set_enabled


def _bearer(admin: AdminApp, email: str) -> dict[str, str]:
    user = admin.users.by_email(email)
    assert user is not None
    return {"Authorization": f"Bearer {admin.users.create_token(user.id, 'test', actor='t')}"}


def test_the_api_needs_a_valid_token(admin_app: AdminApp) -> None:
    api = admin_app.browser()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        answer = api.get("/api/admin/v1/status", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"
    ok = api.get("/api/admin/v1/status", headers=_bearer(admin_app, ADMIN_EMAIL))
    assert ok.status_code == 200 and ok.json()["last_cycle_outcome"] is None


def test_a_disabled_users_tokens_stop_working(admin_sqlite: AdminApp) -> None:
    headers = _bearer(admin_sqlite, VIEWER_EMAIL)
    api = admin_sqlite.browser()
    assert api.get("/api/admin/v1/status", headers=headers).status_code == 200
    viewer = admin_sqlite.users.by_email(VIEWER_EMAIL)
    assert viewer is not None
    admin_sqlite.users.disable(viewer.id, actor="test")
    assert api.get("/api/admin/v1/status", headers=headers).status_code == 401


def test_switching_the_sync_needs_an_admins_token_and_is_audited(admin_app: AdminApp) -> None:
    set_enabled(admin_app.engine, True)
    api = admin_app.browser()
    refused = api.put(
        "/api/admin/v1/sync", json={"enabled": False}, headers=_bearer(admin_app, VIEWER_EMAIL)
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert is_enabled(admin_app.engine)
    done = api.put(
        "/api/admin/v1/sync", json={"enabled": False}, headers=_bearer(admin_app, ADMIN_EMAIL)
    )
    assert done.status_code == 200 and done.json() == {"enabled": False}
    assert not is_enabled(admin_app.engine)
    with admin_app.engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.actor, audit_log.c.action)).all()
    assert (ADMIN_EMAIL, "sync_disabled") in rows
    bad = api.put(
        "/api/admin/v1/sync", json={"enabled": "maybe"}, headers=_bearer(admin_app, ADMIN_EMAIL)
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"


def test_errors_people_and_retry_through_the_api(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    lead_id = synced_admin.org.alex().first_ids("leads", 1)[0]
    person = person_by_crm_id(admin.engine, "lead", lead_id)
    edit_person(admin.engine, int(str(person["id"])), phone="not a phone")
    synced_admin.cycle.run()
    api = admin.browser()
    headers = _bearer(admin, ADMIN_EMAIL)

    status = api.get("/api/admin/v1/status", headers=headers).json()
    assert status["last_cycle_outcome"] == "Partial: 1 record failed"
    assert status["open_errors"] == 1
    errors = api.get("/api/admin/v1/errors", headers=headers).json()
    assert [(e["person_id"], e["email"], e["error_code"]) for e in errors] == [
        (person["id"], person["email"], "0x80040265")
    ]
    found = api.get("/api/admin/v1/people", params={"q": person["email"]}, headers=headers).json()
    assert [p["id"] for p in found] == [person["id"]]
    detail = api.get(f"/api/admin/v1/people/{person['id']}", headers=headers).json()
    assert detail["fields"]["phone"] == "not a phone" and detail["open_errors"] == 1
    assert any(a["type_name"] == "Microsoft Sync Error" for a in detail["activities"])
    missing = api.get("/api/admin/v1/people/999999", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    for wrong in ({}, {"all": False}, {"error_ids": []}):
        refused = api.post("/api/admin/v1/errors/retry", json=wrong, headers=headers)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid"
    retried = api.post("/api/admin/v1/errors/retry", json={"all": True}, headers=headers)
    assert retried.json() == {"queued": 1}
    with admin.engine.connect() as conn:
        assert conn.execute(select(sync_outbox.c.person_id)).scalars().all() == [person["id"]]
    trail = api.get("/api/admin/v1/audit", headers=headers).json()
    assert trail[0]["action"] == "sync_errors_retried" and trail[0]["actor"] == ADMIN_EMAIL


def test_openapi_document_lists_every_route(admin_sqlite: AdminApp) -> None:
    document = admin_sqlite.browser().get("/api/admin/v1/openapi.json").json()
    assert document["info"]["title"] == "crmsync admin API"
    assert {
        "/status",
        "/sync",
        "/errors",
        "/errors/retry",
        "/people",
        "/people/{person_id}",
        "/notifications",
        "/audit",
        "/users",
    } <= set(document["paths"])


def test_health_readiness_and_metrics(admin_app: AdminApp) -> None:
    client = admin_app.browser()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    client.get("/admin/sign-in")
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "crmsync_sync_enabled 0.0" in metrics.text
    assert "crmsync_sync_open_errors 0.0" in metrics.text
    assert 'crmsync_http_request_duration_seconds_count{area="admin_ui"}' in metrics.text


def test_readiness_fails_on_an_outdated_schema(admin_sqlite: AdminApp) -> None:
    with admin_sqlite.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0004_cursor_phase'")
    ready = admin_sqlite.browser().get("/readyz")
    assert ready.status_code == 503 and "crmsync db upgrade" in ready.json()["reason"]


def test_a_search_for_digits_python_cannot_read_as_a_number_is_a_search(
    admin_sqlite: AdminApp,
) -> None:
    """'¹' and '²³' pass ``str.isdigit`` but not ``int``: they are searched as text, not a 500
    (found by the OpenAPI fuzz)."""
    api = admin_sqlite.browser()
    headers = _bearer(admin_sqlite, ADMIN_EMAIL)
    for text in ("¹", "²³", "12"):
        answer = api.get("/api/admin/v1/people", params={"q": text}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json() == []
    page = admin_sqlite.browser()
    assert page.get("/admin/people/¹", follow_redirects=False).status_code != 500
