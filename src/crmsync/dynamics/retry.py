"""One immutable retry policy: exponential backoff with jitter that honours ``Retry-After``.

Dataverse answers service-protection hits with ``429`` and a ``Retry-After`` header in seconds
(spec §8); Microsoft's own samples honour it exactly and fall back to ``2^n`` seconds when it is
missing. :class:`RetryPolicy` does the same, with full jitter on the fallback so that parallel
workers do not retry in lock step, and bounds both the number of attempts and the total time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


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
    seed: int | None = field(default=None, compare=False)

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
        chooser = rng if rng is not None else random.Random(self.seed)
        randomised = capped * self.jitter * chooser.random()
        return capped * (1.0 - self.jitter) + randomised

    def should_retry(self, attempt: int, elapsed_seconds: float, next_delay: float) -> bool:
        """Whether another attempt may follow failed attempt ``attempt`` after ``next_delay``."""
        if attempt >= self.max_attempts:
            return False
        return elapsed_seconds + next_delay <= self.deadline_seconds


NO_RETRY = RetryPolicy(max_attempts=1)
"""A policy that never retries (for callers that retry at a higher level)."""


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
