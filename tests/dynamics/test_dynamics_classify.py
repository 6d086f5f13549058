"""Errors as data, the retry policy and the request budget (spec §7, §8; B38, B40)."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest
from dynamics_testkit import error_response
from hypothesis import given
from hypothesis import strategies as st

from crmsync.dynamics.budget import RECOVERY_AFTER, RequestBudget
from crmsync.dynamics.classify import Action, classify, classify_transport_error, parse_error_body
from crmsync.dynamics.retry import RetryPolicy, parse_retry_after
from crmsync.errors import (
    AuthenticationError,
    DeltaTokenExpiredError,
    PermissionDeniedError,
    PreconditionFailedError,
    RecordNotFoundError,
    ThrottledError,
    TransientServerError,
    ValidationFailedError,
)


@pytest.mark.parametrize(
    ("status", "code", "action", "error_type"),
    [
        (429, "0x80072322", Action.RETRY, ThrottledError),
        (503, "", Action.RETRY, TransientServerError),
        (502, "", Action.RETRY, TransientServerError),
        (504, "", Action.RETRY, TransientServerError),
        (500, "0x80044339", Action.RETRY, TransientServerError),
        (500, "0x80040333", Action.FAIL_RECORD, ValidationFailedError),
        (400, "0x80044331", Action.FAIL_RECORD, ValidationFailedError),
        (400, "0x8004431A", Action.FAIL_RECORD, ValidationFailedError),
        (400, "0x80044352", Action.RECONCILE, DeltaTokenExpiredError),
        (401, "0x8005F101", Action.FAIL_CYCLE, AuthenticationError),
        (403, "0x80040220", Action.FAIL_CYCLE, PermissionDeniedError),
        (403, "0x8004F507", Action.FAIL_RECORD, PermissionDeniedError),
        (404, "0x80040217", Action.FAIL_RECORD, RecordNotFoundError),
        (412, "", Action.FAIL_RECORD, PreconditionFailedError),
        (412, "0x80040237", Action.FAIL_RECORD, PreconditionFailedError),
    ],
)
def test_classification_follows_the_documented_table(status, code, action, error_type) -> None:  # type: ignore[no-untyped-def]
    """§7 table and retry guidance: status first, hex code second."""
    resolution = classify(
        error_response(status, code, "message from Dynamics"), entity="lead", record_id="r1"
    )
    assert resolution.action is action
    assert isinstance(resolution.error, error_type)
    assert resolution.error.status == status
    assert resolution.error.entity == "lead"
    assert resolution.error.record_id == "r1"
    assert resolution.error.code == (code or None)


def test_throttled_resolution_carries_retry_after() -> None:
    """§8: 429 with `Retry-After: <seconds>`."""
    resolution = classify(
        error_response(
            429,
            "0x80072326",
            "Number of concurrent requests exceeded the limit of 52.",
            {"Retry-After": "12"},
        )
    )
    assert resolution.retry_after == 12.0
    assert isinstance(resolution.error, ThrottledError)
    assert resolution.error.retry_after == 12.0


def test_success_is_success() -> None:
    assert classify(httpx.Response(204)).action is Action.SUCCESS


def test_error_bodies_that_are_not_json_still_classify() -> None:
    """Errors are always JSON per §0, but proxies are not: never crash on an HTML 502."""
    resolution = classify(httpx.Response(502, content=b"<html>Bad gateway</html>"))
    assert resolution.action is Action.RETRY
    assert parse_error_body(b"").code == ""


def test_transport_errors_are_transient() -> None:
    request = httpx.Request("GET", "https://x")
    assert classify_transport_error(httpx.ReadTimeout("t", request=request)).action is Action.RETRY
    resolution = classify_transport_error(httpx.ConnectError("c", request=request))
    assert isinstance(resolution.error, TransientServerError)


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    """§8: honour Retry-After exactly; fall back to exponential backoff."""
    policy = RetryPolicy(
        base_delay_seconds=1, max_delay_seconds=60, jitter=0.0, max_retry_after_seconds=120
    )
    assert policy.delay(5, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=600.0) == 120.0
    assert [policy.delay(n) for n in (1, 2, 3, 4, 8)] == [1.0, 2.0, 4.0, 8.0, 60.0]


def test_jitter_stays_within_its_fraction() -> None:
    policy = RetryPolicy(base_delay_seconds=8, jitter=0.5)
    chooser = random.Random(7)
    delays = {policy.delay(1, rng=chooser) for _ in range(200)}
    assert min(delays) >= 4.0
    assert max(delays) <= 8.0
    assert len(delays) > 100


def test_policy_is_immutable_and_validated() -> None:
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_attempts = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    assert not RetryPolicy(max_attempts=2).should_retry(2, 0.0, 0.0)
    assert not RetryPolicy(deadline_seconds=10).should_retry(1, 8.0, 5.0)


def test_retry_after_header_parsing() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-1") is None
    assert parse_retry_after(None) is None


def test_budget_halves_on_429_and_recovers_slowly() -> None:
    """Brief: concurrency halves on 429 (never below 1) and grows back by one per N successes."""
    budget = RequestBudget(8)
    budget.record_throttled()
    assert budget.limit == 4
    budget.record_throttled()
    budget.record_throttled()
    budget.record_throttled()
    assert budget.limit == 1
    for _ in range(RECOVERY_AFTER):
        budget.record_success()
    assert budget.limit == 2
    for _ in range(RECOVERY_AFTER - 1):
        budget.record_success()
    assert budget.limit == 2
    budget.record_success()
    assert budget.limit == 3
    stats = budget.snapshot()
    assert stats.throttled == 4
    assert stats.concurrency_limit == 3
    assert stats.max_concurrency == 8


def test_budget_bounds_requests_in_flight() -> None:
    """Never more than the limit in flight, whatever the number of threads."""
    budget = RequestBudget(2)
    peak = {"now": 0, "max": 0}
    guard = threading.Lock()

    def work() -> None:
        with budget.slot("read"):
            with guard:
                peak["now"] += 1
                peak["max"] = max(peak["max"], peak["now"])
            time.sleep(0.01)
            with guard:
                peak["now"] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak["max"] == 2
    assert budget.snapshot().requests_by_kind == {"read": 8}


@pytest.mark.parametrize(
    ("message", "name"),
    [
        (
            "Could not find a property named 'new_gone' on type 'Microsoft.Dynamics.CRM.lead'.",
            "new_gone",
        ),
        (
            "Error identified in Payload provided by the user for Entity :'leads' ... "
            "InnerException : Microsoft.OData.ODataException: The property 'new_x' does not "
            "exist on type 'Microsoft.Dynamics.CRM.lead'.",
            "new_x",
        ),
        (
            "An undeclared property 'new_lookup' which only has property annotations",
            "new_lookup",
        ),
        (
            "Could not find a property named '_new_ref_value' on type 'Microsoft.Dynamics.CRM.x'.",
            "new_ref",
        ),
        ("A validation error occurred.", None),
        (None, None),
    ],
)
def test_unknown_property_names_are_read_from_the_documented_messages(
    message: str | None, name: str | None
) -> None:
    """B14: the deleted column's name comes out of Dataverse's unknown-property messages (§7)."""
    from crmsync.dynamics.classify import unknown_property_of

    assert unknown_property_of(message) == name


def test_a_query_naming_a_deleted_column_is_an_unknown_field_error() -> None:
    """B14: 400 0x80060888 on $select → UnknownFieldError (not a validation or token error)."""
    from crmsync.errors import UnknownFieldError

    response = error_response(
        400,
        "0x80060888",
        "Could not find a property named 'new_gone' on type 'Microsoft.Dynamics.CRM.lead'.",
    )
    resolution = classify(response, entity="lead")
    assert isinstance(resolution.error, UnknownFieldError)
    assert resolution.error.code == "0x80060888"


@given(
    st.integers(min_value=400, max_value=599),
    st.sampled_from(["", "0x80044331", "0x80072322", "0x80040237", "0x80044352", "junk"]),
    st.one_of(st.none(), st.sampled_from(["0", "1", "17", "soon"])),
)
def test_every_error_status_gets_an_action_and_a_typed_error(
    status: int, code: str, retry_after: str | None
) -> None:
    """Errors as data: any 4xx/5xx answer is classified, never passed off as success."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    resolution = classify(error_response(status, code, "m", headers), entity="lead")
    assert resolution.action is not Action.SUCCESS
    assert resolution.error is not None
    assert resolution.error.status == status
    assert (resolution.action is Action.RETRY) == isinstance(
        resolution.error, ThrottledError | TransientServerError
    )
