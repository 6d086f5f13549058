"""Activities, lead changes, deleted leads and static lists (spec marketo-rest §5, §6.4)."""

from __future__ import annotations

from typing import Any

from marketo_harness import MarketoHarness

from crmsync.marketing.lists import ListService


def _token(marketo: MarketoHarness) -> str:
    reply = marketo.get("/rest/v1/activities/pagingtoken.json", {"sinceDatetime": "2000-01-01"})
    assert "result" not in reply
    token: str = reply["nextPageToken"]
    return token


def _all_pages(marketo: MarketoHarness, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = _token(marketo)
    while True:
        page = marketo.get(path, {**params, "nextPageToken": token})
        assert page["success"] is True, page
        assert isinstance(page["moreResult"], bool)
        items += page["result"]
        token = page["nextPageToken"]
        if not page["moreResult"]:
            return items


def test_activity_types_include_marketo_ids(marketo: MarketoHarness) -> None:
    """§5.1: New Lead 12, Change Data Value 13, Add/Remove from List 24/25, Delete Lead 37."""
    types = {item["id"]: item for item in marketo.get("/rest/v1/activities/types.json")["result"]}
    assert types[12]["name"] == "New Lead"
    assert types[13]["primaryAttribute"] == {"name": "Attribute Name", "dataType": "string"}
    assert {24, 25, 37, 300} <= set(types)


def test_activities_lead_changes_and_deleted_leads(marketo_db: MarketoHarness) -> None:
    """§5.3–5.5: activities by type and lead, paged; old/new values; deletions."""
    created = marketo_db.post_json(
        "/rest/v1/leads.json",
        {"input": [{"email": f"a{i}@example.com", "firstName": f"A{i}"} for i in range(3)]},
    )
    ids = [item["id"] for item in created["result"]]
    marketo_db.post_json(
        "/rest/v1/leads.json", {"input": [{"email": "a0@example.com", "firstName": "Zed"}]}
    )
    new_leads = _all_pages(
        marketo_db, "/rest/v1/activities.json", {"activityTypeIds": "12", "batchSize": 2}
    )
    assert [item["leadId"] for item in new_leads] == ids
    assert all(item["activityDate"].endswith("Z") for item in new_leads)
    only_first = _all_pages(
        marketo_db, "/rest/v1/activities.json", {"activityTypeIds": ["12", "13"], "leadIds": ids[0]}
    )
    assert [item["activityTypeId"] for item in only_first] == [12, 13]
    changes = _all_pages(
        marketo_db, "/rest/v1/activities/leadchanges.json", {"fields": "firstName"}
    )
    change = next(item for item in changes if item["activityTypeId"] == 13)
    assert change["leadId"] == ids[0]
    assert change["fields"][0]["name"] == "firstName"
    assert (change["fields"][0]["oldValue"], change["fields"][0]["newValue"]) == ("A0", "Zed")
    marketo_db.post_json("/rest/v1/leads/delete.json", {"input": [{"id": ids[1]}]})
    deleted = _all_pages(marketo_db, "/rest/v1/activities/deletedleads.json", {})
    assert [(item["leadId"], item["activityTypeId"]) for item in deleted] == [(ids[1], 37)]


def test_activity_parameter_errors(marketo: MarketoHarness) -> None:
    """§5.2–5.4: 704 for a bad date, 701 for missing ids or fields, 1003 for a bad token."""
    bad_date = marketo.get("/rest/v1/activities/pagingtoken.json", {"sinceDatetime": "soon"})
    assert bad_date["errors"][0]["code"] == "704"
    token = _token(marketo)
    no_types = marketo.get("/rest/v1/activities.json", {"nextPageToken": token})
    assert no_types["errors"][0]["code"] == "701"
    too_many = marketo.get(
        "/rest/v1/activities.json",
        {"nextPageToken": token, "activityTypeIds": ",".join(str(i) for i in range(1, 12))},
    )
    assert too_many["errors"][0]["code"] == "1003"
    bad_token = marketo.get(
        "/rest/v1/activities.json", {"nextPageToken": "!!!", "activityTypeIds": "12"}
    )
    assert bad_token["errors"][0]["code"] == "1003"
    no_fields = marketo.get("/rest/v1/activities/leadchanges.json", {"nextPageToken": token})
    assert no_fields["errors"][0]["code"] == "701"
    unknown = marketo.get(
        "/rest/v1/activities/leadchanges.json", {"nextPageToken": token, "fields": "shoeSize"}
    )
    assert unknown["errors"][0]["code"] == "1006"


def test_static_list_membership_in_every_client_form(marketo_db: MarketoHarness) -> None:
    """§6.4: add by query ids or JSON input, ismember by tunnelled POST, remove, list leads."""
    list_id = ListService(marketo_db.engine).create("Webinar")
    created = marketo_db.post_json(
        "/rest/v1/leads.json", {"input": [{"email": f"m{i}@example.com"} for i in range(3)]}
    )
    ids = [item["id"] for item in created["result"]]
    path = f"/rest/v1/lists/{list_id}/leads.json"
    by_query = marketo_db.http.post(
        path, params=[("id", ids[0]), ("id", 999999)], headers=marketo_db.auth
    )
    assert by_query.json()["result"] == [
        {"id": ids[0], "status": "added"},
        {
            "id": 999999,
            "status": "skipped",
            "reasons": [{"code": "1004", "message": "Lead not found"}],
        },
    ]
    by_body = marketo_db.post_json(path, {"input": [{"id": ids[1]}]})
    assert by_body["result"] == [{"id": ids[1], "status": "added"}]
    check = marketo_db.post_json(
        f"/rest/v1/lists/{list_id}/leads/ismember.json",
        {"input": [{"id": ids[0]}, {"id": ids[2]}]},
        params={"_method": "GET"},
    )
    assert [item["status"] for item in check["result"]] == ["memberof", "notmemberof"]
    leads = marketo_db.http.post(
        f"/rest/v1/list/{list_id}/leads.json",
        params={"_method": "GET"},
        data={"fields": "email", "batchSize": "1"},
        headers=marketo_db.auth,
    ).json()
    assert leads["result"] == [{"id": ids[0], "email": "m0@example.com"}]
    assert "nextPageToken" in leads
    removed = marketo_db.http.request(
        "DELETE", path, json={"input": [{"id": ids[0]}, {"id": ids[2]}]}, headers=marketo_db.auth
    ).json()
    assert removed["result"][0] == {"id": ids[0], "status": "removed"}
    assert removed["result"][1]["reasons"][0]["code"] == "1015"
    lists = marketo_db.get("/rest/v1/lists.json", {"name": "Webinar"})["result"]
    assert [(item["id"], item["name"]) for item in lists] == [(list_id, "Webinar")]
    assert marketo_db.get(f"/rest/v1/lists/{list_id}.json")["result"][0]["name"] == "Webinar"
    unknown_list = marketo_db.post_json("/rest/v1/lists/424242/leads.json", {"input": [{"id": 1}]})
    assert unknown_list["errors"][0]["code"] == "1013"


def test_create_static_list_through_the_asset_form(marketo: MarketoHarness) -> None:
    """§6.4 asset API: the form POST Marketo clients use to create a list; duplicates refused."""
    form = {"name": "Customers", "folder": '{"id": 12, "type": "Folder"}'}
    reply = marketo.http.post("/rest/asset/v1/staticLists.json", data=form, headers=marketo.auth)
    item = reply.json()["result"][0]
    assert (item["name"], item["folder"]) == ("Customers", {"id": 12, "type": "Folder"})
    again = marketo.http.post("/rest/asset/v1/staticLists.json", data=form, headers=marketo.auth)
    assert again.json()["errors"][0]["code"] == "709"


def test_browse_lists_pages_by_offset(marketo: MarketoHarness) -> None:
    """Asset API browse: offset/maxReturn pages; past the end, an empty result and a warning."""
    service = ListService(marketo.engine)
    ids = [service.create(f"List {n}") for n in range(5)]
    page = marketo.get("/rest/asset/v1/staticLists.json", {"offset": 2, "maxReturn": 2})
    assert [item["id"] for item in page["result"]] == ids[2:4]
    end = marketo.get("/rest/asset/v1/staticLists.json", {"offset": 5})
    assert end["result"] == [] and end["warnings"]
    too_big = marketo.get("/rest/asset/v1/staticLists.json", {"maxReturn": 201})
    assert too_big["errors"][0]["code"] == "1003"
    by_name = marketo.get("/rest/asset/v1/staticList/byName.json", {"name": "List 3"})
    assert by_name["result"][0]["id"] == ids[3]
    missing = marketo.get("/rest/asset/v1/staticList/424242.json")
    assert missing["result"] == [] and missing["warnings"]
