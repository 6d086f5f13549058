"""The admin UI's second set of pages in Chromium: campaigns (a campaign created from a pasted
definition, a mistake shown beside the field, then run with its results)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browser_support import Site, open_menu, screenshot, sign_in
from sqlalchemy import func, select

from crmsync.store.tables import persons
from crmsync.sync.campaign_push import campaign_runner

pytestmark = pytest.mark.browser

BATCH_TOML = """name = "Leads to nurture"
type = "batch"
qualification = "every_time"

[smartList]
filters = [{ field = "crmType", operator = "is", values = ["lead"] }]

[[flow]]
type = "change_data_value"
field = "leadStatus"
value = "Nurture"
"""


def test_a_campaign_created_run_and_its_results(site: Site, page: Any, tmp_path: Path) -> None:
    sign_in(page, site.url)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    definition = page.get_by_label("Definition (TOML or JSON)")
    definition.fill(BATCH_TOML.replace("leadStatus", "leadStatusTypo"))
    page.get_by_role("button", name="Save campaign").click()
    assert (
        "'leadStatusTypo' is not a writable person field" in page.get_by_role("alert").inner_text()
    )
    screenshot(page, tmp_path, "campaign-form")
    definition.fill(BATCH_TOML)
    page.get_by_role("button", name="Save campaign").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Leads to nurture"
    with site.engine.connect() as conn:
        leads = conn.execute(
            select(func.count()).select_from(persons).where(func.lower(persons.c.crmType) == "lead")
        ).scalar_one()
    assert leads > 1
    run = page.get_by_role("button", name="Run now for")
    assert run.inner_text() == f"Run now for {leads} people"
    run.click()
    assert f"Queued {leads} people" in page.get_by_role("status").inner_text()
    runner = campaign_runner(site.engine)
    while runner.run_pending():
        pass
    page.reload()
    step = page.get_by_role("row").filter(has_text="Change Data Value").inner_text()
    assert step.split()[-3:] == [str(leads), "0", "0"]
    screenshot(page, tmp_path, "campaign")
    page.get_by_role("link", name="← Campaigns").click()
    assert "Leads to nurture" in page.get_by_role("row").filter(has_text="Batch").inner_text()
    screenshot(page, tmp_path, "campaigns")


def test_select_a_field_and_watch_its_quick_sync_finish(
    site: Site, page: Any, tmp_path: Path
) -> None:
    sign_in(page, site.url)
    open_menu(page).get_by_role("link", name="Fields").click()
    page.get_by_label("Dynamics table").select_option("lead")
    page.get_by_role("button", name="Show").click()
    page.get_by_label("Sync Website").check()
    page.get_by_role("button", name="Save selection").click()
    assert "1 added" in page.get_by_role("status").inner_text()
    columns = page.locator("table.fields")
    website = columns.get_by_role("row").filter(has_text="websiteurl")
    assert "Quick sync queued" in website.inner_text()
    quick_syncs = page.get_by_role("region", name="Quick syncs of lead")
    assert "Queued" in quick_syncs.inner_text()
    site.cycle.run()  # the regular sync goes on beside it
    site.quick.step()  # the first page of three records
    page.reload()
    website = columns.get_by_role("row").filter(has_text="websiteurl")
    assert "Quick sync running" in website.inner_text()
    running = page.get_by_role("region", name="Quick syncs of lead").inner_text()
    assert "Running" in running and re.search(r"3 of \d+ \(\d+%\)", running)
    screenshot(page, tmp_path, "fields")
    site.quick.run()  # the rest, until done
    page.reload()
    assert "Synced" in columns.get_by_role("row").filter(has_text="websiteurl").inner_text()
    done = page.get_by_role("region", name="Quick syncs of lead").inner_text()
    assert "Done" in done and "(100%)" in done


def test_setup_validates_the_connection(site: Site, page: Any, tmp_path: Path) -> None:
    sign_in(page, site.url)
    open_menu(page).get_by_role("link", name="Setup").click()
    assert (
        "Set (never shown)"
        in page.get_by_text("Client secret", exact=True).locator("..").inner_text()
    )
    page.get_by_role("button", name="Validate").click()
    assert "Every check passed" in page.get_by_role("status").inner_text()
    rows = page.get_by_role("row").filter(has_text="Passed")
    assert rows.count() >= 13  # WhoAmI, then privileges and change tracking of six tables
    assert page.get_by_role("row").filter(has_text="lead: change tracking").count() == 1
    screenshot(page, tmp_path, "setup")


def test_a_company_links_to_its_people(site: Site, page: Any, tmp_path: Path) -> None:
    sign_in(page, site.url)
    open_menu(page, "Records").get_by_role("link", name="Companies").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Companies"
    screenshot(page, tmp_path, "companies")
    page.get_by_role("row").nth(1).get_by_role("link").click()
    assert "Read-only — from Dynamics" in page.locator(".tags").inner_text()
    people = page.get_by_role("heading", name=re.compile(r"^People \(\d+\)$"))
    assert people.count() == 1
    screenshot(page, tmp_path, "company")
    page.locator("section").filter(has=people).get_by_role("link").first.click()
    assert page.url.startswith(f"{site.url}/admin/people/")
    page.get_by_role("link", name="Open the company’s page").click()
    assert "/admin/companies/" in page.url


def _overflow(page: Any) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrolling)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def test_the_fields_page_fits_at_1280_px_and_on_a_phone(
    site: Site, page: Any, tmp_path: Path
) -> None:
    sign_in(page, site.url)
    page.goto(f"{site.url}/admin/fields?entity=lead")
    row = page.get_by_role("row").filter(has_text="lastname")
    rule = row.get_by_label("Sync rule of lastname")
    assert _overflow(page) == 0
    box, window = rule.bounding_box(), page.viewport_size
    assert box is not None and box["x"] + box["width"] <= window["width"]  # no scrolling to it
    assert "Last Name" in row.inner_text() and "lastName" in row.inner_text()
    screenshot(page, tmp_path, "fields-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert _overflow(page) == 0
    rule = page.get_by_role("row").filter(has_text="lastname").get_by_label("Sync rule of lastname")
    box = rule.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    screenshot(page, tmp_path, "fields-phone")


def test_the_connection_is_changed_from_setup(site: Site, page: Any, tmp_path: Path) -> None:
    sign_in(page, site.url)
    page.goto(f"{site.url}/admin/setup")
    form = page.locator("#connection-form")
    assert form.get_by_label("New client secret").input_value() == ""  # never shown back
    form.get_by_label("Tenant").fill("contoso.example")
    form.get_by_label("New client secret").fill("not-the-secret-1a2b")
    form.get_by_role("button", name="Check and save").click()
    alert = page.get_by_role("alert").inner_text()
    assert "Not saved: the new connection could not connect" in alert
    assert "not-the-secret-1a2b" not in page.content()
    assert "Tenant Not set" in " ".join(page.locator(".summary-list").inner_text().split())
    form = page.locator("#connection-form")
    form.get_by_label("New client secret").fill("")  # blank: keep the secret in use
    form.get_by_role("button", name="Check and save").click()
    status = page.get_by_role("status").first.inner_text()
    assert "Connection saved; the sync uses it from its next cycle." in status
    summary = " ".join(page.locator(".summary-list").inner_text().split())
    assert "Tenant contoso.example" in summary
    assert "Client secret Set (never shown)" in summary
    screenshot(page, tmp_path, "setup-connection")
