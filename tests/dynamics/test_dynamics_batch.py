"""`$batch` writes: wire format of each write kind and per-part results (spec §5, §6, §7)."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from dynamics_testkit import (
    ORG,
    FakeOrg,
    InnerRequest,
    batch_response,
    error_response,
    json_response,
    make_client,
    parse_batch_request,
)

from crmsync.dynamics.batch import parse_batch_response
from crmsync.dynamics.types import LookupValue, WriteKind, WriteRequest, WriteStatus
from crmsync.errors import ConfigurationError


def failed_part(
    status: int, reason: str, code: str, message: str, headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str], bytes]:
    """One failed response part with Dataverse's error body (spec §7)."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, reason, {"Content-Type": "application/json", **(headers or {})}, body


LEAD = "7eb682f1-ca75-e511-80d4-00155d2a68d1"
OWNER = "5ca9d7e0-0000-0000-0000-000000000001"
ACCOUNT = "00000000-0000-0000-0000-000000000001"
CONTACT = "d31ba648-c592-ed11-aad1-000d3a993550"

DOCUMENTED_RESPONSE = (
    "--batchresponse_01346794-f2e2-4d45-8cc2-f97e09fe8916\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "HTTP/1.1 204 No Content\r\n"
    "OData-Version: 4.0\r\n"
    f"Location: {ORG}/api/data/v9.2/tasks(d31ba648-c592-ed11-aad1-000d3a993550)\r\n"
    f"OData-EntityId: {ORG}/api/data/v9.2/tasks(d31ba648-c592-ed11-aad1-000d3a993550)\r\n"
    "\r\n"
    "\r\n"
    "--batchresponse_01346794-f2e2-4d45-8cc2-f97e09fe8916\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json; odata.metadata=minimal; odata.streaming=true\r\n"
    "OData-Version: 4.0\r\n"
    "\r\n"
    '{"@odata.context":"x","value":[{"subject":"Task 1"}]}\r\n'
    "--batchresponse_01346794-f2e2-4d45-8cc2-f97e09fe8916--\r\n"
)


def test_documented_batch_response_parses_into_its_parts() -> None:
    """§6: the response example — a 204 with OData-EntityId, then a 200 with a JSON body."""
    parts = parse_batch_response(
        "multipart/mixed; boundary=batchresponse_01346794-f2e2-4d45-8cc2-f97e09fe8916",
        DOCUMENTED_RESPONSE.encode(),
    )
    assert [part.status for part in parts] == [204, 200]
    assert (
        parts[0].headers["odata-entityid"].endswith("tasks(d31ba648-c592-ed11-aad1-000d3a993550)")
    )
    assert json.loads(parts[1].body)["value"] == [{"subject": "Task 1"}]


def test_change_set_responses_are_flattened_in_order() -> None:
    """§6: change-set results are nested multipart parts, each echoing its Content-ID."""
    body = (
        "--batchresponse_A\r\n"
        "Content-Type: multipart/mixed; boundary=changesetresponse_B\r\n"
        "\r\n"
        "--changesetresponse_B\r\n"
        "Content-Type: application/http\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "Content-ID: 1\r\n"
        "\r\n"
        "HTTP/1.1 204 No Content\r\n"
        "\r\n"
        "\r\n"
        "--changesetresponse_B\r\n"
        "Content-Type: application/http\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "Content-ID: 2\r\n"
        "\r\n"
        "HTTP/1.1 204 No Content\r\n"
        "\r\n"
        "\r\n"
        "--changesetresponse_B--\r\n"
        "--batchresponse_A--\r\n"
    )
    parts = parse_batch_response('multipart/mixed; boundary="batchresponse_A"', body.encode())
    assert [(p.status, p.content_id) for p in parts] == [(204, "1"), (204, "2")]


def _recording_handler(store: list[InnerRequest], answer: tuple[int, str, dict[str, str], bytes]):
    outer: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        outer.append(request)
        inner = parse_batch_request(request)
        store.extend(inner)
        return batch_response([answer for _ in inner])

    return handler, outer


