"""Change tracking against the documented examples (spec §4; B17)."""

from __future__ import annotations

from urllib.parse import unquote

import httpx
import pytest
from dynamics_testkit import ORG, error_response, json_response, make_client

from crmsync.dynamics.types import CrmChange, CrmDelete, DeltaCursor
from crmsync.errors import ConfigurationError, DeltaTokenExpiredError

DELTA_LINK_1 = (
    f"{ORG}/api/data/v9.0/accounts?$select=name,accountnumber,telephone1,fax"
    "&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44"
)
DELTA_LINK_2 = (
    f"{ORG}/api/data/v9.0/accounts?$select=name,telephone1,fax"
    "&$deltatoken=919058%2108%2f22%2f2017%2008%3a21%3a20"
)
SELECT = ["name", "accountnumber", "telephone1", "fax"]


def test_initial_read_pages_and_hands_out_the_cursor_only_with_the_last_page() -> None:
    """§4: large initial loads page with nextLink; only the last page carries the deltaLink."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if "skiptoken" not in str(request.url):
            return json_response(
                200,
                {
                    "value": [
                        {
                            "@odata.etag": 'W/"915244"',
                            "name": "Monte Orton",
                            "accountnumber": None,
                            "telephone1": "555000",
                            "fax": "10101",
                            "accountid": "60c4e274-0000-0000-0000-000000000001",
                        }
                    ],
                    "@odata.nextLink": f"{ORG}/api/data/v9.2/accounts?$select=name&$skiptoken=abc",
                },
                {"Preference-Applied": "odata.track-changes"},
            )
        return json_response(
            200,
            {
                "value": [
                    {
                        "@odata.etag": 'W/"915245"',
                        "name": "Fourth Coffee",
                        "accountnumber": "A-4",
                        "telephone1": None,
                        "fax": None,
                        "accountid": "60c4e274-0000-0000-0000-000000000002",
                    }
                ],
                "@odata.deltaLink": DELTA_LINK_1,
            },
        )

    pages = list(make_client(handler).start_tracking("accounts", SELECT, page_size=1))

    assert [page.cursor for page in pages] == [None, DeltaCursor("account", DELTA_LINK_1)]
    assert [page.last for page in pages] == [False, True]
    names = [
        item.record.values["name"]
        for page in pages
        for item in page.items
        if isinstance(item, CrmChange)
    ]
    assert names == ["Monte Orton", "Fourth Coffee"]
    for request in requests:
        prefer = request.headers["Prefer"]
        assert "odata.track-changes" in prefer
        assert "odata.maxpagesize=1" in prefer
        assert "FormattedValue" not in prefer  # §4: formatted values lose the deltaLink
    first = unquote(str(requests[0].url))
    for forbidden in ("$filter", "$orderby", "$top", "$expand"):
        assert forbidden not in first  # §4: not allowed with change tracking


def test_delta_read_returns_updates_then_tombstones_and_a_new_cursor() -> None:
    """§4: the delta response example — a changed row, a $deletedEntity tombstone, new link."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return json_response(
            200,
            {
                "@odata.context": f"{ORG}/data/v9.0/$metadata#accounts(name,telephone1,fax)/$delta",
                "@odata.deltaLink": DELTA_LINK_2,
                "value": [
                    {
                        "@odata.etag": 'W/"915244"',
                        "name": "Monte Orton",
                        "telephone1": "555000",
                        "fax": "10101",
                        "accountid": "60c4e274-0000-0000-0000-000000000001",
                    },
                    {
                        "@odata.context": f"{ORG}/api/data/v9.0/$metadata#accounts/$deletedEntity",
                        "id": "2e451703-c686-e711-80e5-00155db19e6d",
                        "reason": "deleted",
                    },
                ],
            },
        )

    client = make_client(handler)
    (page,) = list(client.read_changes(DeltaCursor("account", DELTA_LINK_1)))

    assert unquote(seen[0]) == unquote(DELTA_LINK_1)
    change, tombstone = page.items
    assert isinstance(change, CrmChange)
    assert change.record.id == "60c4e274-0000-0000-0000-000000000001"
    assert change.record.values["telephone1"] == "555000"
    assert tombstone == CrmDelete(entity="account", id="2e451703-c686-e711-80e5-00155db19e6d")
    assert page.cursor == DeltaCursor("account", DELTA_LINK_2)
    assert client.stats().requests_by_kind == {"delta": 1}


def test_no_changes_gives_an_empty_page_and_a_new_cursor() -> None:
    """§4: "No changes → value: [] plus a new deltaLink"."""
    client = make_client(
        lambda request: json_response(200, {"value": [], "@odata.deltaLink": DELTA_LINK_2})
    )
    (page,) = list(client.read_changes(DeltaCursor("account", DELTA_LINK_1)))
    assert page.items == ()
    assert page.cursor == DeltaCursor("account", DELTA_LINK_2)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (
            400,
            "0x80044352",
            "Version stamp associated with the client has expired. Please perform a full sync.",
        ),
        (400, "0x80040203", "Invalid argument."),
        (404, "", "Not found"),
    ],
)
def test_expired_or_rejected_delta_token_raises_delta_token_expired(
    status: int, code: str, message: str
) -> None:
    """§4 / B17: any 4xx on a delta link means "reconcile the entity"; a distinct error says so."""
    client = make_client(lambda request: error_response(status, code, message))
    with pytest.raises(DeltaTokenExpiredError) as caught:
        list(client.read_changes(DeltaCursor("account", DELTA_LINK_1)))
    assert caught.value.entity == "account"
    assert caught.value.status == status
    assert client.stats().retries == 0


def test_throttled_delta_read_is_retried_not_reconciled() -> None:
    """§8: a 429 on a delta link is a pause, not an expired token."""
    answers = [
        error_response(
            429,
            "0x80072322",
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
            {"Retry-After": "3"},
        ),
        json_response(200, {"value": [], "@odata.deltaLink": DELTA_LINK_2}),
    ]
    client = make_client(lambda request: answers.pop(0))
    (page,) = list(client.read_changes(DeltaCursor("account", DELTA_LINK_1)))
    assert page.cursor == DeltaCursor("account", DELTA_LINK_2)
    assert client.stats().throttled == 1


def test_initial_read_refused_says_change_tracking_may_be_off() -> None:
    """§4: a table without change tracking refuses odata.track-changes; the error says so (B43)."""
    client = make_client(
        lambda request: error_response(
            400, "0x80040203", "Change tracking is not enabled for entity lead."
        )
    )
    with pytest.raises(ConfigurationError, match="change tracking"):
        list(client.start_tracking("leads", ["firstname"]))


def test_last_page_without_delta_link_is_not_a_silent_success() -> None:
    """§4 known issue #439: a last page missing its deltaLink must not end the read as complete."""
    client = make_client(lambda request: json_response(200, {"value": []}))
    with pytest.raises(Exception, match="delta link"):
        list(client.start_tracking("accounts", SELECT))


def test_delta_read_naming_a_deleted_column_is_not_an_expired_token() -> None:
    """B14 vs B17: a column deleted in Dynamics is reported as such, not as a token to reset."""
    from crmsync.errors import UnknownFieldError

    client = make_client(
        lambda request: error_response(
            400,
            "0x80060888",
            "Could not find a property named 'fax' on type 'Microsoft.Dynamics.CRM.account'.",
        )
    )
    with pytest.raises(UnknownFieldError, match="'fax'"):
        list(client.read_changes(DeltaCursor("account", DELTA_LINK_1)))
