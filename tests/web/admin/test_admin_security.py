"""Signing in and out, sessions, CSRF, lockout, the sign-in rate limit, roles and headers of
the admin UI: each rule is tried the way a browser (or an attacker's page) would."""

from __future__ import annotations

from admin_harness import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    VIEWER_EMAIL,
    VIEWER_PASSWORD,
    AdminApp,
    csrf_token,
    text_of,
)
from sqlalchemy import select

from crmsync.store.tables import admin_users, audit_log
from crmsync.sync.runner import is_enabled, set_enabled
from crmsync.web.admin.users import LOCK_SECONDS, MAX_FAILURES


def test_root_leads_to_sign_in_then_to_the_overview(admin_app: AdminApp) -> None:
    browser = admin_app.browser()
    assert browser.get("/").headers["location"] == "/admin/sign-in"
    answer = browser.get("/admin/errors")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/sign-in?next=/admin/errors"

    signed = admin_app.sign_in(browser)
    assert signed.status_code == 303 and signed.headers["location"] == "/admin/"
    assert browser.get("/").headers["location"] == "/admin/"
    overview = text_of(admin_app.page(browser, "/admin/"))
    assert "Overview" in overview and ADMIN_EMAIL in overview
    with admin_app.engine.connect() as conn:
        stored = conn.execute(select(admin_users.c.password_hash)).scalars().all()
    assert all(h.startswith("$argon2id$") for h in stored)


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(admin_app: AdminApp) -> None:
    browser = admin_app.browser()
    page = browser.get("/admin/sign-in?next=/admin/people").text
    answer = browser.post(
        "/admin/sign-in",
        data={
            "csrf_token": csrf_token(page),
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "next": "/admin/people",
        },
    )
    assert answer.headers["location"] == "/admin/people"
    other = admin_app.browser()
    page = other.get("/admin/sign-in").text
    answer = other.post(
        "/admin/sign-in",
        data={
            "csrf_token": csrf_token(page),
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "next": "//evil.example/admin/",
        },
    )
    assert answer.headers["location"] == "/admin/"


def test_wrong_email_and_wrong_password_get_the_same_message(admin_sqlite: AdminApp) -> None:
    wrong_password = admin_sqlite.sign_in(admin_sqlite.browser(), ADMIN_EMAIL, "not-it-at-all")
    unknown = admin_sqlite.sign_in(admin_sqlite.browser(), "nobody@example.com", "whatever-pass")
    assert wrong_password.status_code == unknown.status_code == 401
    assert "Wrong e-mail address or password." in text_of(wrong_password.text)
    assert "Wrong e-mail address or password." in text_of(unknown.text)
    assert "There is a problem" in wrong_password.text