def test_each_write_kind_is_sent_as_documented() -> None:
    """§5/§2d/§6: create with chosen key, If-Match update, upsert, delete, $ref, QualifyLead."""
    inner: list[InnerRequest] = []
    handler, outer = _recording_handler(inner, (204, "No Content", {}, b""))
    client = make_client(handler)
    requests = [
        WriteRequest.create(
            "lead",
            LEAD,
            {"firstname": "Ada", "ownerid": LookupValue(OWNER, "systemuser"), "leadsourcecode": 8},
        ),
        WriteRequest.update("lead", LEAD, {"jobtitle": "CTO"}, etag='W/"470867"'),
        WriteRequest.update("lead", LEAD, {"jobtitle": None}),
        WriteRequest.upsert("lead", LEAD, {"customerid": LookupValue(ACCOUNT, "account")}),
        WriteRequest.delete("lead", LEAD, etag='W/"470867"'),
        WriteRequest.associate("list", ACCOUNT, "listlead_association", LookupValue(LEAD, "lead")),
        WriteRequest.disassociate(
            "list", ACCOUNT, "listlead_association", LookupValue(LEAD, "lead")
        ),
        WriteRequest.disassociate("lead", LEAD, "parentaccountid"),
        WriteRequest.qualify_lead(LEAD, create_contact=True),
        WriteRequest.associate("lead", LEAD, "parentaccountid", LookupValue(ACCOUNT, "account")),
    ]
    results = client.write_batch(requests)

    assert [r.status for r in results] == [WriteStatus.OK] * len(requests)
    assert len(outer) == 1
    assert outer[0].url == f"{ORG}/api/data/v9.2/$batch"
    assert outer[0].headers["Content-Type"].startswith("multipart/mixed; boundary=")
    assert outer[0].headers["Prefer"] == "odata.continue-on-error"
    root = f"{ORG}/api/data/v9.2/"
    create, update, update_any, upsert, delete, associate, disassociate, unlink, qualify, link = (
        inner
    )
    assert (create.method, create.url) == ("POST", f"{root}leads?$select=leadid")
    assert json.loads(create.body) == {
        "firstname": "Ada",
        "ownerid@odata.bind": f"/systemusers({OWNER})",
        "leadsourcecode": 8,
        "leadid": LEAD,
    }
    assert create.headers["prefer"] == "return=representation"
    assert (update.method, update.url) == ("PATCH", f"{root}leads({LEAD})?$select=leadid")
    assert update.headers["if-match"] == 'W/"470867"'
    assert json.loads(update.body) == {"jobtitle": "CTO"}
    assert update_any.headers["if-match"] == "*"  # pure update: never creates (§5)
    assert json.loads(update_any.body) == {"jobtitle": None}
    assert "if-match" not in upsert.headers
    assert json.loads(upsert.body) == {"customerid_account@odata.bind": f"/accounts({ACCOUNT})"}
    assert (delete.method, delete.url, delete.headers["if-match"]) == (
        "DELETE",
        f"{root}leads({LEAD})",
        'W/"470867"',
    )
    assert (associate.method, associate.url) == (
        "POST",
        f"{root}lists({ACCOUNT})/listlead_association/$ref",
    )
    assert json.loads(associate.body) == {"@odata.id": f"{root}leads({LEAD})"}
    assert (disassociate.method, disassociate.url) == (
        "DELETE",
        f"{root}lists({ACCOUNT})/listlead_association({LEAD})/$ref",
    )
    assert (unlink.method, unlink.url) == ("DELETE", f"{root}leads({LEAD})/parentaccountid/$ref")
    assert (qualify.method, qualify.url) == (
        "POST",
        f"{root}leads({LEAD})/Microsoft.Dynamics.CRM.QualifyLead",
    )
    assert (link.method, link.url) == ("PUT", f"{root}leads({LEAD})/parentaccountid/$ref")
    assert json.loads(link.body) == {"@odata.id": f"{root}accounts({ACCOUNT})"}
    assert json.loads(qualify.body) == {
        "CreateAccount": False,
        "CreateContact": True,
        "CreateOpportunity": False,
        "Status": 3,
    }


