"""Helpers of the browser tests: the served site, screenshots, signing in."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sync_harness import Org

from crmsync.emulator.config import PluginRule
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.quick_sync import QuickSync

CHROMIUM = Path("/usr/bin/chromium")
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
EMAIL = "ana@example.com"
PASSWORD = "ana-password-long"
PHONE_RULE = PluginRule(
    "lead", "telephone1", "regex", r"[0-9 +()-]*", "Business phone: digits only."
)


@dataclass
class Site:
    """The served application, its database and the org it syncs with."""

    url: str
    engine: Engine
    org: Org
    cycle: SyncCycle
    quick: QuickSync  # quick syncs in pages of three records


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot in the test's folder. With ``CRMSYNC_DOCS_SCREENSHOTS=1`` the
    same page, cut at 1,400 px high so the images stay small, also goes to ``docs/images``
    (a plain test run leaves the tree as it was)."""
    target = tmp_path / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    if os.environ.get("CRMSYNC_DOCS_SCREENSHOTS") != "1":
        return target
    size = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(DOCS_IMAGES / f"{name}.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": size[0], "height": min(size[1], 1400)},
    )
    return target


def sign_in(page: Any, url: str) -> None:
    """Sign in through the form, as a person would."""
    page.goto(f"{url}/")
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/admin/")


def open_menu(page: Any, name: str = "Admin") -> Any:
    """Open a menu of the main navigation ("Admin": Fields, Custom entities, Setup, Audit
    trail, Users; "Records": Companies, Opportunities, Sales users) as a person would, with a
    click on it; returns the navigation."""
    navigation = page.get_by_role("navigation", name="Main")
    menu = navigation.locator("details").filter(
        has=page.locator("summary", has_text=re.compile(f"^{name}"))
    )
    if menu.get_attribute("open") is None:
        menu.locator("summary").click()
    return navigation
