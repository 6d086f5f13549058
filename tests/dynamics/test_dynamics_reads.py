"""Reads against handlers built from the documented examples (spec §0, §2d, §2e, §3)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote

import httpx
import pytest
from dynamics_testkit import ORG, error_response, json_response, make_client

from crmsync.dynamics.types import LookupValue
from crmsync.errors import ConfigurationError, RecordNotFoundError

# The documented paging example (spec §3): nextLink is an absolute URL with an XML paging cookie.
NEXT_LINK = (
    "https://contoso.crm.dynamics.com/api/data/v9.2/contacts?$select=fullname&$skiptoken="
    "%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%2520page%253d%25221%2522%253e"
    "%253ccontactid%2520last%253d%2522%257bD5026A4D-0000-0000-0000-000000000000%257d%2522%2520"
    "first%253d%2522%257b49B0BE2E-0000-0000-0000-000000000000%257d%2522%2520%252f%253e%253c%252f"
    "cookie%253e%22%20istracking=%22False%22%20/%3E"
)


def test_paging_follows_next_link_verbatim_with_the_same_prefer() -> None:
    """§3: resend the same Prefer: odata.maxpagesize, follow nextLink as given, stop without it."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "$skiptoken" not in str(request.url):
            return json_response(
                200,
                {
                    "@odata.context": f"{ORG}/api/data/v9.2/$metadata#contacts(fullname)",
                    "value": [
                        {
                            "@odata.etag": 'W/"72201545"',
                            "fullname": "Yvonne McKay (sample)",
                            "contactid": "49b0be2e-0000-0000-0000-000000000000",
                        },
                        {
                            "@odata.etag": 'W/"72201546"',
                            "fullname": "Susanna Stubberod (sample)",
                            "contactid": "d5026a4d-0000-0000-0000-000000000000",
                        },
                    ],
                    "@odata.nextLink": NEXT_LINK,
                },
                {"Preference-Applied": "odata.maxpagesize=2"},
            )
        return json_response(
            200,
            {
                "value": [
                    {
                        "@odata.etag": 'W/"72201547"',
                        "fullname": "Nancy Anderson (sample)",
                        "contactid": "70bf4d48-0000-0000-0000-000000000000",
                    }
                ]
            },
        )

    client = make_client(handler)
    records = list(client.iter_records("contacts", ["fullname"], page_size=2))

    assert [r.values["fullname"] for r in records] == [
        "Yvonne McKay (sample)",
        "Susanna Stubberod (sample)",
        "Nancy Anderson (sample)",
    ]
    assert records[0].id == "49b0be2e-0000-0000-0000-000000000000"
    assert records[0].entity == "contact"
    assert records[0].etag == 'W/"72201545"'
    assert len(seen) == 2
    assert unquote(str(seen[1].url)) == unquote(NEXT_LINK)
    for request in seen:
        assert "odata.maxpagesize=2" in request.headers["Prefer"]
        assert "FormattedValue" not in request.headers["Prefer"]
        assert request.headers["OData-Version"] == "4.0"
        assert request.headers["OData-MaxVersion"] == "4.0"
        assert request.headers["Accept"] == "application/json"
    assert "$select=fullname,contactid" in unquote(str(seen[0].url))
    assert client.stats().requests_by_kind["read"] == 2