def test_mixed_successes_and_failures_get_their_own_results() -> None:
    """§6 continue-on-error: every part is parsed; §7 maps each status/code to a WriteStatus."""
    answers = [
        (
            201,
            "Created",
            {"Content-Type": "application/json"},
            b'{"@odata.etag":"W/\\"71004878\\"","leadid":"%s"}' % LEAD.encode(),
        ),
        failed_part(
            412,
            "Precondition Failed",
            "",
            "The version of the existing record doesn't match the RowVersion property provided.",
            {},
        ),
        failed_part(
            400,
            "Bad Request",
            "0x80044331",
            "A validation error occurred.  The length of the 'firstname' attribute of the 'lead' entity exceeded the maximum allowed length of '50'.",  # noqa: E501
            {},
        ),
        failed_part(
            400,
            "Bad Request",
            "0x80048d19",
            "Error identified in Payload provided by the user for Entity :'leads', ... The property 'new_gone' does not exist on type 'Microsoft.Dynamics.CRM.lead'.",  # noqa: E501
            {},
        ),
        failed_part(404, "Not Found", "0x80040217", "lead With Id = x Does Not Exist", {}),
        failed_part(
            403,
            "Forbidden",
            "0x8004F507",
            "Caller does not have update permission on a secured field.",
            {},
        ),
        failed_part(
            500,
            "Internal Server Error",
            "0x80040333",
            "A record was not created or updated because a duplicate of the current record already exists.",  # noqa: E501
            {},
        ),
        failed_part(400, "Bad Request", "0x80040265", "Example Error Message.", {}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        assert len(parse_batch_request(request)) == len(answers)
        return batch_response(answers)

    client = make_client(handler)
    requests = [
        WriteRequest.update("lead", f"{LEAD[:-1]}{n}", {"firstname": "x"}, request_id=f"r{n}")
        for n in range(len(answers))
    ]
    results = client.write_batch(requests)

    assert [r.request_id for r in results] == [f"r{n}" for n in range(len(answers))]
    assert [r.status for r in results] == [
        WriteStatus.OK,
        WriteStatus.PRECONDITION_FAILED,
        WriteStatus.VALIDATION_ERROR,
        WriteStatus.UNKNOWN_ATTRIBUTE,
        WriteStatus.NOT_FOUND,
        WriteStatus.PERMISSION_DENIED,
        WriteStatus.VALIDATION_ERROR,
        WriteStatus.VALIDATION_ERROR,
    ]
    assert results[0].etag == 'W/"71004878"'
    assert results[2].error_code == "0x80044331"
    assert "maximum allowed length of '50'" in (results[2].message or "")
    assert "new_gone" in (results[3].message or "")
    assert results[6].error_code == "0x80040333"
    assert client.stats().requests_by_kind == {"batch": 1}  # nothing final is retried


def test_only_the_throttled_part_is_retried_after_its_retry_after() -> None:
    """Brief: retry only what is retryable, per part; honour Retry-After (§8)."""
    org = FakeOrg()
    throttled_once: set[str] = set()

    def throttle_second_create(inner: InnerRequest):
        lead_id = json.loads(inner.body)["leadid"]
        if lead_id.endswith("2") and lead_id not in throttled_once:
            throttled_once.add(lead_id)
            return failed_part(
                429,
                "Too Many Requests",
                "0x80072322",
                "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
                {"Retry-After": "7"},
            )
        return None

    org.part_override = throttle_second_create
    sleeps: list[float] = []
    client = make_client(org, sleeps=sleeps.append)  # type: ignore[arg-type]
    ids = [f"00000000-0000-0000-0000-00000000000{n}" for n in range(1, 5)]
    results = client.write_batch([WriteRequest.create("lead", i, {"lastname": i}) for i in ids])

    assert [r.status for r in results] == [WriteStatus.OK] * 4
    assert org.creates_applied == 4
    assert sorted(org.leads) == ids
    assert org.batches == 2
    assert sleeps == [7.0]
    stats = client.stats()
    assert stats.throttled == 1
    assert stats.retries == 1


def test_duplicate_create_is_verified_with_a_get_and_reported_created_already() -> None:
    """B33 / §7 (412 0x80040237): the record with our chosen key exists → created already."""
    org = FakeOrg()
    org.leads[LEAD] = {"leadid": LEAD, "lastname": "Lovelace", "versionnumber": 5}
    client = make_client(org)
    (result,) = client.write_batch([WriteRequest.create("lead", LEAD, {"lastname": "Lovelace"})])
    assert result.status is WriteStatus.CREATED_ALREADY
    assert result.ok
    assert result.etag == 'W/"5"'
    assert org.creates_applied == 0


def test_results_follow_the_request_order_across_several_batches() -> None:
    """§6: ≤ batch_size requests per $batch; requests == ceil(n / batch size)."""
    org = FakeOrg()
    client = make_client(org, batch_size=7, concurrency=3)
    ids = [f"00000000-0000-0000-0000-{n:012d}" for n in range(50)]
    results = client.write_batch(
        [WriteRequest.create("lead", i, {"lastname": str(n)}) for n, i in enumerate(ids)]
    )
    assert [r.record_id for r in results] == ids
    assert all(r.status is WriteStatus.OK for r in results)
    assert org.batches == math.ceil(50 / 7)
    assert client.stats().requests == math.ceil(50 / 7)
    assert {org.leads[i]["lastname"] for i in ids} == {str(n) for n in range(50)}


def test_batch_size_is_bounded_by_the_documented_limit() -> None:
    """§6: up to 1,000 requests per batch."""
    with pytest.raises(ConfigurationError):
        make_client(lambda request: json_response(200, {}), batch_size=1001)


def test_qualify_lead_reports_the_records_it_created() -> None:
    """QualifyLead answers with the created records (Collection(crmbaseentity))."""
    body = json.dumps(
        {
            "@odata.context": f"{ORG}/api/data/v9.2/$metadata#Collection(crmbaseentity)",
            "value": [
                {"@odata.type": "#Microsoft.Dynamics.CRM.contact", "contactid": CONTACT.upper()}
            ],
        }
    ).encode()
    handler, _ = _recording_handler([], (200, "OK", {"Content-Type": "application/json"}, body))
    (result,) = make_client(handler).write_batch([WriteRequest.qualify_lead(LEAD)])
    assert result.status is WriteStatus.OK
    assert result.created == (LookupValue(CONTACT, "contact"),)
    assert result.record_id == LEAD


def test_a_write_that_cannot_be_encoded_fails_alone() -> None:
    """Bad input gets a clear error and loses nothing: the other writes still go out."""
    org = FakeOrg()
    client = make_client(org)
    broken = WriteRequest(WriteKind.ASSOCIATE, "lead", LEAD)  # no relationship, no target
    good = WriteRequest.create("lead", LEAD, {"lastname": "x"})
    results = client.write_batch([broken, good])
    assert results[0].status is WriteStatus.VALIDATION_ERROR
    assert "relationship" in (results[0].message or "")
    assert results[1].status is WriteStatus.OK


def test_whole_batch_refused_for_privileges_fails_the_cycle() -> None:
    """§7: 403 PrivilegeDenied on the whole request → PermissionDeniedError (fail cycle)."""
    from crmsync.errors import PermissionDeniedError

    client = make_client(
        lambda request: error_response(
            403, "0x80040220", "The user does not hold the necessary privileges."
        )
    )
    with pytest.raises(PermissionDeniedError) as caught:
        client.write_batch([WriteRequest.create("lead", LEAD, {"lastname": "x"})])
    assert caught.value.code == "0x80040220"


def test_payload_too_large_splits_the_batch() -> None:
    """§0: 413 Payload Too Large → the batch is halved until it fits; every write lands once."""
    org = FakeOrg()

    def limited(request: httpx.Request) -> httpx.Response:
        if len(parse_batch_request(request)) > 3:
            return error_response(413, "", "Request Entity Too Large")
        return org(request)

    client = make_client(limited, batch_size=10)
    ids = [f"00000000-0000-0000-0000-{n:012d}" for n in range(10)]
    results = client.write_batch([WriteRequest.create("lead", i, {"lastname": "x"}) for i in ids])
    assert [r.status for r in results] == [WriteStatus.OK] * 10
    assert sorted(org.leads) == ids


def test_a_malformed_batch_refused_as_a_whole_fails_its_writes_without_retrying() -> None:
    """§6/§7: a top-level 400 JSON error (not multipart) is final for every write in it."""
    calls: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return error_response(400, "0x80040203", "Invalid argument.")

    results = make_client(refuse).write_batch(
        [WriteRequest.create("lead", LEAD, {"lastname": "x"})]
    )
    assert results[0].status is WriteStatus.VALIDATION_ERROR
    assert results[0].error_code == "0x80040203"
    assert calls == [1]


def test_a_write_to_an_unknown_table_fails_alone() -> None:
    """A table Dynamics does not have: that write fails with a clear message, the rest go out."""
    org = FakeOrg()

    def handler(request: httpx.Request) -> httpx.Response:
        if "EntityDefinitions" in str(request.url):
            return json_response(200, {"value": []})
        return org(request)

    results = make_client(handler).write_batch(
        [
            WriteRequest.create("new_nothing", LEAD, {"x": 1}),
            WriteRequest.create("lead", LEAD, {"lastname": "y"}),
        ]
    )
    assert results[0].status is WriteStatus.VALIDATION_ERROR
    assert "new_nothing" in (results[0].message or "")
    assert results[1].status is WriteStatus.OK
