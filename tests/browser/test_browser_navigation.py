"""The main navigation in Chromium: one line at 1280 px, with the records read from Dynamics
and the settings pages behind two menus ("Records", "Admin") that open with the keyboard
(``<details>`` disclosures, no script), and usable at phone width without sideways
scrolling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser_support import Site, open_menu, screenshot, sign_in

pytestmark = pytest.mark.browser

TOP_LINE = ["Overview", "Sync errors", "People", "Campaigns", "Notifications"]
RECORDS = ["Companies", "Opportunities", "Sales users"]
ADMIN = ["Fields", "Custom entities", "Setup", "Audit trail", "Users"]
ITEMS = "nav[aria-label=Main] > ul > li"


def _tops(page: Any, selector: str) -> list[float]:
    """The top offsets of the elements matching ``selector``."""
    return list(
        page.eval_on_selector_all(
            selector, "items => items.map(item => item.getBoundingClientRect().top)"
        )
    )


def _middle(page: Any, selector: str) -> float:
    box = page.locator(selector).first.bounding_box()
    return float(box["y"] + box["height"] / 2)


def _overflow(page: Any) -> int:
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def test_the_navigation_is_one_line_at_1280_px(site: Site, page: Any, tmp_path: Path) -> None:
    sign_in(page, site.url)
    navigation = page.get_by_role("navigation", name="Main")
    for label in TOP_LINE:
        assert navigation.get_by_role("link", name=label).is_visible()
    tops = _tops(page, ITEMS)
    assert len(tops) == 7  # five pages and the two menus
    assert max(tops) - min(tops) < 1, tops  # one line: every item at the same height
    # the brand, the navigation and the signed-in user with "Sign out" share that one row
    brand = _middle(page, "header.top .brand")
    for other in ("nav[aria-label=Main]", "form.signout button"):
        assert abs(_middle(page, other) - brand) < 8, other
    assert _overflow(page) == 0
    for label in [*RECORDS, *ADMIN]:  # behind the closed menus
        assert not navigation.get_by_role("link", name=label, exact=True).is_visible()

    # Keyboard: focus the Admin menu, open it with Enter, tab into it, follow a link.
    summary = navigation.locator("summary", has_text="Admin")
    summary.focus()
    page.keyboard.press("Enter")
    for label in ADMIN:
        assert navigation.get_by_role("link", name=label, exact=True).is_visible()
    screenshot(page, tmp_path, "navigation-1280")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Fields"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}/admin/custom-entities")
    assert page.get_by_role("heading", level=1).inner_text() == "Custom entities"
    # the menu says that it holds this page, and marks its link as the current page
    assert "this page is in this menu" in summary.inner_text()
    assert "this page is in this menu" not in navigation.locator("summary").first.inner_text()
    current = open_menu(page, "Admin").locator("a[aria-current=page]")
    assert current.inner_text() == "Custom entities"
    tops = _tops(page, ITEMS)
    assert max(tops) - min(tops) < 1

    open_menu(page, "Records").get_by_role("link", name="Opportunities").click()
    page.wait_for_url(f"{site.url}/admin/opportunities")
    tops = _tops(page, ITEMS)
    assert max(tops) - min(tops) < 1


def test_the_navigation_at_phone_width(site: Site, page: Any, tmp_path: Path) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, site.url)
    assert _overflow(page) == 0
    navigation = page.get_by_role("navigation", name="Main")
    for label in TOP_LINE:
        assert navigation.get_by_role("link", name=label).is_visible()
    for menu, labels in (("Records", RECORDS), ("Admin", ADMIN)):
        open_menu(page, menu)
        for label in labels:
            link = navigation.get_by_role("link", name=label, exact=True)
            box = link.bounding_box()
            assert link.is_visible() and box is not None, label
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, label  # all on screen
            assert box["height"] >= 24, label  # a target a finger can hit
        assert _overflow(page) == 0
    screenshot(page, tmp_path, "navigation-phone")
    navigation.get_by_role("link", name="Setup", exact=True).click()
    page.wait_for_url(f"{site.url}/admin/setup")
    assert page.get_by_role("heading", level=1).inner_text() == "Setup"
