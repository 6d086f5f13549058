"""Text the database cannot store (a lone UTF-16 surrogate, NUL) is refused record by record
and matches nothing in a lookup: it never fails a whole call, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from marketo_harness import MarketoHarness

UNSTORABLE = ["\ud800x", "a\udfffb", "nul\x00here"]


def _post(harness: MarketoHarness, path: str, document: Any, **params: str) -> dict[str, Any]:
    """POST ``document`` as JSON written with escapes (``"\\ud800"``), as a client sends it."""
    reply = harness.http.post(
        path,
        content=json.dumps(document).encode("ascii"),
        params=params,
        headers={**harness.auth, "Content-Type": "application/json"},
    )
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    return body


def _lead(harness: MarketoHarness, email: str) -> list[dict[str, Any]]:
    reply = harness.get(
        "/rest/v1/leads.json",
        {"filterType": "email", "filterValues": email, "fields": "email,firstName"},
    )
    result: list[dict[str, Any]] = reply["result"]
    return result


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_sync_leads_skips_the_unstorable_record_and_saves_the_others(
    marketo_db: MarketoHarness, bad: str
) -> None:
    reply = _post(
        marketo_db,
        "/rest/v1/leads.json",
        {
            "input": [
                {"email": "good1@example.com", "firstName": "Ada"},
                {"email": "bad@example.com", "firstName": bad},
                {"email": "good2@example.com", "lastName": "Lovelace"},
            ]
        },
    )
    assert reply["success"] is True
    first, refused, third = reply["result"]
    assert first["status"] == "created" and third["status"] == "created"
    assert refused["status"] == "skipped"
    (reason,) = refused["reasons"]
    assert reason["code"] == "1001"
    assert "firstName" in reason["message"]
    assert ("NUL" if "\x00" in bad else "surrogate") in reason["message"]
    assert _lead(marketo_db, "good1@example.com")[0]["firstName"] == "Ada"
    assert len(_lead(marketo_db, "good2@example.com")) == 1
    assert _lead(marketo_db, "bad@example.com") == []


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_update_only_skips_the_unstorable_record_and_keeps_its_value(
    marketo_db: MarketoHarness, bad: str
) -> None:
    marketo_db.post_json(
        "/rest/v1/leads.json",
        {
            "input": [
                {"email": "one@example.com", "firstName": "One"},
                {"email": "two@example.com", "firstName": "Two"},
            ]
        },
    )
    reply = _post(
        marketo_db,
        "/rest/v1/leads.json",
        {
            "action": "updateOnly",
            "lookupField": "email",
            "input": [
                {"email": "one@example.com", "firstName": bad},
                {"email": "two@example.com", "firstName": "Deux"},
            ],
        },
    )
    assert [item["status"] for item in reply["result"]] == ["skipped", "updated"]
    assert reply["result"][0]["reasons"][0]["code"] == "1001"
    assert _lead(marketo_db, "one@example.com")[0]["firstName"] == "One"
    assert _lead(marketo_db, "two@example.com")[0]["firstName"] == "Deux"


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_unstorable_lookup_key_in_sync_leads_is_skipped(
    marketo_db: MarketoHarness, bad: str
) -> None:
    reply = _post(
        marketo_db,
        "/rest/v1/leads.json",
        {
            "lookupField": "externalCompanyId",
            "input": [
                {"externalCompanyId": bad, "email": "k1@example.com"},
                {"externalCompanyId": "ACME", "email": "k2@example.com"},
            ],
        },
    )
    assert reply["success"] is True
    assert reply["result"][0]["status"] == "skipped"
    assert reply["result"][1]["status"] == "created"


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_tunnelled_filter_values_match_nothing_but_the_others_are_found(
    marketo_db: MarketoHarness, bad: str
) -> None:
    marketo_db.post_json("/rest/v1/leads.json", {"input": [{"email": "found@example.com"}]})
    reply = _post(
        marketo_db,
        "/rest/v1/leads.json",
        {"filterType": "email", "filterValues": [bad, "found@example.com"]},
        _method="GET",
    )
    assert reply["success"] is True
    assert [lead["email"] for lead in reply["result"]] == ["found@example.com"]
    only_bad = _post(
        marketo_db,
        "/rest/v1/leads.json",
        {"filterType": "externalCompanyId", "filterValues": [bad]},
        _method="GET",
    )
    assert only_bad == {"requestId": only_bad["requestId"], "success": True, "result": []}


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_list_names_that_cannot_exist_match_no_list(marketo_db: MarketoHarness, bad: str) -> None:
    created = marketo_db.http.post(
        "/rest/asset/v1/staticLists.json", data={"name": "Webinar"}, headers=marketo_db.auth
    ).json()
    assert created["success"] is True
    by_names = _post(marketo_db, "/rest/v1/lists.json", {"name": [bad]}, _method="GET")
    assert by_names["success"] is True
    assert by_names["result"] == []  # not "every list": the filter still applies
    mixed = _post(marketo_db, "/rest/v1/lists.json", {"name": [bad, "Webinar"]}, _method="GET")
    assert [item["name"] for item in mixed["result"]] == ["Webinar"]
    by_name = _post(
        marketo_db, "/rest/asset/v1/staticList/byName.json", {"name": bad}, _method="GET"
    )
    assert by_name["success"] is True
    assert by_name.get("result", []) == []


def test_company_lookup_with_unstorable_values_finds_the_others(
    marketo_db: MarketoHarness,
) -> None:
    for bad in UNSTORABLE:
        reply = _post(
            marketo_db,
            "/rest/v1/companies.json",
            {"filterType": "externalCompanyId", "filterValues": [bad, "nobody"]},
            _method="GET",
        )
        assert reply["success"] is True, reply
        assert reply["result"] == []
