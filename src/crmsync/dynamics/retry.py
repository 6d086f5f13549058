"""Where a request to Dynamics is retried: one immutable policy and the one loop that follows it.

Dataverse answers service-protection hits with ``429`` and a ``Retry-After`` header in seconds
(spec §8); Microsoft's own samples honour it exactly and fall back to ``2^n`` seconds when it is
missing. :class:`RetryPolicy` does the same, with full jitter on the fallback so that parallel
workers do not retry in lock step, and bounds both the number of attempts and the total time.

:class:`Retrier` runs that policy: it repeats an attempt while the attempt answers
:class:`Retry`, pausing as the policy says and counting every retry in the
:class:`~crmsync.dynamics.budget.RequestBudget`. Single requests
(:class:`~crmsync.dynamics.transport.Transport`) and the per-part retries of ``$batch`` writes
(:class:`~crmsync.dynamics.writes.BatchWriter`) both go through it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from crmsync.dynamics.budget import RequestBudget
from crmsync.errors import CrmsyncError

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a retryable failure.

    ``max_attempts`` counts the first try; ``deadline_seconds`` bounds the time spent on one
    operation including pauses; ``max_delay_seconds`` caps one pause, except that a server's
    ``Retry-After`` is honoured up to ``max_retry_after_seconds``.
    """

    max_attempts: int = 6
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0
    jitter: float = 0.5
    deadline_seconds: float = 900.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_seconds < 0 or self.max_delay_seconds < 0:
            raise ValueError("delays must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        A server-given ``retry_after`` wins (capped at ``max_retry_after_seconds``); otherwise
        ``base * 2^(attempt-1)`` capped at ``max_delay_seconds``, of which a ``jitter`` fraction
        is randomised.
        """
        if retry_after is not None and retry_after >= 0:
            return min(float(retry_after), self.max_retry_after_seconds)
        exponential = self.base_delay_seconds * float(2 ** max(attempt - 1, 0))
        capped = min(exponential, self.max_delay_seconds)
        chooser = rng if rng is not None else random.Random()
        randomised = capped * self.jitter * chooser.random()
        return capped * (1.0 - self.jitter) + randomised

    def should_retry(self, attempt: int, elapsed_seconds: float, next_delay: float) -> bool:
        """Whether another attempt may follow failed attempt ``attempt`` after ``next_delay``."""
        if attempt >= self.max_attempts:
            return False
        return elapsed_seconds + next_delay <= self.deadline_seconds


def parse_retry_after(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header given in seconds (Dataverse never sends an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


@dataclass(frozen=True, slots=True)
class Retry:
    """An attempt's answer meaning "try again": after ``retry_after`` seconds when the server
    asked for a pause, else after the policy's backoff.

    ``reason`` is logged with the retry; ``count`` is how many retries it stands for in the
    request budget (a ``$batch`` round retries each of its throttled parts); ``error`` is what
    a single request raises when no retry is left.
    """

    reason: str
    retry_after: float | None = None
    count: int = 1
    error: CrmsyncError | None = None


class Retrier:
    """The retry loop: repeat an attempt while it answers :class:`Retry` and the policy allows.

    ``clock`` and ``sleep`` make the timing testable; ``budget`` counts the retries (B40).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        budget: RequestBudget,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy
        self._budget = budget
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random()

    def run(
        self,
        attempt: Callable[[], _T | Retry],
        give_up: Callable[[Retry], _T],
        *,
        what: str,
    ) -> _T:
        """``attempt()`` until it answers a result; when the policy allows no further attempt
        (too many, or past the deadline), ``give_up`` turns the last :class:`Retry` into the
        result (or raises). ``what`` names the operation in the log."""
        started = self._clock()
        number = 0
        while True:
            number += 1
            outcome = attempt()
            if not isinstance(outcome, Retry):
                return outcome
            delay = self.policy.delay(number, outcome.retry_after, self._rng)
            if not self.policy.should_retry(number, self._clock() - started, delay):
                return give_up(outcome)
            for _ in range(outcome.count):
                self._budget.record_retry()
            log.warning(
                "Dynamics %s attempt %d: %s; retrying in %.1fs", what, number, outcome.reason, delay
            )
            self._sleep(delay)
