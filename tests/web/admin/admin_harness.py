"""The admin UI under test: the real application on a migrated database, an admin and a
viewer, a controllable clock, and helpers that sign in and post forms as a browser would
(with the CSRF token read from the page)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from crmsync.settings import Secret, Settings, load_settings
from crmsync.sync.cycle import SyncCycle
from crmsync.web.admin.users import AdminUserStore
from crmsync.web.app import create_app

ADMIN_EMAIL = "ana@example.com"
ADMIN_PASSWORD = "ana-password-long"
VIEWER_EMAIL = "vic@example.com"
VIEWER_PASSWORD = "vic-password-long"
DYNAMICS_SECRET = "dyn-client-secret-9f8e7d"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """Seconds since the epoch that tests move forward."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def csrf_token(html: str) -> str:
    """The first CSRF token of a page's forms."""
    found = _TOKEN.search(html)
    assert found is not None, "no form with a CSRF token on this page"
    return unescape(found.group(1))


def text_of(html: str) -> str:
    """The page's visible text, tags removed and whitespace folded (what a reader sees)."""
    without_tags = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", unescape(without_tags)).strip()


@dataclass
class AdminApp:
    """The app, its database, the clock and a user store."""

    engine: Engine
    settings: Settings
    clock: Clock
    app: Any
    users: AdminUserStore

    def browser(self, *, https: bool = False) -> TestClient:
        """A new browser (its own cookie jar)."""
        base = "https://testserver" if https else "http://testserver"
        return TestClient(self.app, base_url=base, follow_redirects=False)

    def sign_in(
        self, browser: TestClient, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
    ) -> Any:
        """Open the sign-in page and post its form; returns the answer to the post."""
        page = browser.get("/admin/sign-in")
        assert page.status_code == 200
        return browser.post(
            "/admin/sign-in",
            data={"csrf_token": csrf_token(page.text), "email": email, "password": password},
        )

    def signed_in(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> TestClient:
        """A browser signed in as ``email``."""
        browser = self.browser()
        answer = self.sign_in(browser, email, password)
        assert answer.status_code == 303, answer.text
        return browser

    def page(self, browser: TestClient, path: str) -> str:
        """GET a page that must answer 200; its HTML."""
        answer = browser.get(path)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        return answer.text

    def submit(self, browser: TestClient, page: str, target: str, **fields: str) -> Any:
        """Post a form of ``page`` (a path) to ``target`` with the page's CSRF token."""
        token = csrf_token(self.page(browser, page))
        return browser.post(target, data={"csrf_token": token, **fields})


def build_admin_app(engine: Engine) -> Iterator[AdminApp]:
    """The web app on ``engine`` with an admin and a viewer, and a Dynamics client secret
    configured (which no page may ever show); the key of secrets saved in the database is kept
    in a folder of its own, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="crmsync-keys-") as keys:
        settings = load_settings(
            environ={},
            overrides={
                "database": {
                    "url": str(engine.url),
                    "secret_key_file": str(Path(keys) / "secret.key"),
                },
                "dynamics": {"client_secret": DYNAMICS_SECRET, "url": "https://org.example.com"},
            },
        )
        assert isinstance(settings.dynamics.client_secret, Secret)
        clock = Clock()
        app = create_app(settings, engine=engine, clock=clock)
        users: AdminUserStore = app.state.admin.users
        users.create(ADMIN_EMAIL, ADMIN_PASSWORD, "admin", actor="test")
        users.create(VIEWER_EMAIL, VIEWER_PASSWORD, "viewer", actor="test")
        yield AdminApp(engine, settings, clock, app, users)


@dataclass
class SyncedAdmin:
    """The admin app over a database synced with an emulated org."""

    admin: AdminApp
    org: Any
    cycle: SyncCycle
