"""The admin UI in Chromium: sign in, the overview after a cycle, a failing record retried
from the errors page, and a person's activity log with a collision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser_support import EMAIL, PASSWORD, Site, screenshot, sign_in
from sqlalchemy import select
from sync_harness import edit_person, person_by_crm_id

from crmsync.store.tables import sync_outbox

pytestmark = pytest.mark.browser


def test_sign_in_lands_on_the_overview(site: Site, page: Any, tmp_path: Path) -> None:
    page.goto(f"{site.url}/")
    assert page.url == f"{site.url}/admin/sign-in"
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().endswith("Wrong e-mail address or password.")
    screenshot(page, tmp_path, "sign-in")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.url}/admin/")
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"


def test_overview_after_a_cycle(site: Site, page: Any, tmp_path: Path) -> None:
    lead_id = site.org.alex().first_ids("leads", 1)[0]
    person = person_by_crm_id(site.engine, "lead", lead_id)
    edit_person(site.engine, int(person["id"]), phone="call me maybe")
    edit_person(site.engine, int(person["id"]) + 1, title="Director of Things")
    assert site.cycle.run().push.failed == 1
    sign_in(page, site.url)
    headline = page.locator(".headline").inner_text()
    assert "Sync off" in headline and "Partial: 1 record failed" in headline
    page.get_by_role("button", name="Turn sync on").click()
    assert "Sync on" in page.locator(".headline").inner_text()
    assert page.get_by_role("status").inner_text() == "Sync is on."
    screenshot(page, tmp_path, "overview")
    page.set_viewport_size({"width": 390, "height": 800})
    screenshot(page, tmp_path, "overview-phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the overview scrolls sideways on a phone"


def test_a_failing_record_is_retried_from_the_errors_page(
    site: Site, page: Any, tmp_path: Path
) -> None:
    lead_id = site.org.alex().first_ids("leads", 1)[0]
    person = person_by_crm_id(site.engine, "lead", lead_id)
    edit_person(site.engine, int(person["id"]), phone="call me maybe")
    assert site.cycle.run().push.failed == 1
    sign_in(page, site.url)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sync errors").click()
    name = f"{person['firstName']} {person['lastName']}"
    row = page.get_by_role("row").filter(has_text=name)
    assert "0x80040265" in row.inner_text() and str(person["email"]) in row.inner_text()
    screenshot(page, tmp_path, "errors")
    row.get_by_role("button", name=f"Retry {name}").click()
    assert "Queued 1 failing record" in page.get_by_role("status").inner_text()
    with site.engine.connect() as conn:
        assert conn.execute(select(sync_outbox.c.person_id)).scalars().all() == [person["id"]]
    # fixed in marketing, the next cycle sends it and the error closes
    edit_person(site.engine, int(person["id"]), phone="+1 555 0100")
    assert site.cycle.run().push.failed == 0
    page.reload()
    assert page.get_by_role("heading", level=1).inner_text() == "Sync errors (0)"


def test_a_persons_activity_log_shows_a_collision(site: Site, page: Any, tmp_path: Path) -> None:
    lead_id = site.org.alex().first_ids("leads", 1)[0]
    person = person_by_crm_id(site.engine, "lead", lead_id)
    assert site.org.alex().patch("leads", lead_id, {"address1_city": "Dynamics City"})
    edit_person(site.engine, int(person["id"]), city="Marketing City", title="Head of Ops")
    site.cycle.run()
    sign_in(page, site.url)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
    page.get_by_label("Search").fill(str(person["email"]))
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=f"{person['firstName']} {person['lastName']}").click()
    log = page.get_by_role("row").filter(has_text="Microsoft Sync Collision").inner_text()
    assert "Marketing City" in log and "Dynamics City" in log and "Marketing won" in log
    changed = page.get_by_role("row").filter(has_text="Head of Ops").first.inner_text()
    assert "Change Data Value" in changed
    screenshot(page, tmp_path, "person")
