"""Service protection limits, per user, as Dataverse applies them (spec §8).

Three measures, each per user over a sliding window of ``request_window_seconds``:

* number of requests (default 6,000 per 300 s) → 429, code ``0x80072322``;
* combined execution time (default 1,200,000 ms per 300 s) → 429, code ``0x80072321``;
* concurrent requests (default 52) → 429, code ``0x80072326``, immediately.

Every 429 carries ``Retry-After`` in whole seconds: for the window limits, the time until
enough of the window has slid past for the next request to be admitted; for the concurrency
limit, one second (the docs give no figure). Refused requests are not counted in the window.
Admitted responses carry the two diagnostic headers
``x-ms-ratelimit-burst-remaining-xrm-requests`` and ``x-ms-ratelimit-time-remaining-xrm-requests``.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from crmsync.dataverse_codes import (
    THROTTLED_CONCURRENCY,
    THROTTLED_EXECUTION_TIME,
    THROTTLED_REQUESTS,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from crmsync.emulator.config import EmulatorConfig


@dataclass(frozen=True, slots=True)
class Throttle:
    """A refusal: the Dataverse error code, its message and the Retry-After seconds."""

    code: str
    message: str
    retry_after: int
    measure: str


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted request and what remains of the user's allowance for the headers."""

    requests_remaining: int
    time_remaining_ms: int


@dataclass(slots=True)
class _UserWindow:
    arrivals: deque[float] = field(default_factory=deque)
    durations: deque[tuple[float, float]] = field(default_factory=deque)
    duration_total_ms: float = 0.0
    in_flight: int = 0


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class ServiceProtection:
    """Per-user sliding-window counters and concurrency gauges of one emulator."""

    def __init__(self, config: EmulatorConfig, clock: Callable[[], datetime]) -> None:
        self._config = config
        self._clock = clock
        self._windows: dict[str, _UserWindow] = {}
        self._lock = threading.Lock()

    def _prune(self, window: _UserWindow, now: float) -> None:
        horizon = now - self._config.request_window_seconds
        while window.arrivals and window.arrivals[0] <= horizon:
            window.arrivals.popleft()
        while window.durations and window.durations[0][0] <= horizon:
            window.duration_total_ms -= window.durations.popleft()[1]

    def admit(self, user_id: str) -> Admission | Throttle:
        """Count a new request by ``user_id`` or say why it is refused."""
        config = self._config
        now = self._clock().timestamp()
        window_text = _number(config.request_window_seconds)
        with self._lock:
            window = self._windows.setdefault(user_id, _UserWindow())
            self._prune(window, now)
            if window.in_flight >= config.concurrency_limit:
                return Throttle(
                    THROTTLED_CONCURRENCY,
                    "Number of concurrent requests exceeded the limit of "
                    f"{config.concurrency_limit}.",
                    1,
                    "concurrency",
                )
            if len(window.arrivals) >= config.request_limit:
                index = len(window.arrivals) - config.request_limit
                wait = window.arrivals[index] + config.request_window_seconds - now
                return Throttle(
                    THROTTLED_REQUESTS,
                    f"Number of requests exceeded the limit of {config.request_limit} over "
                    f"time window of {window_text} seconds.",
                    max(1, math.ceil(wait)),
                    "requests",
                )
            if window.duration_total_ms > config.execution_time_limit_ms:
                excess = window.duration_total_ms - config.execution_time_limit_ms
                wait = config.request_window_seconds
                for stamp, duration in window.durations:
                    excess -= duration
                    if excess < 0:
                        wait = stamp + config.request_window_seconds - now
                        break
                return Throttle(
                    THROTTLED_EXECUTION_TIME,
                    "Combined execution time of incoming requests exceeded limit of "
                    f"{config.execution_time_limit_ms:,.0f} milliseconds over time window of "
                    f"{window_text} seconds. Decrease number of concurrent requests or reduce "
                    "the duration of requests and try again later.",
                    max(1, math.ceil(wait)),
                    "execution_time",
                )
            window.arrivals.append(now)
            window.in_flight += 1
            return Admission(
                requests_remaining=config.request_limit - len(window.arrivals),
                time_remaining_ms=max(
                    0, int(config.execution_time_limit_ms - window.duration_total_ms)
                ),
            )

    def release(self, user_id: str, duration_ms: float) -> None:
        """Mark an admitted request finished and charge its execution time."""
        now = self._clock().timestamp()
        with self._lock:
            window = self._windows.setdefault(user_id, _UserWindow())
            window.in_flight = max(0, window.in_flight - 1)
            window.durations.append((now, duration_ms))
            window.duration_total_ms += duration_ms

    def reset(self) -> None:
        """Forget every user's window (requests in flight stay counted until they finish)."""
        with self._lock:
            for window in self._windows.values():
                window.arrivals.clear()
                window.durations.clear()
                window.duration_total_ms = 0.0

    def in_flight(self, user_id: str) -> int:
        """Requests of ``user_id`` being served right now."""
        with self._lock:
            window = self._windows.get(user_id)
            return window.in_flight if window else 0

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Per-user window figures for the admin stats."""
        now = self._clock().timestamp()
        with self._lock:
            result: dict[str, dict[str, float]] = {}
            for user_id, window in self._windows.items():
                self._prune(window, now)
                result[user_id] = {
                    "requests_in_window": len(window.arrivals),
                    "execution_ms_in_window": round(window.duration_total_ms, 3),
                    "in_flight": window.in_flight,
                }
            return result
