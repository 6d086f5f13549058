"""Lead resources over HTTP: sync, read, filter, delete, describe (spec marketo-rest §4)."""

from __future__ import annotations

from typing import Any

from marketo_harness import MarketoHarness
from sqlalchemy import func, select

from crmsync.marketing.fields import add_local_field
from crmsync.store import tables

LEADS = "/rest/v1/leads.json"


def _sync(marketo: MarketoHarness, records: list[Any], **options: Any) -> dict[str, Any]:
    return marketo.post_json(LEADS, {"input": records, **options})


def _person_count(marketo: MarketoHarness) -> int:
    with marketo.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.persons)).scalar_one())


def test_sync_creates_updates_and_reports_in_input_order(marketo: MarketoHarness) -> None:
    """§4.5: createOrUpdate by email; results in input order with ids and statuses."""
    created = _sync(
        marketo,
        [
            {"email": "ada@example.com", "firstName": "Ada", "numberOfEmployees": "12"},
            {"email": "alan@example.com", "lastName": "Turing"},
        ],
    )
    assert created["success"] is True
    assert [item["status"] for item in created["result"]] == ["created", "created"]
    ada_id = created["result"][0]["id"]
    updated = _sync(marketo, [{"email": "ADA@example.com", "lastName": "Lovelace"}])
    assert updated["result"] == [{"id": ada_id, "status": "updated"}]
    lead = marketo.get(f"/rest/v1/lead/{ada_id}.json", {"fields": "email,firstName,lastName"})
    assert lead["result"] == [
        {"id": ada_id, "email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"}
    ]


def test_create_only_update_only_and_create_duplicate(marketo_db: MarketoHarness) -> None:
    """§4.5: createOnly on an existing lead is 1005, updateOnly on none is 1004."""
    first = _sync(marketo_db, [{"email": "grace@example.com"}], action="createOnly")
    lead_id = first["result"][0]["id"]
    again = _sync(marketo_db, [{"email": "grace@example.com"}], action="createOnly")
    assert again["result"] == [
        {"status": "skipped", "reasons": [{"code": "1005", "message": "Lead already exists"}]}
    ]
    missing = _sync(marketo_db, [{"email": "nobody@example.com"}], action="updateOnly")
    assert missing["result"][0]["reasons"][0]["code"] == "1004"
    by_id = _sync(
        marketo_db, [{"id": lead_id, "title": "Admiral"}], action="updateOnly", lookupField="id"
    )
    assert by_id["result"] == [{"id": lead_id, "status": "updated"}]
    duplicate = _sync(marketo_db, [{"email": "grace@example.com"}], action="createDuplicate")
    assert duplicate["result"][0]["status"] == "created"
    ambiguous = _sync(marketo_db, [{"email": "grace@example.com", "title": "x"}])
    assert ambiguous["result"][0]["reasons"][0]["code"] == "1007"
    found = marketo_db.get(
        LEADS, {"filterType": "email", "filterValues": "grace@example.com", "fields": "title"}
    )
    assert sorted(item["title"] or "" for item in found["result"]) == ["", "Admiral"]


def test_bad_records_are_skipped_with_reasons_and_change_nothing(
    marketo_db: MarketoHarness,
) -> None:
    """§3 / §4.5: unknown field 1006 and a wrong value type are per record; others succeed."""
    reply = _sync(
        marketo_db,
        [
            {"email": "ok@example.com"},
            {"email": "x@example.com", "favouriteColour": "blue"},
            {"email": "y@example.com", "numberOfEmployees": "many"},
            "not an object",
        ],
    )
    statuses = [item["status"] for item in reply["result"]]
    assert statuses == ["created", "skipped", "skipped", "skipped"]
    assert reply["result"][1]["reasons"] == [
        {"code": "1006", "message": "Field 'favouriteColour' not found"}
    ]
    reason = reply["result"][2]["reasons"][0]
    assert reason["code"] == "1001"
    assert "numberOfEmployees" in reason["message"] and "integer" in reason["message"]
    assert reply["result"][3]["reasons"][0]["code"] == "1003"
    assert _person_count(marketo_db) == 1


def test_malformed_json_wrong_content_type_and_too_many_records(marketo_db: MarketoHarness) -> None:
    """§3: 609 malformed JSON, 612 wrong content type, 1003 over 300 records; nothing written."""
    bad_json = marketo_db.http.post(
        LEADS,
        content=b'{"input": [',
        headers={**marketo_db.auth, "Content-Type": "application/json"},
    ).json()
    assert bad_json["errors"] == [{"code": "609", "message": "Invalid JSON"}]
    wrong_type = marketo_db.http.post(
        LEADS,
        content=b'{"input": [{"email": "a@example.com"}]}',
        headers={**marketo_db.auth, "Content-Type": "text/plain"},
    ).json()
    assert wrong_type["errors"][0]["code"] == "612"
    too_many = _sync(marketo_db, [{"email": f"p{i}@example.com"} for i in range(301)])
    assert too_many["success"] is False
    assert too_many["errors"][0]["code"] == "1003"
    blank = _sync(marketo_db, [])
    assert blank["errors"][0]["code"] == "701"
    bad_action = _sync(marketo_db, [{"email": "a@example.com"}], action="upsert")
    assert bad_action["errors"][0]["code"] == "1003"
    assert _person_count(marketo_db) == 0


