"""The Custom entities pages in Chromium: a table two levels below contact, created in the
emulated org as a Dynamics customizer would, is offered on the list page, enabled there with
its button, loaded by the next sync cycle and shown on its own page with its path, fields and
records; disabling it keeps its records."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browser_support import Site, open_menu, screenshot, sign_in
from sqlalchemy import select
from sync_harness import engine_client

from crmsync.store.tables import custom_object_rows, persons
from crmsync.sync.custom_entities import enable
from custom_tables import create_row, create_visit_tables

pytestmark = pytest.mark.browser


def _visit_in_org(site: Site) -> str:
    """new_project (→ contact) and new_visit (→ new_project) with one visit; its id."""
    with engine_client(site.org.base) as client:
        http, root = client.http, client.service_root
        create_visit_tables(http, root)
        contact = http.get(f"{root}/contacts?$select=contactid&$top=1").json()["value"][0]
        project = create_row(
            http,
            root,
            "new_projects",
            {"new_name": "Alpha", "new_contactid@odata.bind": f"/contacts({contact['contactid']})"},
        )
        return create_row(
            http,
            root,
            "new_visits",
            {
                "new_name": "v1",
                "new_note": "Site tour",
                "new_projectid@odata.bind": f"/new_projects({project})",
            },
        )


def _owner_name(site: Site, visit: str) -> str:
    """The name of the person the stored visit is linked to."""
    with site.engine.connect() as conn:
        first, last = conn.execute(
            select(persons.c.firstName, persons.c.lastName)
            .join(custom_object_rows, custom_object_rows.c.person_id == persons.c.id)
            .where(custom_object_rows.c.crm_id == visit)
        ).one()
    return " ".join(part for part in (first, last) if part)


def test_a_custom_entity_is_enabled_loaded_and_shown(site: Site, page: Any, tmp_path: Path) -> None:
    visit = _visit_in_org(site)
    sign_in(page, site.url)
    open_menu(page).get_by_role("link", name="Custom entities").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Custom entities"
    assert "No custom entity enabled yet." in page.locator("main").inner_text()
    offered = page.get_by_role("row").filter(has_text="new_visit")
    assert "new_visit.new_projectid → new_project.new_contactid → contact" in (offered.inner_text())
    screenshot(page, tmp_path, "custom-entities")

    offered.get_by_role("button", name="Enable new_visit").click()
    page.wait_for_url(f"{site.url}/admin/custom-entities/new_visit*")
    assert "new_visit enabled: the next sync cycle loads its records." in (
        page.get_by_role("status").inner_text()
    )
    assert "No records yet: the next sync cycle loads them." in page.locator("main").inner_text()

    site.cycle.run()
    page.goto(f"{site.url}/admin/custom-entities/new_visit")
    summary = " ".join(page.locator(".summary-list").inner_text().split())
    assert "State Enabled" in summary
    assert "Records 1 (1 linked, 0 deleted in Dynamics)" in summary
    records = page.get_by_role("table").last
    row = records.get_by_role("row").filter(has_text=visit)
    assert "Site tour" in row.inner_text()
    owner = _owner_name(site, visit)
    person = row.get_by_role("link", name=owner)  # the person by name, not by an id
    person.click()
    assert "/admin/people/" in page.url
    assert page.get_by_role("heading", level=1).inner_text().startswith(owner)
    page.go_back()
    screenshot(page, tmp_path, "custom-entity")

    page.get_by_role("button", name="Disable").click()
    assert "new_visit disabled: its records stay." in page.get_by_role("status").inner_text()
    assert (
        "Disabled: its records stay, no longer read" in page.locator(".summary-list").inner_text()
    )
    assert "Site tour" in page.get_by_role("table").last.inner_text()

    page.goto(f"{site.url}/admin/custom-entities")
    listed = page.get_by_role("row").filter(has_text="new_visit").first
    assert "Disabled" in listed.inner_text() and "Visit" in listed.inner_text()


def test_the_records_table_fits_1280_px_with_times_as_on_other_pages(
    site: Site, page: Any, tmp_path: Path
) -> None:
    """The records of an entity with many fields: no sideways scrolling at 1280 px (a long
    value wraps; the fields past the first few open below each record), and its Dynamics times
    read as on the other pages (``2026-05-03 12:04:05 UTC``), not as ISO text."""
    visit = _visit_in_org(site)
    with engine_client(site.org.base) as client:
        enable(site.engine, client, "new_visit", actor="test")
        long_note = "Tour-of-the-north-site-" * 8  # 184 characters without a space
        answer = client.http.patch(
            f"{client.service_root}/new_visits({visit})", json={"new_note": long_note}
        )
        assert answer.status_code == 204, answer.text
    site.cycle.run()
    sign_in(page, site.url)
    page.goto(f"{site.url}/admin/custom-entities/new_visit")
    records = page.get_by_role("table").last
    overflow = records.evaluate("t => t.parentElement.scrollWidth - t.parentElement.clientWidth")
    assert overflow == 0 and _page_overflow(page) == 0
    row = records.get_by_role("row").filter(has_text=visit)
    assert long_note in row.inner_text().replace("\n", "")
    more = records.locator("details").first
    assert more.locator("summary").inner_text() == "4 more fields"
    assert not more.get_by_text("createdon").is_visible()
    more.locator("summary").click()
    opened = " ".join(more.inner_text().split())
    created = re.search(r"createdon (\S+ \S+ \S+)", opened)
    assert created and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", created.group(1)), opened
    assert "+00:00" not in opened, opened
    assert _page_overflow(page) == 0
    screenshot(page, tmp_path, "custom-entity-records-1280")


def _page_overflow(page: Any) -> int:
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )
