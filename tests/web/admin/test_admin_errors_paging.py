"""The sync errors page at scale: one page of 50 is read from the database (LIMIT/OFFSET),
the heading counts every open error, and the pages reach the last one; the CLI and the admin
API keep listing them all unless asked for a page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from admin_harness import ADMIN_EMAIL, AdminApp, text_of
from sqlalchemy import event

from crmsync.store.tables import sync_errors

OPEN = 120


def _errors(admin: AdminApp) -> None:
    start = datetime(2026, 5, 3, 8, tzinfo=UTC)
    rows = [
        {
            "entity": "lead" if i % 2 else "contact",
            "direction": "to_crm",
            "operation": "update",
            "crm_id": f"00000000-0000-4000-8000-{i:012d}",
            "error_code": "0x80040265",
            "message": f"Business phone: digits only. (record {i:03d})",
            "attempts": 1,
            "first_seen": start,
            "last_seen": start + timedelta(seconds=i),
        }
        for i in range(OPEN)
    ]
    with admin.engine.begin() as conn:
        conn.execute(sync_errors.insert(), rows)


def test_the_errors_page_reads_one_page_from_the_database(admin_app: AdminApp) -> None:
    _errors(admin_app)
    browser = admin_app.signed_in()
    statements: list[str] = []

    def remember(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(admin_app.engine, "before_cursor_execute", remember)
    try:
        first = text_of(admin_app.page(browser, "/admin/errors"))
    finally:
        event.remove(admin_app.engine, "before_cursor_execute", remember)
    assert f"Sync errors ({OPEN})" in first
    assert "Page 1 of 3" in first
    assert "(record 119)" in first and "(record 070)" in first and "(record 069)" not in first
    listing = [s for s in statements if s.startswith("SELECT sync_errors.id, ")]
    assert listing and all("LIMIT" in s for s in listing)

    last = text_of(admin_app.page(browser, "/admin/errors?page=3"))
    assert "Page 3 of 3" in last and "(record 000)" in last and "(record 020)" not in last
    leads = text_of(admin_app.page(browser, "/admin/errors?entity=lead"))
    assert f"Sync errors ({OPEN // 2})" in leads and "Page 1 of 2" in leads
    too_far = browser.get("/admin/errors?page=99999999999999999999")
    assert too_far.status_code == 400


def test_the_api_lists_all_or_one_page(admin_app: AdminApp) -> None:
    _errors(admin_app)
    user = admin_app.users.by_email(ADMIN_EMAIL)
    assert user is not None
    headers = {"Authorization": f"Bearer {admin_app.users.create_token(user.id, 't', actor='t')}"}
    api = admin_app.browser()
    assert len(api.get("/api/admin/v1/errors", headers=headers).json()) == OPEN
    page = api.get("/api/admin/v1/errors?limit=10&offset=110", headers=headers).json()
    assert [row["message"][-12:] for row in page[:2]] == ["(record 009)", "(record 008)"]
    assert len(page) == 10