def test_repeated_wrong_passwords_lock_the_account_for_a_while(admin_app: AdminApp) -> None:
    for _ in range(MAX_FAILURES - 1):
        assert (
            admin_app.sign_in(admin_app.browser(), ADMIN_EMAIL, "bad-guess-123").status_code == 401
        )
    locked = admin_app.sign_in(admin_app.browser(), ADMIN_EMAIL, "bad-guess-123")
    assert "locked" in text_of(locked.text) and "15 minutes" in text_of(locked.text)
    # even the right password is refused while the lock lasts
    refused = admin_app.sign_in(admin_app.browser(), ADMIN_EMAIL, ADMIN_PASSWORD)
    assert refused.status_code == 401 and "locked" in text_of(refused.text)
    with admin_app.engine.connect() as conn:
        actions = conn.execute(select(audit_log.c.action)).scalars().all()
    assert "admin_user_locked" in actions

    admin_app.clock.now += LOCK_SECONDS + 1
    assert admin_app.sign_in(admin_app.browser(), ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303


def test_sign_in_attempts_are_rate_limited_per_address(admin_sqlite: AdminApp) -> None:
    browser = admin_sqlite.browser()
    answers = [
        admin_sqlite.sign_in(browser, f"guess{n}@example.com", "wrong-password").status_code
        for n in range(10)
    ]
    assert answers == [401] * 10
    limited = admin_sqlite.sign_in(browser, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "Too many sign-in attempts" in text_of(limited.text)
    admin_sqlite.clock.now += 301
    assert admin_sqlite.sign_in(browser, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303


def test_a_form_without_its_sessions_csrf_token_changes_nothing(admin_app: AdminApp) -> None:
    set_enabled(admin_app.engine, True)
    browser = admin_app.signed_in()
    missing = browser.post("/admin/sync", data={"enabled": "false"})
    assert missing.status_code == 403
    assert "did not come from this site" in text_of(missing.text)
    # a token of another session (an attacker's own) is refused too
    attacker = admin_app.signed_in(VIEWER_EMAIL, VIEWER_PASSWORD)
    foreign = csrf_token(admin_app.page(attacker, "/admin/"))
    forged = browser.post("/admin/sync", data={"enabled": "false", "csrf_token": foreign})
    assert forged.status_code == 403
    assert is_enabled(admin_app.engine)

    done = admin_app.submit(browser, "/admin/", "/admin/sync", enabled="false")
    assert done.status_code == 303
    assert not is_enabled(admin_app.engine)


def test_the_sign_in_form_needs_its_token(admin_sqlite: AdminApp) -> None:
    answer = admin_sqlite.browser().post(
        "/admin/sign-in", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert answer.status_code == 403 and "crmsync_session" not in answer.headers.get(
        "set-cookie", ""
    )


def test_an_idle_session_expires(admin_app: AdminApp) -> None:
    browser = admin_app.signed_in()
    idle = admin_app.settings.web.admin_idle_seconds
    admin_app.clock.now += idle - 60
    assert browser.get("/admin/").status_code == 200  # use keeps it alive
    admin_app.clock.now += idle - 60
    assert browser.get("/admin/").status_code == 200
    admin_app.clock.now += idle + 1
    answer = browser.get("/admin/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/sign-in")


def test_signing_out_ends_the_session_for_good(admin_sqlite: AdminApp) -> None:
    browser = admin_sqlite.signed_in()
    cookie = browser.cookies.get("crmsync_session")
    answer = admin_sqlite.submit(browser, "/admin/", "/admin/sign-out")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/sign-in")
    replay = admin_sqlite.browser()
    replay.cookies.set("crmsync_session", str(cookie))
    assert replay.get("/admin/").status_code == 303


def test_session_cookie_flags(admin_sqlite: AdminApp) -> None:
    plain = admin_sqlite.sign_in(admin_sqlite.browser())
    cookie = plain.headers["set-cookie"]
    assert "crmsync_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie.split("crmsync_signin")[0]
    secure = admin_sqlite.sign_in(admin_sqlite.browser(https=True))
    assert "Secure" in secure.headers["set-cookie"].split("crmsync_signin")[0]


def test_a_viewer_sees_everything_and_changes_nothing(admin_app: AdminApp) -> None:
    set_enabled(admin_app.engine, True)
    viewer = admin_app.signed_in(VIEWER_EMAIL, VIEWER_PASSWORD)
    overview = admin_app.page(viewer, "/admin/")
    assert "Turn sync off" not in overview and "Users" not in text_of(overview).split("Overview")[0]
    refused = admin_app.submit(viewer, "/admin/", "/admin/sync", enabled="false")
    assert refused.status_code == 403 and "viewer" in text_of(refused.text)
    assert is_enabled(admin_app.engine)
    assert viewer.get("/admin/users").status_code == 403
    retry = admin_app.submit(viewer, "/admin/errors", "/admin/errors/retry", all="true")
    assert retry.status_code == 403


def test_security_headers_on_every_admin_answer(admin_sqlite: AdminApp) -> None:
    browser = admin_sqlite.browser()
    for path in ("/admin/sign-in", "/admin/no-such-page", "/"):
        headers = browser.get(path).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
    page = browser.get("/admin/sign-in").text
    assert "<script" not in page and "style=" not in page


def test_admin_errors_are_pages_and_the_marketo_api_keeps_json(admin_sqlite: AdminApp) -> None:
    browser = admin_sqlite.signed_in()
    missing = browser.get("/admin/no-such-page")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "Page not found" in missing.text
    bad = browser.get("/admin/people/abc")
    assert bad.status_code == 400 and "positive whole number" in text_of(bad.text)
    rest = browser.get("/rest/v1/nothing.json")
    assert rest.headers["content-type"].startswith("application/json")
    assert rest.json()["success"] is False


def test_only_the_sites_own_notices_are_shown(admin_sqlite: AdminApp) -> None:
    browser = admin_sqlite.signed_in()
    forged = browser.get("/admin/?notice=Your+account+is+locked,+call+555-0100")
    assert forged.status_code == 200 and "call 555-0100" not in forged.text
    answer = admin_sqlite.submit(browser, "/admin/", "/admin/sync", enabled="true")
    location = answer.headers["location"]
    assert "Sync is on." not in location  # signed, not readable text to tamper with
    assert "Sync is on." in text_of(admin_sqlite.page(browser, location))
    tampered = location[:-3] + ("aaa" if not location.endswith("aaa") else "bbb")
    assert "Sync is on." not in text_of(admin_sqlite.page(browser, tampered))
