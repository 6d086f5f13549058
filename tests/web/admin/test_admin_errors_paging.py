"""The sync errors page at scale: one page of 50 is read from the database, the heading counts
every open error, and the pages reach the last one: its links page by keyset (Next, Previous,
Last read through the index, no OFFSET), a typed page number still works; the CLI and the admin
API keep listing them all unless asked for a page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

from admin_harness import ADMIN_EMAIL, AdminApp, text_of
from sqlalchemy import event

from crmsync.store.tables import sync_errors
from crmsync.sync.error_counts import rebuild_error_counts

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
    with admin.engine.begin() as conn:  # stored in bulk, so counted afresh
        conn.execute(sync_errors.insert(), rows)
        rebuild_error_counts(conn)


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


def _links(html: str) -> dict[str, str]:
    """The pager's links by their text (First, Previous, Next, Last)."""
    pager = html[html.index('aria-label="Pages"') :]
    pager = pager[: pager.index("</nav>")]
    found = re.findall(r'<a href="([^"]+)"[^>]*>([A-Za-z]+)</a>', pager)
    return {label: unescape(href) for href, label in found}


def _records(html: str) -> list[str]:
    """The records listed in the errors table (not the groups' examples above it)."""
    listed = html[html.rindex("<tbody>") : html.rindex("</tbody>")]
    return re.findall(r"\(record (\d{3})\)", text_of(listed))


def test_next_previous_and_last_page_by_keyset(admin_app: AdminApp) -> None:
    _errors(admin_app)
    browser = admin_app.signed_in()
    statements: list[tuple[str, Any]] = []

    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    seen: list[str] = []
    html = admin_app.page(browser, "/admin/errors")
    seen += _records(html)
    event.listen(admin_app.engine, "before_cursor_execute", remember)
    try:
        for number in (2, 3):
            html = admin_app.page(browser, _links(html)["Next"])
            assert f"Page {number} of 3" in text_of(html)
            seen += _records(html)
    finally:
        event.remove(admin_app.engine, "before_cursor_execute", remember)
    assert seen == [f"{i:03d}" for i in range(OPEN - 1, -1, -1)]  # each once, in order
    assert "Next" not in _links(html) and "Last" not in _links(html)
    listing = [(s, p) for s, p in statements if s.startswith("SELECT sync_errors.id, ")]
    assert listing and all("(sync_errors.last_seen, sync_errors.id) <" in s for s, _ in listing)
    # no rows counted off: SQLite's dialect always writes OFFSET, here with 0
    assert all("OFFSET" not in s or list(p)[-1] == 0 for s, p in listing)

    back = admin_app.page(browser, _links(html)["Previous"])
    assert "Page 2 of 3" in text_of(back)
    assert _records(back) == [f"{i:03d}" for i in range(69, 19, -1)]
    assert _links(back)["Previous"].endswith("q=")  # page 1 is the top of the list

    last = admin_app.page(browser, "/admin/errors?last=1")
    assert "Page 3 of 3" in text_of(last)
    assert _records(last) == [f"{i:03d}" for i in range(19, -1, -1)]  # the 20 left
    leads = admin_app.page(browser, "/admin/errors?entity=lead")
    following = admin_app.page(browser, _links(leads)["Next"])
    assert "Page 2 of 2" in text_of(following)
    assert all(int(r) % 2 for r in _records(following))  # still only leads

    forged = browser.get("/admin/errors?page=2&after=12x.4")
    assert forged.status_code == 400
    assert "That page link is not valid" in text_of(forged.text)
