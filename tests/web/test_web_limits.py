"""Marketo's call limits: 100 calls per 20 s per client (606), 10 concurrent calls (615)."""

from __future__ import annotations

import pytest

from crmsync.web.envelope import ApiError
from crmsync.web.limits import ApiLimits, ConcurrencyGate, RateLimiter


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


def test_daily_quota_answers_607_until_midnight_central_time() -> None:
    """§3 / §8: past the daily quota every call is 607 until the day ends (12:00 AM CST)."""
    clock = FakeClock()
    clock.now = 1_800_000_000.0  # 2027-01-15 08:00 UTC = 02:00 in Chicago (CST, UTC-6)
    limits = ApiLimits(
        max_body_bytes=1000,
        calls_per_window=1000,
        window_seconds=20.0,
        max_concurrent_calls=10,
        daily_calls=3,
        clock=clock,
    )
    for _ in range(3):
        limits.admit("a")
    with pytest.raises(ApiError) as caught:
        limits.admit("a")
    assert (caught.value.code, caught.value.message) == ("607", "Daily quota reached")
    limits.admit("b")  # each API client has its own quota
    clock.now += 21 * 3600  # 23:00 in Chicago (05:00 UTC next day): still the same day there
    with pytest.raises(ApiError):
        limits.admit("a")
    clock.now += 3600 + 1  # past midnight in Chicago
    limits.admit("a")


def test_uncounted_and_refused_calls_do_not_use_the_quota() -> None:
    clock = FakeClock()
    limits = ApiLimits(
        max_body_bytes=1000,
        calls_per_window=1,
        window_seconds=20.0,
        max_concurrent_calls=10,
        daily_calls=2,
        clock=clock,
    )
    limits.admit("a")
    limits.forget_last("a")  # e.g. answered 605
    limits.admit("a")
    with pytest.raises(ApiError) as caught:
        limits.admit("a")
    assert caught.value.code == "606"  # refused by the rate: the quota is not used up
    clock.now += 21
    limits.admit("a")
    assert limits.quota.used_today("a") == 2


def test_quota_of_zero_is_off() -> None:
    limits = ApiLimits(
        max_body_bytes=1000,
        calls_per_window=10_000,
        window_seconds=20.0,
        max_concurrent_calls=10,
        daily_calls=0,
        clock=FakeClock(),
    )
    for _ in range(5000):
        limits.admit("a")
