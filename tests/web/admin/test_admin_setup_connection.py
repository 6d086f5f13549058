"""Changing the Dynamics connection on the Setup page: checked against the new org before it is
saved, the secret write-only (never shown, never logged, blank keeps it; stored encrypted, and
asked for again when its key is wrong), admins only, CSRF, audited; the background sync of
``crmsync serve`` uses the new connection from its next cycle."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from admin_harness import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    VIEWER_EMAIL,
    VIEWER_PASSWORD,
    AdminApp,
    Clock,
    csrf_token,
    text_of,
)
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sync_harness import Org, running_org

from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET, default_config
from crmsync.settings import Settings, load_settings
from crmsync.store.db import open_database
from crmsync.store.key_values import set_sync_enabled
from crmsync.store.tables import audit_log, persons
from crmsync.sync.connection import connection_for, connection_in_effect
from crmsync.web.admin.users import AdminUserStore
from crmsync.web.app import create_app
from crmsync.web.background import BackgroundWork

WRONG_SECRET = "stale-secret-4d3c2b1a"


def _settings(url: str, org: Org, *, client_id: str, secret: str) -> Settings:
    """The file's connection: the emulated org, signed in through its token endpoint."""
    return load_settings(
        environ={},
        overrides={
            "database": {"url": url},
            "dynamics": {
                "url": org.base,
                "authority": org.base,
                "auth_mode": "adfs",
                "client_id": client_id,
                "client_secret": secret,
            },
            "sync": {"pause_seconds": 0.2},
        },
    )


@dataclass
class StaleSetup:
    """An app whose file names the right org with a wrong client id and secret."""

    admin: AdminApp
    org: Org


@pytest.fixture
def stale(sqlite_database_url: str) -> Iterator[StaleSetup]:
    engine = open_database(sqlite_database_url)
    with running_org(default_config(), 3) as org:
        settings = _settings(sqlite_database_url, org, client_id="not-the-app", secret=WRONG_SECRET)
        clock = Clock()
        app = create_app(settings, engine=engine, clock=clock)
        users: AdminUserStore = app.state.admin.users
        users.create(ADMIN_EMAIL, ADMIN_PASSWORD, "admin", actor="test")
        users.create(VIEWER_EMAIL, VIEWER_PASSWORD, "viewer", actor="test")
        yield StaleSetup(AdminApp(engine, settings, clock, app, users), org)
    engine.dispose()


def _post(admin: AdminApp, browser: TestClient, **fields: str) -> Any:
    token = csrf_token(admin.page(browser, "/admin/setup"))
    return browser.post("/admin/setup/connection", data={"csrf_token": token, **fields})


def _form(org: Org, **changes: str) -> dict[str, str]:
    values = {
        "url": org.base,
        "tenant": "",
        "auth_mode": "adfs",
        "client_id": DEFAULT_APP_CLIENT_ID,
        "client_secret": DEFAULT_APP_SECRET,
    }
    return {**values, **changes}


def test_a_working_connection_is_validated_saved_and_audited_without_its_secret(
    stale: StaleSetup, caplog: pytest.LogCaptureFixture
) -> None:
    admin, org = stale.admin, stale.org
    browser = admin.signed_in()
    token = csrf_token(admin.page(browser, "/admin/setup"))
    before = browser.post("/admin/setup/validate", data={"csrf_token": token})
    assert "connect and authenticate (WhoAmI) Failed" in text_of(before.text)

    with caplog.at_level(logging.DEBUG):
        answer = _post(admin, browser, **_form(org))
    assert answer.status_code == 200
    html = answer.text
    text = text_of(html)
    assert "Connection saved; the sync uses it from its next cycle." in text
    assert "connect and authenticate (WhoAmI) Passed" in text
    assert DEFAULT_APP_SECRET not in html
    assert DEFAULT_APP_SECRET not in caplog.text

    page = admin.page(browser, "/admin/setup")
    text = text_of(page)
    assert f"Client id {DEFAULT_APP_CLIENT_ID}" in text
    assert "Client secret Set (never shown)" in text
    assert "Saved on this page: it takes precedence over the [dynamics] section" in text
    assert DEFAULT_APP_SECRET not in page and WRONG_SECRET not in page

    # The pages that read Dynamics now use it: the Fields page lists the lead's columns.
    fields = admin.page(browser, "/admin/fields?entity=lead")
    assert "emailaddress1" in fields and "Dynamics could not be read" not in fields

    with admin.engine.connect() as conn:
        row = conn.execute(
            select(audit_log.c.actor, audit_log.c.details).where(
                audit_log.c.action == "dynamics_connection_changed"
            )
        ).one()
    assert row.actor == ADMIN_EMAIL
    assert row.details["client_id"] == DEFAULT_APP_CLIENT_ID
    assert row.details["client_secret"] == "changed"
    assert sorted(row.details["changed"]) == ["client_id", "client_secret"]
    assert DEFAULT_APP_SECRET not in str(row.details)


