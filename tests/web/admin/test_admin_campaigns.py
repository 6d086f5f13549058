"""The campaign pages and the campaign endpoints of the admin API: list, detail with the smart
list's live count and members, a new campaign from a pasted definition (refused ones come back
with the reason beside the field), activate / deactivate, run a batch campaign now, results
per step; every change audited, viewers refused."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

from admin_harness import ADMIN_EMAIL, VIEWER_EMAIL, AdminApp, csrf_token, text_of
from sqlalchemy import select

from crmsync.marketing.campaigns.schedules import CampaignSchedules, ScheduledRun
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import audit_log, campaign_events, persons
from crmsync.sync.campaign_push import campaign_runner

BATCH = {
    "name": "French people",
    "type": "batch",
    "qualification": "once",
    "smartList": {"filters": [{"field": "country", "operator": "is", "values": ["FR"]}]},
    "flow": [{"type": "change_data_value", "field": "leadStatus", "value": "Nurture"}],
}
TRIGGER_TOML = """name = "Welcome"
type = "trigger"
qualification = "once"

[[triggers]]
type = "person_created"

[[flow]]
type = "change_data_value"
field = "title"
value = "New"
"""


def _people(admin: AdminApp) -> None:
    PersonService(admin.engine).sync(
        [
            {
                "email": "ada@example.com",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "country": "FR",
            },
            {"email": "bob@example.com", "firstName": "Bob", "lastName": "Martin", "country": "FR"},
            {"email": "cy@example.com", "firstName": "Cy", "lastName": "Young", "country": "US"},
        ],
        lookup_field="email",
    )


def _actions(admin: AdminApp) -> list[tuple[str, str]]:
    with admin.engine.connect() as conn:
        return [
            (str(r.actor), str(r.action))
            for r in conn.execute(
                select(audit_log.c.actor, audit_log.c.action).order_by(audit_log.c.id)
            )
        ]


def test_batch_campaign_listed_shown_run_and_its_results(admin_app: AdminApp) -> None:
    _people(admin_app)
    record = CampaignService(admin_app.engine).create(BATCH)
    browser = admin_app.signed_in()

    listing = text_of(admin_app.page(browser, "/admin/campaigns"))
    assert "Campaigns (1)" in listing
    assert (
        "French people Batch Run on request Batch: run on request Change Data Value 0 never"
        in listing
    )

    page = f"/admin/campaigns/{record.id}"
    detail = text_of(admin_app.page(browser, page))
    assert "Smart list (2 people now)" in detail
    assert "Ada Lovelace ada@example.com" in detail and "Bob Martin" in detail
    assert "Cy Young" not in detail
    assert "Run now for 2 people" in detail

    answer = admin_app.submit(browser, page, f"{page}/run")
    assert answer.status_code == 303
    assert "Queued 2 people for the flow" in text_of(
        admin_app.page(browser, answer.headers["location"])
    )
    runner = campaign_runner(admin_app.engine)
    while runner.run_pending():
        pass
    detail = text_of(admin_app.page(browser, page))
    assert "1 Change Data Value field: leadStatus value: Nurture 2 0 0" in detail
    assert "2 people through it" in detail
    assert (ADMIN_EMAIL, "campaign_run") in _actions(admin_app)


def test_new_campaign_from_toml_then_activated_and_deactivated(admin_app: AdminApp) -> None:
    browser = admin_app.signed_in()
    answer = admin_app.submit(
        browser, "/admin/campaigns/new", "/admin/campaigns/new", definition=TRIGGER_TOML
    )
    assert answer.status_code == 303
    page = answer.headers["location"].split("?")[0]
    shown = text_of(admin_app.page(browser, answer.headers["location"]))
    assert "Campaign “Welcome” saved." in shown and "Inactive" in shown
    assert "Person is Created" in shown

    assert admin_app.submit(browser, page, f"{page}/active", active="true").status_code == 303
    assert "Active" in text_of(admin_app.page(browser, "/admin/campaigns")).split("Welcome")[1]
    PersonService(admin_app.engine).sync([{"email": "new@example.com"}], lookup_field="email")
    with admin_app.engine.connect() as conn:
        assert conn.execute(select(campaign_events.c.id)).first() is not None  # the trigger fired
    assert admin_app.submit(browser, page, f"{page}/active", active="false").status_code == 303
    assert "Inactive" in text_of(admin_app.page(browser, page))
    actions = [a for _, a in _actions(admin_app) if a.startswith("campaign_")]
    assert actions == ["campaign_created", "campaign_activated", "campaign_deactivated"]


def test_a_refused_definition_comes_back_with_its_reason(admin_app: AdminApp) -> None:
    browser = admin_app.signed_in()
    bad = TRIGGER_TOML.replace('field = "title"', 'field = "noSuchField"')
    answer = admin_app.submit(
        browser, "/admin/campaigns/new", "/admin/campaigns/new", definition=bad
    )
    assert answer.status_code == 400
    shown = text_of(answer.text)
    assert "There is a problem" in shown
    assert "'noSuchField' is not a writable person field" in shown
    assert 'aria-invalid="true"' in answer.text and "noSuchField" in answer.text  # text kept
    broken = admin_app.submit(
        browser, "/admin/campaigns/new", "/admin/campaigns/new", definition="name = "
    )
    assert broken.status_code == 400 and "not valid TOML" in text_of(broken.text)
    assert CampaignService(admin_app.engine).query()[0] == []


def test_viewers_see_campaigns_but_cannot_change_them(admin_app: AdminApp) -> None:
    record = CampaignService(admin_app.engine).create({**BATCH, "name": "Seen"})
    viewer = admin_app.signed_in(VIEWER_EMAIL, "vic-password-long")
    page = admin_app.page(viewer, f"/admin/campaigns/{record.id}")
    assert "Run now" not in page
    token = csrf_token(page)
    refused = viewer.post(f"/admin/campaigns/{record.id}/run", data={"csrf_token": token})
    assert refused.status_code == 403
    no_token = admin_app.signed_in().post(f"/admin/campaigns/{record.id}/run", data={})
    assert no_token.status_code == 403
    assert admin_app.browser().get("/admin/campaigns/nope").status_code in (303, 400)
    assert admin_app.page(admin_app.signed_in(), "/admin/campaigns")  # still fine
    missing = admin_app.signed_in().get("/admin/campaigns/999")
    assert missing.status_code == 404 and "campaign 999 not found" in text_of(missing.text)


def _bearer(admin: AdminApp, email: str) -> dict[str, str]:
    user = admin.users.by_email(email)
    assert user is not None
    return {"Authorization": f"Bearer {admin.users.create_token(user.id, 'test', actor='t')}"}


def test_campaigns_through_the_admin_api(admin_app: AdminApp) -> None:
    _people(admin_app)
    api = admin_app.browser()
    headers = _bearer(admin_app, ADMIN_EMAIL)
    created = api.post("/api/admin/v1/campaigns", headers=headers, json=BATCH)
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    assert created.json()["steps"] == "Change Data Value"
    refused = api.post(
        "/api/admin/v1/campaigns", headers=headers, json={**BATCH, "name": "x", "type": "weekly"}
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid"

    detail = api.get(f"/api/admin/v1/campaigns/{campaign_id}", headers=headers).json()
    assert detail["smart_list_count"] == 2 and detail["definition"]["name"] == "French people"
    viewer = _bearer(admin_app, VIEWER_EMAIL)
    assert api.post(f"/api/admin/v1/campaigns/{campaign_id}/run", headers=viewer).status_code == 403
    run = api.post(f"/api/admin/v1/campaigns/{campaign_id}/run", headers=headers)
    assert run.status_code == 200 and run.json() == {"queued": 2}
    not_trigger = api.put(
        f"/api/admin/v1/campaigns/{campaign_id}/active", headers=headers, json={"active": True}
    )
    assert not_trigger.status_code == 400
    listed = api.get("/api/admin/v1/campaigns", headers=viewer).json()
    assert [c["name"] for c in listed] == ["French people"]
    assert api.get("/api/admin/v1/campaigns/12345", headers=viewer).status_code == 404


def test_an_active_campaign_edited_on_its_page_stays_active_and_is_audited(
    admin_app: AdminApp,
) -> None:
    """The edit form shows the saved definition; saving a new flow and smart list keeps the
    campaign active, new people go through the new flow, the page says what changed and the
    audit trail has it; a refused edit comes back with the reason and changes nothing."""
    record = CampaignService(admin_app.engine).create(
        {
            "name": "Welcome",
            "active": True,
            "triggers": [{"type": "person_created"}],
            "flow": [{"type": "change_data_value", "field": "title", "value": "New"}],
        }
    )
    browser = admin_app.signed_in()
    edit = f"/admin/campaigns/{record.id}/edit"
    form = admin_app.page(browser, edit)
    saved = html.unescape(form.split('name="definition"')[1].split(">", 1)[1])
    saved = saved.split("</textarea>")[0]
    assert '"value": "New"' in saved and "Edit “Welcome”" in text_of(form)

    changed = saved.replace('"value": "New"', '"value": "Edited"')
    changed = changed.replace(
        '"filters": []', '"filters": [{"field": "country", "operator": "is", "values": ["FR"]}]'
    )
    answer = admin_app.submit(browser, edit, edit, definition=changed)
    assert answer.status_code == 303, text_of(answer.text)
    shown = text_of(admin_app.page(browser, answer.headers["location"]))
    assert "Saved: smartList, flow changed." in shown and "Active" in shown

    PersonService(admin_app.engine).sync(
        [
            {"email": "fr@example.com", "country": "FR"},
            {"email": "us@example.com", "country": "US"},
        ],
        lookup_field="email",
    )
    campaign_runner(admin_app.engine).run_pending()
    with admin_app.engine.connect() as conn:
        titles = {str(r[0]): r[1] for r in conn.execute(select(persons.c.email, persons.c.title))}
    assert titles == {"fr@example.com": "Edited", "us@example.com": None}

    refused = admin_app.submit(
        browser, edit, edit, definition=changed.replace('"title"', '"noSuchField"')
    )
    assert refused.status_code == 400
    assert "'noSuchField' is not a writable person field" in text_of(refused.text)
    assert CampaignService(admin_app.engine).get(record.id).definition.flow[0].params == {
        "field": "title",
        "value": "Edited",
    }
    assert [a for _, a in _actions(admin_app) if a.startswith("campaign_")] == ["campaign_updated"]


def test_campaigns_edited_through_the_admin_api(admin_app: AdminApp) -> None:
    """PATCH changes the parts given, PUT replaces the definition; the type and the active
    state are not changed by an edit; viewers are refused; every edit is audited."""
    api = admin_app.browser()
    headers = _bearer(admin_app, ADMIN_EMAIL)
    campaign_id = api.post("/api/admin/v1/campaigns", headers=headers, json=BATCH).json()["id"]
    url = f"/api/admin/v1/campaigns/{campaign_id}"

    patched = api.patch(
        url, headers=headers, json={"qualification": "every_time", "name": "All French"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "All French"
    assert patched.json()["qualification"] == "every_time"
    detail = api.get(url, headers=headers).json()["definition"]
    assert detail["flow"] == BATCH["flow"] and detail["smartList"]["filters"][0]["values"] == ["FR"]

    replaced = api.put(url, headers=headers, json={**BATCH, "name": "Replaced"})
    assert replaced.status_code == 200 and replaced.json()["qualification"] == "once"
    kind = api.patch(url, headers=headers, json={"type": "trigger"})
    assert kind.status_code == 400
    assert "cannot become a trigger campaign" in kind.json()["error"]["message"]
    viewer = _bearer(admin_app, VIEWER_EMAIL)
    assert api.patch(url, headers=viewer, json={"name": "Nope"}).status_code == 403
    assert api.get(url, headers=headers).json()["name"] == "Replaced"
    audited = [a for _, a in _actions(admin_app) if a == "campaign_updated"]
    assert audited == ["campaign_updated", "campaign_updated"]


def test_a_batch_campaigns_schedule_edited_through_the_api_and_the_form(
    admin_app: AdminApp,
) -> None:
    """PATCH sets a batch campaign's schedule (audited as a change of 'schedule'); the edit
    form shows it, saving it unchanged changes nothing, and a new time on the form replaces
    it; a schedule too far ahead is refused with its reason."""
    api = admin_app.browser()
    headers = _bearer(admin_app, ADMIN_EMAIL)
    campaign_id = api.post("/api/admin/v1/campaigns", headers=headers, json=BATCH).json()["id"]
    url = f"/api/admin/v1/campaigns/{campaign_id}"
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    patched = api.patch(
        url, headers=headers, json={"schedule": {"runAt": soon.isoformat(), "everyDays": 7}}
    )
    assert patched.status_code == 200, patched.text
    schedules = CampaignSchedules(admin_app.engine)
    assert schedules.pending(campaign_id) == [ScheduledRun(soon, 7, None)]
    far = api.patch(url, headers=headers, json={"schedule": {"runAt": "2099-01-01T00:00:00Z"}})
    assert far.status_code == 400 and "two years" in far.json()["error"]["message"]

    browser = admin_app.signed_in()
    edit = f"/admin/campaigns/{campaign_id}/edit"
    form = admin_app.page(browser, edit)
    saved = html.unescape(form.split('name="definition"')[1].split(">", 1)[1])
    saved = saved.split("</textarea>")[0]
    shown_at = soon.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'"runAt": "{shown_at}"' in saved and '"everyDays": 7' in saved
    same = admin_app.submit(browser, edit, edit, definition=saved)
    assert same.status_code == 303
    assert "Nothing changed." in text_of(admin_app.page(browser, same.headers["location"]))
    later = soon + timedelta(days=1)
    moved = admin_app.submit(
        browser,
        edit,
        edit,
        definition=saved.replace(shown_at, later.strftime("%Y-%m-%dT%H:%M:%SZ")),
    )
    assert moved.status_code == 303
    assert "Saved: schedule changed." in text_of(admin_app.page(browser, moved.headers["location"]))
    assert schedules.pending(campaign_id) == [ScheduledRun(later, 7, None)]
    with admin_app.engine.connect() as conn:
        details = conn.execute(
            select(audit_log.c.details)
            .where(audit_log.c.action == "campaign_updated")
            .order_by(audit_log.c.id)
        ).scalars()
        assert [d["changed"] for d in details] == [["schedule"], ["schedule"]]
