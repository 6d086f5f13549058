"""Wire-format details: multipart round trips, line endings, value conversion (spec §2e, §6)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from types import MappingProxyType

import httpx
from dynamics_testkit import FakeOrg, make_client, parse_batch_request
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.dynamics.batch import EncodedRequest, encode_batch, parse_batch_response
from crmsync.dynamics.query import EntitySetInfo, record_from_row
from crmsync.dynamics.types import AttributeSchema, AttributeType, EntitySchema, WriteRequest

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["firstname", "lastname", "x"]), texts),
        min_size=1,
        max_size=8,
    )
)
def test_encoded_batches_read_back_with_a_standard_mime_parser(
    bodies: list[dict[str, str]],
) -> None:
    """§6: every part survives a standard multipart parser byte for byte, in order."""
    requests = [
        EncodedRequest(
            "PATCH",
            f"https://contoso.crm.dynamics.com/api/data/v9.2/leads(00000000-0000-0000-0000-{n:012d})",
            {"Content-Type": "application/json; type=entry", "If-Match": f'W/"{n}"'},
            json.dumps(body).encode(),
        )
        for n, body in enumerate(bodies)
    ]
    boundary, payload = encode_batch(requests)
    request = httpx.Request(
        "POST",
        "https://x/$batch",
        headers={"Content-Type": f'multipart/mixed; boundary="{boundary}"'},
        content=payload,
    )
    parsed = parse_batch_request(request)
    assert [json.loads(p.body) for p in parsed] == bodies
    assert [p.headers["if-match"] for p in parsed] == [f'W/"{n}"' for n in range(len(bodies))]
    assert [p.content_id for p in parsed] == [str(n) for n in range(1, len(bodies) + 1)]


def test_batch_responses_with_bare_lf_line_endings_parse() -> None:
    """§6: servers and proxies are lenient about CRLF; a LF-only answer still parses."""
    body = (
        "--batchresponse_x\n"
        "Content-Type: application/http\n"
        "Content-Transfer-Encoding: binary\n"
        "\n"
        "HTTP/1.1 412 Precondition Failed\n"
        "Content-Type: application/json\n"
        "\n"
        '{"error":{"code":"0x80060882","message":"changed"}}\n'
        "--batchresponse_x--\n"
    )
    (part,) = parse_batch_response("multipart/mixed; boundary=batchresponse_x", body.encode())
    assert part.status == 412
    assert json.loads(part.body)["error"]["code"] == "0x80060882"


def test_schema_decides_conversion_date_only_and_date_like_strings() -> None:
    """§2e: with the schema, DateTime columns (even date-only) become datetimes, strings stay."""
    schema = EntitySchema(
        logical_name="lead",
        entity_set_name="leads",
        primary_id="leadid",
        primary_name="fullname",
        change_tracking=True,
        is_custom=False,
        attributes=MappingProxyType(
            {
                "birthdate": AttributeSchema("birthdate", AttributeType.DATETIME),
                "description": AttributeSchema("description", AttributeType.MEMO),
            }
        ),
    )
    info = EntitySetInfo("lead", "leads", "leadid")
    row = {
        "leadid": "A",
        "birthdate": "1990-05-17",
        "description": "2024-01-01T00:00:00Z",
        "other": "2024-01-01T00:00:00Z",
    }
    with_schema = record_from_row(info, row, schema)
    assert with_schema.values["birthdate"] == datetime(1990, 5, 17, tzinfo=UTC)
    assert with_schema.values["description"] == "2024-01-01T00:00:00Z"
    assert with_schema.values["other"] == datetime(
        2024, 1, 1, tzinfo=UTC
    )  # unknown column: by shape
    assert with_schema.id == "a"


def test_write_batches_never_exceed_the_concurrency_limit() -> None:
    """Request budget: at most `concurrency` $batch requests in flight."""
    org = FakeOrg()
    state = {"now": 0, "peak": 0}
    guard = threading.Lock()

    def slow(request: httpx.Request) -> httpx.Response:
        with guard:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)
        try:
            return org(request)
        finally:
            with guard:
                state["now"] -= 1

    client = make_client(slow, batch_size=2, concurrency=2)
    ids = [f"00000000-0000-0000-0000-{n:012d}" for n in range(12)]
    results = client.write_batch([WriteRequest.create("lead", i, {"lastname": "x"}) for i in ids])
    assert all(r.ok for r in results)
    assert state["peak"] == 2
    assert client.stats().requests == 6
