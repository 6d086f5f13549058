"""429 storms, 5xx, timeouts and dropped connections (spec §7, §8; B33, B38)."""

from __future__ import annotations

import random

import httpx
import pytest
from dynamics_testkit import FakeOrg, Sleeps, error_response, json_response, make_client

from crmsync.dynamics.retry import RetryPolicy
from crmsync.dynamics.types import WriteRequest, WriteStatus
from crmsync.errors import ThrottledError, TransientServerError

THROTTLE_MESSAGE = "Number of requests exceeded the limit of 6000 over time window of 300 seconds."


def _ids(count: int) -> list[str]:
    return [f"00000000-0000-0000-0000-{n:012d}" for n in range(count)]


def test_429_storm_completes_with_every_record_written_exactly_once() -> None:
    """§8 / B38: under a storm of whole-batch and per-part 429s every create lands once."""
    org = FakeOrg()
    chance = random.Random(4)

    def storm(number: int) -> httpx.Response | None:
        if chance.random() < 0.5:
            return error_response(429, "0x80072322", THROTTLE_MESSAGE, {"Retry-After": "2"})
        return None

    def part_storm(inner):  # type: ignore[no-untyped-def]
        if chance.random() < 0.2:
            return (
                429,
                "Too Many Requests",
                {"Retry-After": "1"},
                b'{"error":{"code":"0x80072321","message":"Combined execution time exceeded"}}',
            )
        return None

    org.before_batch = storm
    org.part_override = part_storm
    sleeps = Sleeps()
    client = make_client(
        org,
        sleeps=sleeps,
        batch_size=20,
        concurrency=4,
        retry_policy=RetryPolicy(max_attempts=50, jitter=0.0),
    )
    ids = _ids(200)
    results = client.write_batch([WriteRequest.create("lead", i, {"lastname": i}) for i in ids])

    assert all(r.ok for r in results), {r.status for r in results}
    assert sorted(org.leads) == ids
    assert org.creates_applied == 200
    stats = client.stats()
    assert stats.throttled > 0
    assert stats.concurrency_limit < 4  # halved on 429
    assert sleeps.calls and set(sleeps.calls) <= {1.0, 2.0}  # Retry-After honoured exactly


def test_dropped_connection_after_the_server_applied_the_batch_never_creates_twice() -> None:
    """B33: the retry's duplicate-key answers are verified with a GET → created already."""
    org = FakeOrg()
    org.drop_after_batch = lambda number: number == 1
    client = make_client(org, batch_size=10)
    ids = _ids(10)
    results = client.write_batch([WriteRequest.create("lead", i, {"lastname": i}) for i in ids])
    assert [r.status for r in results] == [WriteStatus.CREATED_ALREADY] * 10
    assert org.creates_applied == 10
    assert len(org.leads) == 10
    assert client.stats().transport_errors == 1


def test_timeout_before_the_server_saw_the_batch_is_retried() -> None:
    """B38: a timeout is transient; the batch is sent again and succeeds."""
    org = FakeOrg()
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return org(request)

    client = make_client(flaky)
    results = client.write_batch(
        [WriteRequest.create("lead", i, {"lastname": "x"}) for i in _ids(3)]
    )
    assert [r.status for r in results] == [WriteStatus.OK] * 3
    assert org.creates_applied == 3


def test_503_then_success_with_backoff() -> None:
    """§7: 503 is transient; without Retry-After the pause is exponential (2^n, spec §8)."""
    answers = [
        error_response(503, "", "Service Unavailable"),
        error_response(502, "", "Bad Gateway"),
        json_response(200, {"value": [{"leadid": "00000000-0000-0000-0000-000000000001"}]}),
    ]
    sleeps = Sleeps()
    client = make_client(
        lambda request: answers.pop(0),
        sleeps=sleeps,
        retry_policy=RetryPolicy(base_delay_seconds=2.0, jitter=0.0),
    )
    records = list(client.iter_records("leads", []))
    assert len(records) == 1
    assert sleeps.calls == [2.0, 4.0]
    assert client.stats().retries == 2


