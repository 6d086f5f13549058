"""Marketo's documented call limits (spec marketo-rest.md §8).

* Bodies over 1 MB are refused with HTTP 413 and URIs over 8 KB with HTTP 414 (§1).
* At most ``calls_per_window`` (100) calls per ``window_seconds`` (20 s) per API client: error
  606 "Max rate limit '100' exceeded with in '20' secs".
* At most ``max_concurrent_calls`` (10) calls in progress at once: error 615.

Identity calls and calls answered 601/602/604/605/608/611 do not count against the rate
(§8): the caller records a call only once authentication has succeeded, and gives the slot
back (:meth:`RateLimiter.forget_last`) when the reply carries one of the uncounted codes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
    """The limits of one app instance: body size, rate per client and concurrency."""

    def __init__(
        self,
        *,
        max_body_bytes: int,
        calls_per_window: int,
        window_seconds: float,
        max_concurrent_calls: int,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.rate = RateLimiter(calls_per_window, window_seconds, clock)
        self.concurrency = ConcurrencyGate(max_concurrent_calls)
