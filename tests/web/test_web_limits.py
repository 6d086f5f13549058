"""Marketo's call limits: 100 calls per 20 s per client (606), 10 concurrent calls (615)."""

from __future__ import annotations

import pytest

from crmsync.web.envelope import ApiError
from crmsync.web.limits import ConcurrencyGate, RateLimiter


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_refuses_the_101st_call_in_20_seconds_with_606() -> None:
    """Spec marketo-rest §8 / §10.9: sliding window of 100 calls per 20 s per client."""
    clock = FakeClock()
    limiter = RateLimiter(100, 20.0, clock)
    for _ in range(100):
        limiter.admit("a")
        clock.now += 0.1
    with pytest.raises(ApiError) as caught:
        limiter.admit("a")
    assert caught.value.code == "606"
    assert caught.value.message == "Max rate limit '100' exceeded with in '20' secs"
    limiter.admit("b")  # other clients have their own window
    clock.now += 10.1  # the first calls leave the window
    limiter.admit("a")


def test_uncounted_replies_give_their_slot_back() -> None:
    """§8: replies such as 605 do not count against the rate."""
    limiter = RateLimiter(1, 20.0, FakeClock())
    limiter.admit("a")
    limiter.forget_last("a")
    limiter.admit("a")
    assert limiter.calls_in_window("a") == 1


def test_concurrency_gate_refuses_the_eleventh_call_with_615() -> None:
    """§8: at most 10 calls in progress; a finished call frees its slot."""
    gate = ConcurrencyGate(10)
    holders = [gate.slot() for _ in range(10)]
    for holder in holders:
        holder.__enter__()
    with pytest.raises(ApiError) as caught, gate.slot():
        pass
    assert caught.value.code == "615"
    holders[0].__exit__(None, None, None)
    with gate.slot():
        assert gate.active == 10
    for holder in holders[1:]:
        holder.__exit__(None, None, None)
    assert gate.active == 0
