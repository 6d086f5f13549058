"""Decoding of read and change-tracking pages (spec §3, §4; B16, B38).

Pages are decoded by a fast JSON decoder; whatever valid JSON it refuses is still read as the
standard decoder reads it, and only a body that is not JSON at all is a transient failure.
"""

from __future__ import annotations

import httpx
from dynamics_testkit import json_response, make_client

from crmsync.dynamics.types import CrmChange, CrmDelete

LEAD = "00000000-0000-0000-0000-000000000001"
OTHER = "00000000-0000-0000-0000-000000000002"


def _raw(body: bytes) -> httpx.Response:
    return httpx.Response(
        200, headers={"Content-Type": "application/json; odata.metadata=minimal"}, content=body
    )


def test_valid_json_the_fast_decoder_refuses_is_read_not_retried() -> None:
    """B16: a lone surrogate escape in a text column is valid JSON the fast decoder refuses;
    the page is read with that value (and a big integer beside it), without a retry."""
    body = (
        b'{"value":[{"leadid":"' + LEAD.encode() + b'","lastname":"Ab\\ud800",'
        b'"new_big":123456789012345678901234567890}]}'
    )
    client = make_client(lambda request: _raw(body))
    records = list(client.iter_records("leads", ["lastname", "new_big"]))
    assert [r.id for r in records] == [LEAD]
    assert records[0].values["lastname"] == "Ab\ud800"
    assert records[0].values["new_big"] == 123456789012345678901234567890
    assert client.stats().retries == 0


def test_a_body_that_is_not_json_is_fetched_again() -> None:
    """B38: a garbled 200 body is transient: the page is requested again, never skipped."""
    answers = [
        _raw(b"<html>gateway</html>"),
        json_response(200, {"value": [{"leadid": OTHER}]}),
    ]
    client = make_client(lambda request: answers.pop(0))
    records = list(client.iter_records("leads", []))
    assert [r.id for r in records] == [OTHER]
    assert client.stats().retries == 1


def test_change_pages_are_parsed_in_order_across_next_links() -> None:
    """Spec §4: pages parsed ahead of the caller still arrive in order, each with its own
    items, and only the last one carries the cursor."""
    first = f"{LEAD[:-1]}3"
    pages = {
        "first": {
            "value": [{"leadid": first, "lastname": "One"}],
            "@odata.nextLink": "https://contoso.crm.dynamics.com/api/data/v9.2/leads?page=2",
        },
        "second": {
            "value": [
                {"leadid": OTHER, "lastname": "Two"},
                {
                    "@odata.context": "https://contoso.crm.dynamics.com/$metadata#leads/$deletedEntity",
                    "id": LEAD,
                    "reason": "deleted",
                },
            ],
            "@odata.deltaLink": "https://contoso.crm.dynamics.com/api/data/v9.2/leads?$deltatoken=9",
        },
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if "EntityDefinitions" in str(request.url):
            return json_response(
                200,
                {
                    "value": [
                        {
                            "LogicalName": "lead",
                            "EntitySetName": "leads",
                            "PrimaryIdAttribute": "leadid",
                        }
                    ]
                },
            )
        return json_response(200, pages["second" if "page=2" in str(request.url) else "first"])

    client = make_client(handler)
    read = list(client.start_tracking("leads", ["lastname"]))
    changed = [[i.record.id for i in page.items if isinstance(i, CrmChange)] for page in read]
    deleted = [[i.id for i in page.items if isinstance(i, CrmDelete)] for page in read]
    assert changed == [[first], [OTHER]]
    assert deleted == [[], [LEAD]]
    second = read[1].items[0]
    assert isinstance(second, CrmChange) and second.record.values["lastname"] == "Two"
    assert read[0].cursor is None
    assert read[1].cursor is not None and read[1].cursor.delta_link.endswith("$deltatoken=9")
