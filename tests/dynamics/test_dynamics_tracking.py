"""Resumable initial reads, stored-link refusals, selection links and record totals of
:class:`~crmsync.dynamics.tracking.ChangeTracking` (spec §3 "Count", §4; B12, B16, B17)."""

from __future__ import annotations

import httpx
import pytest
from dynamics_testkit import ORG, error_response, json_response, make_client

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.tracking import same_selection, selection_changed
from crmsync.dynamics.types import CrmChange, DeltaCursor
from crmsync.errors import ConfigurationError, DeltaTokenExpiredError

LEAD_1 = "00000000-0000-0000-0000-000000000001"
LEAD_2 = "00000000-0000-0000-0000-000000000002"
NEXT_LINK = f"{ORG}/api/data/v9.2/leads?$select=lastname,leadid&$skiptoken=page2"
DELTA_LINK = f"{ORG}/api/data/v9.2/leads?$select=lastname,leadid&$deltatoken=1001"


def _two_pages(request: httpx.Request) -> httpx.Response:
    if "skiptoken" in str(request.url):
        row = {"@odata.etag": 'W/"2"', "lastname": "Two", "leadid": LEAD_2}
        return json_response(200, {"value": [row], "@odata.deltaLink": DELTA_LINK})
    row = {"@odata.etag": 'W/"1"', "lastname": "One", "leadid": LEAD_1}
    return json_response(200, {"value": [row], "@odata.nextLink": NEXT_LINK})


def test_initial_pages_hand_out_each_next_link_then_the_delta_link() -> None:
    """B16: every page but the last names the page after it, so a crash resumes there."""
    client = make_client(_two_pages)
    first = client.tracking.first_page_link("lead", ["lastname"])
    pages = list(client.tracking.initial_pages("lead", first, resumed=False))
    assert [(page.next_link, page.delta_link) for page in pages] == [
        (NEXT_LINK, None),
        (None, DELTA_LINK),
    ]
    assert [page.cursor for page in pages] == [None, DeltaCursor("lead", DELTA_LINK)]
    names = [
        i.record.values["lastname"] for p in pages for i in p.items if isinstance(i, CrmChange)
    ]
    assert names == ["One", "Two"]


def test_a_resumed_read_continues_from_the_stored_page_link() -> None:
    """B16: resuming asks for the stored page, not the first one again."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return _two_pages(request)

    client = make_client(handler)
    pages = list(client.tracking.initial_pages("lead", NEXT_LINK, resumed=True))
    assert [page.last for page in pages] == [True]
    assert asked == [NEXT_LINK]


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_a_refused_stored_page_link_means_start_again(status: int) -> None:
    """B16: a page link Dynamics no longer accepts is an expired token, not a broken table."""
    client = make_client(lambda request: error_response(status, "0x80040203", "Invalid link."))
    with pytest.raises(DeltaTokenExpiredError, match="stored page link") as caught:
        list(client.tracking.initial_pages("lead", NEXT_LINK, resumed=True))
    assert (caught.value.entity, caught.value.status) == ("lead", status)
    assert client.stats().retries == 0


def test_a_fresh_initial_read_refused_with_400_is_a_configuration_problem() -> None:
    """§4: a fresh read refused with 400 means change tracking is off (B43), not reconcile."""
    client = make_client(
        lambda request: error_response(400, "0x80040203", "Change tracking is not enabled.")
    )
    first = client.tracking.first_page_link("lead", ["lastname"])
    with pytest.raises(ConfigurationError, match="change tracking enabled"):
        list(client.tracking.initial_pages("lead", first, resumed=False))


def test_a_page_size_out_of_range_is_refused_before_any_request() -> None:
    asked: list[httpx.Request] = []
    client = make_client(lambda request: asked.append(request) or _two_pages(request))
    with pytest.raises(ConfigurationError, match="page size"):
        client.start_tracking("leads", ["lastname"], page_size=5001)
    assert asked == []


def test_selection_links_compare_the_selected_columns() -> None:
    """B12: a delta link made for other columns than the current selection is stale."""
    current = "leads?$select=lastname,leadid"
    assert same_selection("leads?$select=leadid,lastname&$skiptoken=2", current)
    assert not same_selection("leads?$select=leadid&$skiptoken=2", current)
    assert not same_selection("leads?$skiptoken=2", current)
    assert selection_changed("leads?$select=leadid&$deltatoken=9", current)
    assert not selection_changed("leads?$select=lastname,leadid&$deltatoken=9", current)
    assert not selection_changed("leads?$deltatoken=9", current)  # does not show its columns


def _client(answers: dict[str, httpx.Response]) -> DynamicsClient:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        for prefix, response in answers.items():
            if path.startswith(f"/api/data/v9.2/{prefix}"):
                return response
        return httpx.Response(404, json={"error": {"code": "0x8006088a", "message": "nope"}})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return DynamicsClient(http, "https://org.example.com", sleep=lambda s: None)


def test_record_total_counts_exactly_below_the_cap() -> None:
    """Spec §3: ``/$count`` is text (a BOM may lead); below 5,000 it is the total."""
    client = _client({"leads/$count": httpx.Response(200, text="\ufeff1234")})
    assert client.tracking.record_total("lead") == 1234


def test_record_total_above_the_cap_asks_retrieve_total_record_count() -> None:
    """Spec §3: at the 5,000 cap the total comes from ``RetrieveTotalRecordCount``."""
    body = {"EntityRecordCountCollection": {"Keys": ["lead"], "Values": [123456]}}
    client = _client(
        {
            "leads/$count": httpx.Response(200, text="5000"),
            "RetrieveTotalRecordCount": httpx.Response(200, json=body),
        }
    )
    assert client.tracking.record_total("lead") == 123456


def test_record_total_is_unknown_when_dynamics_cannot_say() -> None:
    """Above the cap without ``RetrieveTotalRecordCount`` (or with ``$count`` failing) the
    total is unknown, and the sync is not held up by it."""
    capped = _client({"leads/$count": httpx.Response(200, text="5000")})
    assert capped.tracking.record_total("lead") is None
    failing = _client({"leads/$count": httpx.Response(503, text="busy")})
    assert failing.tracking.record_total("lead") is None
    assert failing.stats().retries == 0  # a count is never retried
