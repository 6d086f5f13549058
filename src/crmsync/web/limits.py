"""Marketo's documented call limits (spec marketo-rest.md §8).

* Bodies over 1 MB are refused with HTTP 413 and URIs over 8 KB with HTTP 414 (§1).
* At most ``calls_per_window`` (100) calls per ``window_seconds`` (20 s) per API client: error
  606 "Max rate limit '100' exceeded with in '20' secs".
* At most ``max_concurrent_calls`` (10) calls in progress at once: error 615.
* At most ``daily_calls`` (50,000) calls per API client per day, the day ending at midnight US
  Central time as Marketo's does: error 607 "Daily quota reached" until then.

Identity calls and calls answered 601/602/604/605/608/611 count neither against the rate nor
against the daily quota (§8): the caller records a call only once authentication has
succeeded (:meth:`ApiLimits.admit`), and gives it back (:meth:`ApiLimits.forget_last`) when the
reply carries one of the uncounted codes.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crmsync.web.envelope import ApiError

MAX_URI_BYTES = 8192
UNCOUNTED_CODES = frozenset({"601", "602", "604", "605", "608", "611"})

Clock = Callable[[], float]


def body_too_large() -> ApiError:
    """413: the request body exceeds the limit."""
    return ApiError("413", "Request Entity Too Large", http_status=413)


def uri_too_long() -> ApiError:
    """414: the request URI exceeds 8 KB."""
    return ApiError("414", "Request-URI Too Long", http_status=414)


class RateLimiter:
    """A sliding-window call counter per API client."""

    def __init__(self, calls_per_window: int, window_seconds: float, clock: Clock) -> None:
        self._limit = calls_per_window
        self._window = window_seconds
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, client_id: str) -> None:
        """Count one call for ``client_id``, or raise 606 when the window is full."""
        now = self._clock()
        with self._lock:
            calls = self._calls.setdefault(client_id, deque())
            horizon = now - self._window
            while calls and calls[0] <= horizon:
                calls.popleft()
            if len(calls) >= self._limit:
                raise ApiError(
                    "606",
                    f"Max rate limit '{self._limit}' exceeded with in '{self._window:g}' secs",
                )
            calls.append(now)

    def forget_last(self, client_id: str) -> None:
        """Give back the most recent call of ``client_id`` (its reply does not count)."""
        with self._lock:
            calls = self._calls.get(client_id)
            if calls:
                calls.pop()

    def calls_in_window(self, client_id: str) -> int:
        """Return how many calls of ``client_id`` count in the current window."""
        now = self._clock()
        with self._lock:
            calls = self._calls.get(client_id, deque())
            return sum(1 for stamp in calls if stamp > now - self._window)


def _quota_zone() -> dt.tzinfo:
    try:
        return ZoneInfo("America/Chicago")
    except ZoneInfoNotFoundError:  # no time zone database: US Central standard time
        return dt.timezone(dt.timedelta(hours=-6), "CST")


class DailyQuota:
    """Calls per API client per day; the day ends at midnight US Central time (Marketo's).

    ``calls_per_day`` of 0 turns the quota off.
    """

    def __init__(self, calls_per_day: int, clock: Clock) -> None:
        self._limit = calls_per_day
        self._clock = clock
        self._zone = _quota_zone()
        self._day: dict[str, tuple[dt.date, int]] = {}
        self._lock = threading.Lock()

    def _today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self._clock(), tz=self._zone).date()

    def admit(self, client_id: str) -> None:
        """Count one call for ``client_id``, or raise 607 when today's quota is used up."""
        if self._limit <= 0:
            return
        today = self._today()
        with self._lock:
            day, used = self._day.get(client_id, (today, 0))
            if day != today:
                used = 0
            if used >= self._limit:
                raise ApiError("607", "Daily quota reached")
            self._day[client_id] = (today, used + 1)

    def forget_last(self, client_id: str) -> None:
        """Give back one call of ``client_id`` counted today (its reply does not count)."""
        today = self._today()
        with self._lock:
            day, used = self._day.get(client_id, (today, 0))
            if day == today and used > 0:
                self._day[client_id] = (day, used - 1)

    def used_today(self, client_id: str) -> int:
        """Return how many calls of ``client_id`` count against today's quota."""
        today = self._today()
        with self._lock:
            day, used = self._day.get(client_id, (today, 0))
            return used if day == today else 0


class ConcurrencyGate:
    """Refuses a call with 615 while ``limit`` calls are already in progress."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._active = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> int:
        """Calls in progress now."""
        return self._active

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the duration of a call; 615 when none is free."""
        with self._lock:
            if self._active >= self._limit:
                raise ApiError("615", "Concurrent access limit reached")
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1


class ApiLimits:
    """The limits of one app instance: body size, daily quota and rate per client, concurrency.

    ``clock`` is seconds since the epoch: the daily quota needs the date.
    """

    def __init__(
        self,
        *,
        max_body_bytes: int,
        calls_per_window: int,
        window_seconds: float,
        max_concurrent_calls: int,
        daily_calls: int = 0,
        clock: Clock = time.time,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.quota = DailyQuota(daily_calls, clock)
        self.rate = RateLimiter(calls_per_window, window_seconds, clock)
        self.concurrency = ConcurrencyGate(max_concurrent_calls)

    def admit(self, client_id: str) -> None:
        """Count one authenticated call: 607 past the daily quota, 606 past the rate.

        A call refused with 606 does not use up the day's quota.
        """
        self.quota.admit(client_id)
        try:
            self.rate.admit(client_id)
        except ApiError:
            self.quota.forget_last(client_id)
            raise

    def forget_last(self, client_id: str) -> None:
        """Give back the last call of ``client_id``: its reply counts against neither limit."""
        self.quota.forget_last(client_id)
        self.rate.forget_last(client_id)
