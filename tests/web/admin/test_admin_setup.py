"""The Setup page: the Dynamics connection with secrets reduced to "set", and Validate, which
runs the B43 checklist with a concrete fix for each failing line."""

from __future__ import annotations

import dataclasses

from admin_harness import DYNAMICS_SECRET, VIEWER_EMAIL, AdminApp, csrf_token, text_of
from sync_harness import engine_client, running_org

from crmsync.emulator.config import DEFAULT_CHANGE_TRACKING, default_config


def test_setup_shows_the_connection_but_never_the_secret(admin_sqlite: AdminApp) -> None:
    browser = admin_sqlite.signed_in()
    html = admin_sqlite.page(browser, "/admin/setup")
    text = text_of(html)
    assert "Organization URL https://org.example.com" in text
    assert "Client secret Set (never shown)" in text
    assert "Tenant Not set" in text
    assert DYNAMICS_SECRET not in html


def test_validate_lists_each_check_with_a_fix_for_failures(admin_sqlite: AdminApp) -> None:
    tracking = {**DEFAULT_CHANGE_TRACKING, "opportunity": False}
    config = dataclasses.replace(default_config(), change_tracking=tracking)
    with running_org(config, 2) as org:
        context = admin_sqlite.app.state.admin
        admin_sqlite.app.state.admin = dataclasses.replace(
            context, dynamics_client=lambda: engine_client(org.base)
        )
        viewer = admin_sqlite.signed_in(VIEWER_EMAIL, "vic-password-long")  # reads, may check
        html = admin_sqlite.page(viewer, "/admin/setup")
        answer = viewer.post("/admin/setup/validate", data={"csrf_token": csrf_token(html)})
    assert answer.status_code == 200
    text = text_of(answer.text)
    assert "Failed 1 of" in text and "checks failed" in text
    assert "connect and authenticate (WhoAmI) Passed" in text
    app_user = config.users[0]
    assert f"sync user {app_user.fullname}" in text  # by name, not its GUID
    assert app_user.systemuserid not in text
    assert "lead: change tracking Passed" in text
    assert (
        "opportunity: change tracking Failed disabled: enable Track changes on the table "
        "In Power Apps, open the opportunity table's properties, tick Track changes" in text
    )
    assert "Check again" in text


def test_validate_against_an_unreachable_org_fails_its_first_line(admin_sqlite: AdminApp) -> None:
    browser = admin_sqlite.signed_in()
    html = admin_sqlite.page(browser, "/admin/setup")
    answer = browser.post("/admin/setup/validate", data={"csrf_token": csrf_token(html)})
    assert answer.status_code == 200
    text = text_of(answer.text)
    assert "connect and authenticate (WhoAmI) Failed" in text
    assert "Check [dynamics] url" in text
    assert DYNAMICS_SECRET not in answer.text
    assert browser.post("/admin/setup/validate", data={}).status_code == 403  # no CSRF token