def test_filter_type_lookup_paging_and_unknown_fields(marketo_db: MarketoHarness) -> None:
    """§4.4: filter by email or id, pages of batchSize with nextPageToken, 1006 for fields."""
    created = _sync(
        marketo_db, [{"email": f"p{i}@example.com", "firstName": f"P{i}"} for i in range(5)]
    )
    ids = [item["id"] for item in created["result"]]
    emails = ",".join(f"p{i}@example.com" for i in range(5))
    page = marketo_db.get(
        LEADS,
        {
            "filterType": "email",
            "filterValues": emails,
            "fields": ["email", "firstName"],
            "batchSize": 2,
        },
    )
    assert [item["id"] for item in page["result"]] == ids[:2]
    collected = list(page["result"])
    while "nextPageToken" in page:
        page = marketo_db.get(
            LEADS,
            {
                "filterType": "email",
                "filterValues": emails,
                "fields": "email,firstName",
                "batchSize": 2,
                "nextPageToken": page["nextPageToken"],
            },
        )
        collected += page["result"]
    assert [item["firstName"] for item in collected] == [f"P{i}" for i in range(5)]
    by_id = marketo_db.get(LEADS, {"filterType": "id", "filterValues": f"{ids[3]},999999"})
    assert [item["id"] for item in by_id["result"]] == [ids[3]]
    assert set(by_id["result"][0]) >= {"id", "email", "firstName", "lastName", "createdAt"}
    unknown = marketo_db.get(
        LEADS, {"filterType": "email", "filterValues": "a@b.c", "fields": "shoeSize"}
    )
    assert unknown["errors"] == [{"code": "1006", "message": "Field 'shoeSize' not found"}]
    unsupported = marketo_db.get(LEADS, {"filterType": "firstName", "filterValues": "P1"})
    assert unsupported["errors"][0]["code"] == "1011"
    missing = marketo_db.get(LEADS, {"filterType": "email"})
    assert missing["errors"][0]["code"] == "701"
    assert marketo_db.get("/rest/v1/lead/999999.json")["result"] == []


def test_delete_in_both_forms_and_unknown_ids(marketo: MarketoHarness) -> None:
    """§4.6: POST leads/delete.json and DELETE leads.json; unknown id skipped with 1004."""
    created = _sync(marketo, [{"email": f"d{i}@example.com"} for i in range(3)])
    ids = [item["id"] for item in created["result"]]
    documented = marketo.post_json(
        "/rest/v1/leads/delete.json", {"input": [{"id": ids[0]}, {"id": 424242}]}
    )
    assert documented["result"] == [
        {"id": ids[0], "status": "deleted"},
        {
            "id": 424242,
            "status": "skipped",
            "reasons": [{"code": "1004", "message": "Lead not found"}],
        },
    ]
    client_form = marketo.http.request(
        "DELETE", LEADS, json={"input": [{"id": ids[1]}]}, headers=marketo.auth
    ).json()
    assert client_form["result"] == [{"id": ids[1], "status": "deleted"}]
    by_query = marketo.http.post(
        "/rest/v1/leads/delete.json", params={"id": ids[2]}, headers=marketo.auth
    ).json()
    assert by_query["result"] == [{"id": ids[2], "status": "deleted"}]
    assert _person_count(marketo) == 0


def test_describe_and_describe2(marketo: MarketoHarness) -> None:
    """§4.1 / §4.2: every field with id, type, length and REST name; searchable fields."""
    described = marketo.get("/rest/v1/leads/describe.json")["result"]
    email = next(item for item in described if item["rest"]["name"] == "email")
    assert email["displayName"] == "Email Address"
    assert email["dataType"] == "email"
    assert email["length"] == 255
    assert email["rest"]["readOnly"] is False
    created_at = next(item for item in described if item["rest"]["name"] == "createdAt")
    assert created_at["rest"]["readOnly"] is True
    assert len({item["id"] for item in described}) == len(described)
    described2 = marketo.get("/rest/v1/leads/describe2.json")["result"]
    assert described2[0]["name"] == "API Lead"
    assert ["email"] in described2[0]["searchableFields"]
    crm_type = next(f for f in described2[0]["fields"] if f["name"] == "crmType")
    assert crm_type == {
        "name": "crmType",
        "displayName": "CRM Type",
        "dataType": "string",
        "length": 20,
        "updateable": False,
        "crmManaged": True,
    }


def test_schema_fields_browse_and_lookup(marketo: MarketoHarness) -> None:
    """§4.13: the field schema pages with moreResult/nextPageToken; custom fields flagged."""
    with marketo.engine.begin() as conn:
        add_local_field(conn, "person", "favouriteColour", "Favourite Colour", "string")
    names: list[str] = []
    params: dict[str, Any] = {"batchSize": 25}
    while True:
        page = marketo.get("/rest/v1/leads/schema/fields.json", params)
        names += [item["name"] for item in page["result"]]
        if not page["moreResult"]:
            break
        params["nextPageToken"] = page["nextPageToken"]
    assert names[0] == "id" and names[-1] == "favouriteColour"
    assert len(names) == len(set(names))
    custom = marketo.get("/rest/v1/leads/schema/fields/favouriteColour.json")["result"][0]
    assert (custom["isCustom"], custom["dataType"], custom["length"]) == (True, "string", 255)
    unknown = marketo.get("/rest/v1/leads/schema/fields/shoeSize.json")
    assert unknown["errors"][0]["code"] == "1006"
