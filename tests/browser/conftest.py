"""Browser tests: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright against the
real application served by uvicorn on 127.0.0.1 (a free port), over a database synced with an
emulated Dynamics org.

They are skipped only when Chromium is not installed (CI installs it, see ``.ci/run``). Each
test saves a full-page screenshot in its ``tmp_path``; with ``CRMSYNC_DOCS_SCREENSHOTS=1`` a
copy also goes to ``docs/images`` for the documentation.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sync"))

from browser_support import CHROMIUM, EMAIL, PASSWORD, PHONE_RULE, Site
from sync_harness import engine_client, running_org, serve

from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET, default_config
from crmsync.settings import load_settings
from crmsync.store.db import open_database
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.quick_sync import QuickSync
from crmsync.web.admin.users import AdminUserStore
from crmsync.web.app import create_app


@pytest.fixture
def site(sqlite_database_url: str) -> Iterator[Site]:
    """The web app on 127.0.0.1 over a database synced once with an org of eight leads, its
    settings naming that org (the Fields and Setup pages read it)."""
    engine = open_database(sqlite_database_url)
    config = dataclasses.replace(default_config(), plugin_rules=(PHONE_RULE,))
    with running_org(config, 8) as org:
        client = engine_client(org.base)
        cycle = SyncCycle(engine, client)
        assert cycle.run().status == "ok"
        dynamics = {
            "url": org.base,
            "authority": org.base,
            "auth_mode": "adfs",
            "client_id": DEFAULT_APP_CLIENT_ID,
            "client_secret": DEFAULT_APP_SECRET,
        }
        settings = load_settings(
            environ={}, overrides={"database": {"url": sqlite_database_url}, "dynamics": dynamics}
        )
        app = create_app(settings, engine=engine)
        AdminUserStore(engine).create(EMAIL, PASSWORD, "admin", actor="test")
        with serve(app) as url:
            yield Site(url, engine, org, cycle, QuickSync(engine, client, page_size=3))
        client.close()
    engine.dispose()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A Chromium page 1280 px wide."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        yield context.new_page()
        context.close()
        browser.close()
