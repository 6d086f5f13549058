"""The one retry loop (:class:`~crmsync.dynamics.retry.Retrier`): it honours ``Retry-After``,
backs off otherwise, counts each retry, and stops where the policy says (spec §8)."""

from __future__ import annotations

import pytest

from crmsync.dynamics.budget import RequestBudget
from crmsync.dynamics.retry import Retrier, Retry, RetryPolicy
from crmsync.errors import ThrottledError


def _retrier(policy: RetryPolicy, sleeps: list[float], now: list[float]) -> Retrier:
    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    return Retrier(policy, RequestBudget(2), clock=lambda: now[0], sleep=sleep)


def test_retries_until_the_attempt_answers_pausing_as_asked() -> None:
    answers: list[str | Retry] = [Retry("busy", retry_after=7.0), Retry("busy"), "done"]
    sleeps: list[float] = []
    retrier = _retrier(RetryPolicy(base_delay_seconds=2, jitter=0.0), sleeps, [0.0])
    result = retrier.run(lambda: answers.pop(0), lambda last: "gave up", what="test")
    assert result == "done"
    assert sleeps == [7.0, 4.0]  # Retry-After wins; then 2 * 2^(2-1)


def test_every_retry_is_counted_in_the_budget() -> None:
    budget = RequestBudget(2)
    answers: list[str | Retry] = [Retry("3 parts throttled", count=3), "done"]
    retrier = Retrier(RetryPolicy(jitter=0.0), budget, sleep=lambda seconds: None)
    retrier.run(lambda: answers.pop(0), lambda last: "gave up", what="test")
    assert budget.snapshot().retries == 3


def test_gives_up_after_the_last_attempt_with_the_last_answer() -> None:
    attempts: list[int] = []

    def attempt() -> str | Retry:
        attempts.append(1)
        return Retry(f"busy {len(attempts)}", retry_after=1.0)

    sleeps: list[float] = []
    retrier = _retrier(RetryPolicy(max_attempts=3, jitter=0.0), sleeps, [0.0])
    result = retrier.run(attempt, lambda last: f"gave up after {last.reason}", what="test")
    assert result == "gave up after busy 3"
    assert (len(attempts), sleeps) == (3, [1.0, 1.0])


def test_gives_up_when_the_pause_would_pass_the_deadline() -> None:
    sleeps: list[float] = []
    retrier = _retrier(RetryPolicy(deadline_seconds=10, jitter=0.0), sleeps, [0.0])
    error = ThrottledError("slow down", retry_after=30.0)

    def give_up(last: Retry) -> str:
        assert last.error is not None
        raise last.error

    with pytest.raises(ThrottledError, match="slow down"):
        retrier.run(lambda: Retry("slow down", 30.0, error=error), give_up, what="test")
    assert sleeps == []
