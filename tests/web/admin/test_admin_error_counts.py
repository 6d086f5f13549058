"""The counts the errors page and the overview show come from the counts of open errors; they
stay equal to a fresh count of the open errors through a real cycle that fails a record, an
admin's retry of it and of all, and the cycle that syncs the fixed record (both databases)."""

from __future__ import annotations

import re

from admin_harness import SyncedAdmin, text_of
from sync_harness import (
    edit_person,
    open_error_counts_afresh,
    open_errors,
    person_by_crm_id,
    stored_error_counts,
)


def _open_count(world: SyncedAdmin) -> int:
    """How many errors are open, after checking the stored counts against a fresh count."""
    with world.admin.engine.connect() as conn:
        stored, afresh = stored_error_counts(conn), open_error_counts_afresh(conn)
    assert stored == afresh
    return sum(afresh.values())


def _failing_on_overview(page: str) -> str:
    found = re.search(r"Failing records\s*([\d,]+)", page)
    assert found, page
    return found.group(1)


def test_counts_agree_through_failure_retries_and_fix(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    lead_id = synced_admin.org.alex().first_ids("leads", 1)[0]
    person_id = int(str(person_by_crm_id(admin.engine, "lead", lead_id)["id"]))
    edit_person(admin.engine, person_id, phone="not a phone")
    assert synced_admin.cycle.run().push.failed == 1
    assert _open_count(synced_admin) == 1
    browser = admin.signed_in()
    page = text_of(admin.page(browser, "/admin/errors"))
    assert "Sync errors (1)" in page and "lead (1)" in page
    assert _failing_on_overview(text_of(admin.page(browser, "/admin/"))) == "1"

    error_id = str(open_errors(admin.engine)[0]["id"])
    answer = admin.submit(browser, "/admin/errors", "/admin/errors/retry", error_id=error_id)
    assert "Queued 1 failing record" in text_of(admin.page(browser, answer.headers["location"]))
    assert synced_admin.cycle.run().push.failed == 1  # sent again, refused again: one error
    assert _open_count(synced_admin) == 1

    answer = admin.submit(browser, "/admin/errors", "/admin/errors/retry", all="true")
    assert "Queued 1 failing record" in text_of(admin.page(browser, answer.headers["location"]))
    edit_person(admin.engine, person_id, phone="+1 555 0100")
    assert synced_admin.cycle.run().push.failed == 0
    assert _open_count(synced_admin) == 0
    assert "Sync errors (0)" in text_of(admin.page(browser, "/admin/errors"))
    assert _failing_on_overview(text_of(admin.page(browser, "/admin/"))) == "0"
