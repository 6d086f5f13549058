"""A sync user that lost the write privilege on leads, as the admin UI and API show it: the
Overview says the lead changes wait and how to fix it, the API status lists the wait, the
Notifications page has the one critical notification, and Validate on the Setup page fails
the write-privilege line with its fix."""

from __future__ import annotations

import dataclasses

from admin_harness import ADMIN_EMAIL, SyncedAdmin, csrf_token, text_of
from sync_harness import edit_person, engine_client, person_by_crm_id


def test_a_lost_write_privilege_shows_on_overview_api_notifications_and_setup(
    synced_admin: SyncedAdmin,
) -> None:
    admin, org = synced_admin.admin, synced_admin.org
    lead_id = org.alex().first_ids("leads", 1)[0]
    person = person_by_crm_id(admin.engine, "lead", lead_id)
    org.admin("PATCH", "privileges", {"table": "lead", "revoke": ["write"]})
    edit_person(admin.engine, int(str(person["id"])), title="Held back")
    synced_admin.cycle.run()
    browser = admin.signed_in()

    overview = text_of(admin.page(browser, "/admin/"))
    assert "Changes to lead records wait since" in overview
    assert "permission lost: prvWriteLead missing" in overview
    assert "Grant prvWriteLead at Organization depth to the sync user's security role" in overview

    user = admin.users.by_email(ADMIN_EMAIL)
    assert user is not None
    token = admin.users.create_token(user.id, "test", actor="test")
    status = browser.get(
        "/api/admin/v1/status", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert [w["entity"] for w in status["writes_waiting"]] == ["lead"]
    assert status["writes_waiting"][0]["summary"] == "permission lost: prvWriteLead missing"
    assert status["unread_critical_notifications"] == 1
    assert status["open_errors"] == 0

    metrics = browser.get("/metrics").text
    assert 'crmsync_sync_writes_waiting{entity="lead",reason="permission_lost"} 1.0' in metrics

    notices = text_of(admin.page(browser, "/admin/notifications"))
    assert notices.count("Permission lost: changes to lead records wait") == 1

    context = admin.app.state.admin
    admin.app.state.admin = dataclasses.replace(
        context, dynamics_client=lambda: engine_client(org.base)
    )
    html = admin.page(browser, "/admin/setup")
    answer = browser.post("/admin/setup/validate", data={"csrf_token": csrf_token(html)})
    setup = text_of(answer.text)
    assert (
        "lead: write privileges (create and update) Failed missing prvWriteLead at "
        "Organization depth" in setup
    )
    assert "Add prvWriteLead at Organization depth to the sync user's security role" in setup
    assert "contact: write privileges (create and update) Passed" in setup

    org.admin("PATCH", "privileges", {"table": "lead", "grant": ["write"]})
    synced_admin.cycle.run()
    assert "Changes to lead records wait" not in text_of(admin.page(browser, "/admin/"))
    assert org.row("lead", lead_id)["jobtitle"] == "Held back"