def test_persistent_throttling_gives_up_with_a_throttled_error_carrying_retry_after() -> None:
    """§8: after max attempts the caller gets ThrottledError with the server's pause."""
    client = make_client(
        lambda request: error_response(429, "0x80072322", THROTTLE_MESSAGE, {"Retry-After": "30"}),
        retry_policy=RetryPolicy(max_attempts=3, jitter=0.0),
    )
    with pytest.raises(ThrottledError) as caught:
        list(client.iter_records("leads", ["firstname"]))
    assert caught.value.retry_after == 30.0
    assert caught.value.status == 429
    assert caught.value.code == "0x80072322"
    assert client.stats().requests == 3


def test_dropped_connections_on_reads_end_as_transient_error_after_the_deadline() -> None:
    """B38: reads retry dropped connections, bounded by the policy's deadline."""
    clock = {"now": 0.0}

    def sleep(seconds: float) -> None:
        clock["now"] += seconds

    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )

    http = httpx.Client(transport=httpx.MockTransport(dropped))
    from crmsync.dynamics.client import DynamicsClient

    client = DynamicsClient(
        http,
        "https://contoso.crm.dynamics.com",
        retry_policy=RetryPolicy(
            max_attempts=100, base_delay_seconds=10, jitter=0.0, deadline_seconds=60
        ),
        clock=lambda: clock["now"],
        sleep=sleep,
    )
    with pytest.raises(TransientServerError, match="connection failed"):
        list(client.iter_records("leads", ["firstname"]))
    assert clock["now"] <= 60
    assert (
        client.stats().transport_errors == 3
    )  # 0s, +10s, +20s; the next pause (40s) passes the deadline


def test_writes_give_back_throttled_results_when_retries_are_exhausted() -> None:
    """B38: nothing is lost — a part still throttled at the end is reported THROTTLED, not OK."""
    org = FakeOrg()
    org.before_batch = lambda number: error_response(
        429, "0x80072322", THROTTLE_MESSAGE, {"Retry-After": "5"}
    )
    client = make_client(org, retry_policy=RetryPolicy(max_attempts=2, jitter=0.0))
    (result,) = client.write_batch([WriteRequest.create("lead", _ids(1)[0], {"lastname": "x"})])
    assert result.status is WriteStatus.THROTTLED
    assert result.retry_after == 5.0
    assert not result.ok
    assert org.leads == {}


def test_update_applied_before_a_dropped_connection_is_verified_not_reported_as_conflict() -> None:
    """B25/B38: the retry's 412 only says our own earlier attempt landed; a GET confirms it."""
    org = FakeOrg()
    ids = _ids(3)
    for i in ids:
        org.leads[i] = {"leadid": i, "lastname": "old", "versionnumber": 7}
    org.drop_after_batch = lambda number: number == 1
    client = make_client(org)
    requests = [WriteRequest.update("lead", i, {"lastname": "new"}, etag='W/"7"') for i in ids]
    results = client.write_batch(requests)
    assert [r.status for r in results] == [WriteStatus.OK] * 3
    assert all(r.etag == org.etag(i) for r, i in zip(results, ids, strict=True))
    assert {lead["lastname"] for lead in org.leads.values()} == {"new"}


def test_update_overtaken_by_someone_else_is_still_a_conflict_after_a_drop() -> None:
    """B25: if the record now holds other values, the 412 stands: re-read and re-merge."""
    org = FakeOrg()
    lead = _ids(1)[0]
    org.leads[lead] = {"leadid": lead, "lastname": "old", "versionnumber": 7}

    def drop_then_someone_edits(number: int) -> bool:
        if number == 1:
            org.leads[lead]["lastname"] = "edited in Dynamics"
            org.leads[lead]["versionnumber"] = 99
            return True
        return False

    org.drop_after_batch = drop_then_someone_edits
    (result,) = make_client(org).write_batch(
        [WriteRequest.update("lead", lead, {"lastname": "new"}, etag='W/"7"')]
    )
    assert result.status is WriteStatus.PRECONDITION_FAILED


def test_cut_off_page_is_fetched_again_not_taken_as_empty() -> None:
    """B38: a connection closed mid-body leaves a 200 with a partial body: retry, never skip."""
    answers = [
        httpx.Response(200, content=b'{"value":[{"leadid":"00000000-0000-0000-0000-0000000'),
        httpx.Response(200, content=b""),
        json_response(200, {"value": [{"leadid": "00000000-0000-0000-0000-000000000001"}]}),
    ]
    client = make_client(lambda request: answers.pop(0))
    records = list(client.iter_records("leads", []))
    assert [r.id for r in records] == ["00000000-0000-0000-0000-000000000001"]
    assert client.stats().retries == 2
