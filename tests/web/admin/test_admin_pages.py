"""Each admin page after real sync work: an emulated org synced by the engine, a salesperson
editing in Dynamics, marketing edits through the person service, a rejected record."""

from __future__ import annotations

import csv
import io

from admin_harness import DYNAMICS_SECRET, SyncedAdmin, csrf_token, text_of
from sqlalchemy import select
from sync_harness import edit_person, person_by_crm_id

from crmsync.marketing.activity_types import SYNC_COLLISION
from crmsync.store.tables import audit_log, crm_links, sync_outbox
from crmsync.sync.history import notify


def _first_lead_person(world: SyncedAdmin) -> tuple[str, dict[str, object]]:
    lead_id = world.org.alex().first_ids("leads", 1)[0]
    return lead_id, person_by_crm_id(world.admin.engine, "lead", lead_id)


def _reject_a_phone(world: SyncedAdmin) -> dict[str, object]:
    """A marketing edit Dynamics rejects (its phone rule): one failing record."""
    _, person = _first_lead_person(world)
    edit_person(world.admin.engine, int(str(person["id"])), phone="not a phone")
    report = world.cycle.run()
    assert report.push.failed == 1
    return person


def test_overview_tells_the_truth_about_the_last_cycle(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    browser = admin.signed_in()
    first = text_of(admin.page(browser, "/admin/"))
    assert "Succeeded" in first and "records synced in 1 cycle" in first
    assert "Initial sync done for:" in first and "lead" in first

    _reject_a_phone(synced_admin)
    page = text_of(admin.page(browser, "/admin/"))
    assert "Partial: 1 record failed" in page and "Succeeded" not in page
    assert "of 6,000 requests in the last 5 minutes" in page


def test_turning_the_sync_off_and_on_is_audited_with_who(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    browser = admin.signed_in()
    off = admin.submit(browser, "/admin/", "/admin/sync", enabled="false")
    page = text_of(admin.page(browser, off.headers["location"]))
    assert "Sync off" in page and "changes are waiting to go to Dynamics" in page
    admin.submit(browser, "/admin/", "/admin/sync", enabled="true")
    assert "Sync on" in text_of(admin.page(browser, "/admin/"))
    audit = text_of(admin.page(browser, "/admin/audit"))
    assert "ana@example.com sync disabled" in audit and "ana@example.com sync enabled" in audit


def test_errors_page_names_the_person_and_retry_queues_it(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    person = _reject_a_phone(synced_admin)
    browser = admin.signed_in()
    page = admin.page(browser, "/admin/errors")
    text = text_of(page)
    name = f"{person['firstName']} {person['lastName']}"
    assert "Sync errors (1)" in text and name in text and str(person["email"]) in text
    assert "0x80040265" in text and "digits only" in text
    assert f'href="/admin/people/{person["id"]}"' in page

    assert "Sync errors (0)" in text_of(admin.page(browser, "/admin/errors?entity=contact"))
    assert "Sync errors (1)" in text_of(admin.page(browser, "/admin/errors?q=80040265"))
    assert "Sync errors (0)" in text_of(admin.page(browser, "/admin/errors?q=no-such-text"))

    exported = browser.get("/admin/errors.csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert exported.headers["content-type"].startswith("text/csv")
    assert [(r["email"], r["error_code"]) for r in rows] == [(person["email"], "0x80040265")]

    with admin.engine.connect() as conn:
        before = conn.execute(select(sync_outbox.c.person_id)).scalars().all()
    assert before == []
    error_id = rows[0]["id"]
    answer = admin.submit(browser, "/admin/errors", "/admin/errors/retry", error_id=error_id)
    assert "Queued 1 failing record" in text_of(admin.page(browser, answer.headers["location"]))
    with admin.engine.connect() as conn:
        queued = conn.execute(select(sync_outbox.c.person_id)).scalars().all()
        actions = conn.execute(select(audit_log.c.actor, audit_log.c.action)).all()
    assert queued == [person["id"]]
    assert ("ana@example.com", "sync_errors_retried") in actions


def test_person_page_shows_fields_and_the_activity_log(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    lead_id, person = _first_lead_person(synced_admin)
    assert synced_admin.org.alex().patch("leads", lead_id, {"address1_city": "Dynamics City"})
    edit_person(admin.engine, int(str(person["id"])), city="Marketing City", title="Head of Ops")
    synced_admin.cycle.run()
    edit_person(admin.engine, int(str(person["id"])), phone="not a phone")
    synced_admin.cycle.run()

    browser = admin.signed_in()
    found = text_of(admin.page(browser, f"/admin/people?q={person['email']}"))
    assert f"{person['firstName']} {person['lastName']}" in found
    assert str(person["lastName"]) in text_of(
        admin.page(browser, f"/admin/people?q={str(person['lastName'])[:3]}")
    )
    page = text_of(admin.page(browser, f"/admin/people/{person['id']}"))
    html = admin.page(browser, f"/admin/people/{person['id']}")
    expected = (
        f"https://org.example.com/main.aspx?etn=lead&amp;id={lead_id}&amp;pagetype=entityrecord"
    )
    assert f'href="{expected}"' in html and "Open in Dynamics" in html
    created = str(person["createdAt"])  # wire format, shown as "YYYY-MM-DD HH:MM:SS UTC"
    assert "Dynamics Lead" in page and f"Created {created[:10]} {created[11:19]} UTC" in page
    assert "Job Title title Head of Ops" in page
    # the collision, with both values, the winner and the rule
    assert (
        "city changed on both sides: marketing “Marketing City”, Dynamics “Dynamics City”" in page
    )
    assert "Marketing won rule: marketing_wins_for_leads" in page
    # a Change Data Value with old and new values
    assert f"Job Title : {person['title']} → Head of Ops" in page
    # the failure, with Dynamics' code and message
    assert "Failed 0x80040265" in page and "1 open sync error" in page


def test_contacts_company_fields_are_on_the_person_page(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    with admin.engine.connect() as conn:
        person_id = conn.execute(
            select(crm_links.c.local_id).where(crm_links.c.entity == "contact").limit(1)
        ).scalar_one()
    page = text_of(admin.page(admin.signed_in(), f"/admin/people/{person_id}"))
    assert "Dynamics Contact" in page and "Company" in page and "Company Name company" in page


def test_notifications_count_in_the_header_and_mark_read(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    with admin.engine.begin() as conn:
        notify(
            conn,
            severity="critical",
            kind="sync_stopped",
            title="Dynamics sync stopped",
            message="The background sync stopped: test",
            dedupe_key="test-stop",
        )
    browser = admin.signed_in()
    overview = admin.page(browser, "/admin/")
    assert 'aria-label="1 unread"' in overview or 'aria-label="2 unread"' in overview
    page = text_of(admin.page(browser, "/admin/notifications"))
    assert "critical Dynamics sync stopped" in page
    answer = admin.submit(browser, "/admin/notifications", "/admin/notifications/read", all="true")
    assert answer.status_code == 303
    assert "(0 unread)" in text_of(admin.page(browser, "/admin/notifications"))
    assert "unread" not in admin.page(browser, "/admin/").split("<main")[0].replace(
        "Notifications", ""
    )


def test_no_page_shows_the_dynamics_client_secret(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    _reject_a_phone(synced_admin)
    browser = admin.signed_in()
    _, person = _first_lead_person(synced_admin)
    paths = [
        "/admin/",
        "/admin/errors",
        "/admin/errors.csv",
        "/admin/people",
        f"/admin/people/{person['id']}",
        "/admin/notifications",
        "/admin/audit",
        "/admin/users",
        "/admin/no-such-page",
        "/metrics",
        "/readyz",
    ]
    for path in paths:
        body = browser.get(path).text
        assert DYNAMICS_SECRET not in body, path
    assert admin.settings.dynamics.client_secret.reveal() == DYNAMICS_SECRET


def test_users_page_adds_a_user_changes_role_and_disables(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    browser = admin.signed_in()
    added = admin.submit(
        browser, "/admin/users", "/admin/users", email="Lee@Example.com", role="viewer"
    )
    text = text_of(added.text)
    assert "Password of lee@example.com (shown only now" in text
    password = text.split("copy it): ")[1].split(" ")[0]
    lee = admin.users.by_email("lee@example.com")
    assert lee is not None and lee.role == "viewer"
    lee_browser = admin.signed_in("lee@example.com", password)

    admin.submit(browser, "/admin/users", f"/admin/users/{lee.id}", action="role", role="admin")
    assert admin.users.by_email("lee@example.com").role == "admin"  # type: ignore[union-attr]
    admin.submit(browser, "/admin/users", f"/admin/users/{lee.id}", action="disable")
    assert lee_browser.get("/admin/").status_code == 303  # signed out everywhere
    assert admin.sign_in(admin.browser(), "lee@example.com", password).status_code == 401
    me = admin.users.by_email("ana@example.com")
    assert me is not None
    self_change = admin.submit(browser, "/admin/users", f"/admin/users/{me.id}", action="disable")
    assert self_change.status_code == 400
    audit = text_of(admin.page(browser, "/admin/audit"))
    for action in ("admin user created", "admin user role changed", "admin user disabled"):
        assert action in audit


def test_errors_grouped_by_kind_and_retry_of_selected(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    lead_ids = synced_admin.org.alex().first_ids("leads", 3)
    people = [person_by_crm_id(admin.engine, "lead", lead) for lead in lead_ids]
    for person in people:
        edit_person(admin.engine, int(str(person["id"])), phone="not a phone")
    assert synced_admin.cycle.run().push.failed == 3
    browser = admin.signed_in()
    text = text_of(admin.page(browser, "/admin/errors"))
    assert (
        "By kind Code Records Example Last seen 0x80040265 3 Business phone: digits only." in text
    )

    rows = list(csv.DictReader(io.StringIO(browser.get("/admin/errors.csv").text)))
    chosen = [row["id"] for row in rows[:2]]
    page = admin.page(browser, "/admin/errors")
    assert 'form="retry-selected"' in page
    answer = browser.post(
        "/admin/errors/retry",
        data={"csrf_token": csrf_token(page), "error_id": chosen},
    )
    assert "Queued 2 failing records" in text_of(admin.page(browser, answer.headers["location"]))
    with admin.engine.connect() as conn:
        queued = set(conn.execute(select(sync_outbox.c.person_id)).scalars())
    assert queued == {int(row["person_id"]) for row in rows[:2]}
    nothing = browser.post("/admin/errors/retry", data={"csrf_token": csrf_token(page)})
    assert nothing.status_code == 400 and "Choose the errors to retry." in text_of(nothing.text)


def test_activity_log_filtered_by_type(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    lead_id, person = _first_lead_person(synced_admin)
    assert synced_admin.org.alex().patch("leads", lead_id, {"address1_city": "Dynamics City"})
    edit_person(admin.engine, int(str(person["id"])), city="Marketing City")
    synced_admin.cycle.run()
    browser = admin.signed_in()
    changed = f"City : {person['city']} → Marketing City"  # the Change Data Value row
    every = text_of(admin.page(browser, f"/admin/people/{person['id']}"))
    assert changed in every and "Microsoft Sync Collision" in every
    only = admin.page(browser, f"/admin/people/{person['id']}?type={SYNC_COLLISION}")
    log = text_of(only.split('id="activity-log"')[1].split("<h2>Fields")[0])
    assert "Microsoft Sync Collision" in log and changed not in log
    assert f'<option value="{SYNC_COLLISION}" selected>' in only