def test_values_are_typed_dates_aware_and_lookups_resolved() -> None:
    """§2d/§2e: `_x_value` + lookuplogicalname → LookupValue; UTC ISO strings → aware datetime."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert (
            "$select=firstname,_ownerid_value,_parentaccountid_value,modifiedon,leadsourcecode,donotemail,revenue,leadid"
            in unquote(str(request.url))
        )
        assert (
            'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'
            in request.headers["Prefer"]
        )
        return json_response(
            200,
            {
                "value": [
                    {
                        "@odata.etag": 'W/"468026"',
                        "firstname": "Ada",
                        "_ownerid_value": "5CA9D7E0-0000-0000-0000-000000000001",
                        "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "team",
                        "_ownerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty": (
                            "ownerid"
                        ),
                        "_parentaccountid_value": None,
                        "modifiedon": "2016-09-28T22:57:53Z",
                        "leadsourcecode": 8,
                        "donotemail": True,
                        "revenue": 100000.5,
                        "leadid": "7eb682f1-ca75-e511-80d4-00155d2a68d1",
                    }
                ]
            },
        )

    client = make_client(handler)
    select = [
        "firstname",
        "ownerid",
        "parentaccountid",
        "modifiedon",
        "leadsourcecode",
        "donotemail",
        "revenue",
    ]
    (record,) = client.iter_records("leads", select)

    assert record.values["ownerid"] == LookupValue("5ca9d7e0-0000-0000-0000-000000000001", "team")
    assert record.values["parentaccountid"] is None
    assert record.values["modifiedon"] == datetime(2016, 9, 28, 22, 57, 53, tzinfo=UTC)
    assert record.modified_on == datetime(2016, 9, 28, 22, 57, 53, tzinfo=UTC)
    assert record.values["leadsourcecode"] == 8
    assert record.values["donotemail"] is True
    assert record.values["revenue"] == 100000.5
    assert "leadid" not in record.values
    assert not any("@" in name for name in record.values)


def test_filter_and_orderby_are_encoded_without_skip() -> None:
    """§3: `$filter` literals URL-encoded (`+` → %2B), `$orderby` with the primary key, no $skip."""
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return json_response(200, {"value": []})

    client = make_client(handler)
    list(
        client.iter_records(
            "leads",
            ["emailaddress1"],
            filter="emailaddress1 eq 'ada+news@example.com' and lastname eq 'O''Bryan'",
            orderby="modifiedon asc,leadid asc",
        )
    )
    assert "%2B" in urls[0]
    assert "$skip" not in urls[0]
    assert (
        "$filter=emailaddress1%20eq%20'ada%2Bnews@example.com'%20and%20lastname%20eq%20'O''Bryan'"
        in urls[0]
    )
    assert "$orderby=modifiedon%20asc,leadid%20asc" in urls[0]


def test_get_unknown_record_raises_record_not_found_with_context() -> None:
    """§3 'Retrieve one': 404 0x80040217 → RecordNotFoundError carrying entity, id, status, code."""

    def handler(request: httpx.Request) -> httpx.Response:
        return error_response(
            404, "0x80040217", "lead With Id = 7eb682f1-ca75-e511-80d4-00155d2a68d1 Does Not Exist"
        )

    client = make_client(handler)
    with pytest.raises(RecordNotFoundError) as caught:
        client.get("leads", "7eb682f1-ca75-e511-80d4-00155d2a68d1", ["firstname"])
    assert caught.value.entity == "lead"
    assert caught.value.record_id == "7eb682f1-ca75-e511-80d4-00155d2a68d1"
    assert caught.value.status == 404
    assert caught.value.code == "0x80040217"


def test_get_returns_one_typed_record() -> None:
    """§3 'Retrieve one': `GET /leads(<id>)?$select=...` → the record with its ETag."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/leads(7eb682f1-ca75-e511-80d4-00155d2a68d1)")
        return json_response(
            200,
            {
                "@odata.context": f"{ORG}/api/data/v9.2/$metadata#leads(firstname)/$entity",
                "@odata.etag": 'W/"468026"',
                "firstname": "Ada",
                "leadid": "7eb682f1-ca75-e511-80d4-00155d2a68d1",
            },
        )

    record = make_client(handler).get(
        "leads", "7eb682f1-ca75-e511-80d4-00155d2a68d1", ["firstname"]
    )
    assert record.values == {"firstname": "Ada"}
    assert record.etag == 'W/"468026"'


def test_unknown_entity_set_is_resolved_from_metadata_once() -> None:
    """§2a: entity set names are read from EntityDefinitions, never derived by adding "s"."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(unquote(str(request.url)))
        if "EntityDefinitions" in str(request.url):
            return json_response(
                200,
                {
                    "value": [
                        {
                            "LogicalName": "new_project",
                            "EntitySetName": "new_projects",
                            "PrimaryIdAttribute": "new_projectid",
                        }
                    ]
                },
            )
        return json_response(
            200,
            {"value": [{"new_name": "X", "new_projectid": "00000000-0000-0000-0000-00000000000a"}]},
        )

    client = make_client(handler)
    first = list(client.iter_records("new_project", ["new_name"]))
    second = list(client.iter_records("new_projects", ["new_name"]))
    assert first[0].entity == second[0].entity == "new_project"
    assert first[0].id == "00000000-0000-0000-0000-00000000000a"
    assert sum("EntityDefinitions" in url for url in calls) == 1


def test_page_size_above_the_documented_maximum_is_refused() -> None:
    """§3: "You can't request a page size larger than 5,000"."""
    client = make_client(lambda request: json_response(200, {"value": []}))
    with pytest.raises(ConfigurationError):
        list(client.iter_records("leads", ["firstname"], page_size=5001))


def test_a_reader_that_stops_early_leaves_at_most_one_page_fetched_ahead() -> None:
    """Pages are fetched one ahead for speed; stopping early costs at most that one request."""
    served: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("$skiptoken", "0"))
        served.append(page)
        rows = [{"leadid": f"00000000-0000-0000-0000-{page * 10 + n:012d}"} for n in range(10)]
        return json_response(
            200,
            {"value": rows, "@odata.nextLink": f"{ORG}/api/data/v9.2/leads?$skiptoken={page + 1}"},
        )

    client = make_client(handler)
    reader = client.iter_records("leads", [], page_size=10)
    first_page = [next(reader) for _ in range(10)]
    reader.close()
    assert len(first_page) == 10
    assert served == [0, 1]
    assert client.stats().requests == 2