def test_a_connection_that_cannot_connect_is_not_saved(stale: StaleSetup) -> None:
    admin, org = stale.admin, stale.org
    browser = admin.signed_in()
    answer = _post(admin, browser, **_form(org, client_secret="still-wrong-secret-77"))
    assert answer.status_code == 400
    html = answer.text
    text = text_of(html)
    assert "Not saved: the new connection could not connect; see the first check." in text
    assert "connect and authenticate (WhoAmI) Failed" in text
    assert "still-wrong-secret-77" not in html
    # The form keeps what was typed, but never the secret.
    assert f'value="{DEFAULT_APP_CLIENT_ID}"' in html
    assert "Client id not-the-app" in text_of(admin.page(browser, "/admin/setup"))
    effective = connection_for(admin.engine, admin.settings)
    assert effective.client_secret.reveal() == WRONG_SECRET


def test_a_blank_secret_keeps_the_one_in_use(stale: StaleSetup) -> None:
    admin, org = stale.admin, stale.org
    browser = admin.signed_in()
    assert _post(admin, browser, **_form(org)).status_code == 200
    again = _post(admin, browser, **_form(org, tenant="contoso.example", client_secret=""))
    assert again.status_code == 200, text_of(again.text)
    effective = connection_for(admin.engine, admin.settings)
    assert effective.client_secret.reveal() == DEFAULT_APP_SECRET
    assert effective.tenant == "contoso.example"
    with admin.engine.connect() as conn:
        last = conn.execute(
            select(audit_log.c.details).order_by(audit_log.c.id.desc()).limit(1)
        ).scalar_one()
    assert last["client_secret"] == "kept" and last["changed"] == ["tenant"]


def test_bad_input_viewers_and_forms_without_token_are_refused(stale: StaleSetup) -> None:
    admin, org = stale.admin, stale.org
    browser = admin.signed_in()
    answer = _post(admin, browser, **_form(org, url="contoso"))
    assert answer.status_code == 400
    assert "The organization URL must be a web address" in text_of(answer.text)
    answer = _post(admin, browser, **_form(org, auth_mode="magic"))
    assert "The authentication must be one of client_credentials, password, adfs." in text_of(
        answer.text
    )
    assert browser.post("/admin/setup/connection", data=_form(org)).status_code == 403

    viewer = admin.signed_in(VIEWER_EMAIL, VIEWER_PASSWORD)
    page = admin.page(viewer, "/admin/setup")
    assert "Change the connection" not in page
    refused = viewer.post(
        "/admin/setup/connection", data={"csrf_token": csrf_token(page), **_form(org)}
    )
    assert refused.status_code == 403
    assert "Client id not-the-app" in text_of(admin.page(browser, "/admin/setup"))


def _person_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(persons)).scalar_one())


def test_the_background_sync_uses_a_saved_connection_from_its_next_cycle(
    stale: StaleSetup,
) -> None:
    admin, org = stale.admin, stale.org
    with admin.engine.begin() as conn:
        set_sync_enabled(conn, True)
    work = BackgroundWork(admin.engine, admin.settings)
    work.start()
    try:
        time.sleep(1.0)  # cycles with the file's wrong credentials sync nothing
        assert _person_count(admin.engine) == 0
        browser = admin.signed_in()
        assert _post(admin, browser, **_form(org)).status_code == 200
        deadline = time.monotonic() + 30
        while _person_count(admin.engine) < 3 and time.monotonic() < deadline:
            threading.Event().wait(0.2)
    finally:
        work.stop()
    assert _person_count(admin.engine) >= 3  # the org's leads (and contacts) arrived


def test_the_saved_connection_lays_over_the_file(stale: StaleSetup) -> None:
    admin, org = stale.admin, stale.org
    browser = admin.signed_in()
    assert _post(admin, browser, **_form(org, tenant="t1")).status_code == 200
    changed_file = dataclasses.replace(admin.settings.dynamics, page_size=123, tenant="file")
    effective = connection_in_effect(admin.engine, changed_file, admin.app.state.admin.secrets)
    assert effective.tenant == "t1"  # the saved value wins
    assert effective.page_size == 123  # settings not on the form still come from the file


def test_a_wrong_key_is_said_on_the_pages_and_the_secret_entered_again(
    stale: StaleSetup, caplog: pytest.LogCaptureFixture
) -> None:
    admin, org = stale.admin, stale.org
    browser = admin.signed_in()
    assert _post(admin, browser, **_form(org)).status_code == 200
    key_file = admin.app.state.admin.secrets.key_file
    key_file.write_text(Fernet.generate_key().decode())  # not the key it was saved with

    with caplog.at_level(logging.DEBUG):
        text = text_of(admin.page(browser, "/admin/setup"))
        fields = browser.get("/admin/fields?entity=lead")
    assert "The saved client secret cannot be used" in text
    assert "cannot be decrypted with the key file" in text and "Put the original key back" in text
    assert "Client secret Not set" in text
    said = text_of(fields.text)  # the Fields page says why it cannot read Dynamics
    assert "Dynamics could not be read" in said and "Put the original key back" in said
    assert DEFAULT_APP_SECRET not in caplog.text and "Traceback" not in caplog.text

    assert _post(admin, browser, **_form(org)).status_code == 200  # entered again
    text = text_of(admin.page(browser, "/admin/setup"))
    assert "cannot be used" not in text and "Client secret Set (never shown)" in text
    assert connection_for(admin.engine, admin.settings).client_secret.reveal() == (
        DEFAULT_APP_SECRET
    )
