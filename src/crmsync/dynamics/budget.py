"""Request budget: bounded, adaptive concurrency and the counters behind ``client.stats()``.

Dataverse limits are per user and per web server over a 5-minute window (spec §8); Microsoft
advises starting with low parallelism and backing off when 429s appear. :class:`RequestBudget`
allows at most ``limit`` requests in flight, halves the limit on every 429 (never below one) and
grows it back by one after :data:`RECOVERY_AFTER` consecutive successes, up to
``max_concurrency``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

RECOVERY_AFTER = 50
"""Consecutive successes after which one more request may be in flight again."""


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of the client's request counters, for status pages and metrics (B40)."""

    requests: int
    requests_by_kind: Mapping[str, int] = field(default_factory=dict)
    throttled: int = 0
    retries: int = 0
    transport_errors: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    concurrency_limit: int = 0
    max_concurrency: int = 0
    in_flight: int = 0


class RequestBudget:
    """Bounded concurrency that halves on 429 and recovers slowly; thread-safe counters."""

    def __init__(self, max_concurrency: int = 4) -> None:
        if max_concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._max = max_concurrency
        self._limit = max_concurrency
        self._successes_since_change = 0
        self._in_flight = 0
        self._condition = threading.Condition()
        self._requests_by_kind: dict[str, int] = {}
        self._throttled = 0
        self._retries = 0
        self._transport_errors = 0
        self._bytes_sent = 0
        self._bytes_received = 0

    @property
    def limit(self) -> int:
        """The current number of requests allowed in flight."""
        with self._condition:
            return self._limit

    @contextmanager
    def slot(self, kind: str) -> Iterator[None]:
        """Hold one in-flight slot while a request of ``kind`` runs; counts the request."""
        with self._condition:
            while self._in_flight >= self._limit:
                self._condition.wait()
            self._in_flight += 1
            self._requests_by_kind[kind] = self._requests_by_kind.get(kind, 0) + 1
        try:
            yield
        finally:
            with self._condition:
                self._in_flight -= 1
                self._condition.notify_all()

    def record_bytes(self, sent: int, received: int) -> None:
        """Add to the byte counters."""
        with self._condition:
            self._bytes_sent += sent
            self._bytes_received += received

    def record_success(self) -> None:
        """A request succeeded: after enough of them in a row, allow one more in flight."""
        with self._condition:
            self._successes_since_change += 1
            if self._limit < self._max and self._successes_since_change >= RECOVERY_AFTER:
                self._limit += 1
                self._successes_since_change = 0
                self._condition.notify_all()

    def record_throttled(self) -> None:
        """A 429 arrived: halve the concurrency limit (at least one request stays allowed)."""
        with self._condition:
            self._throttled += 1
            self._limit = max(1, self._limit // 2)
            self._successes_since_change = 0

    def record_retry(self) -> None:
        """A request is being retried."""
        with self._condition:
            self._retries += 1

    def record_transport_error(self) -> None:
        """A request timed out or its connection dropped."""
        with self._condition:
            self._transport_errors += 1
            self._successes_since_change = 0

    def snapshot(self) -> ClientStats:
        """Return the current counters as an immutable value."""
        with self._condition:
            by_kind = MappingProxyType(dict(sorted(self._requests_by_kind.items())))
            return ClientStats(
                requests=sum(self._requests_by_kind.values()),
                requests_by_kind=by_kind,
                throttled=self._throttled,
                retries=self._retries,
                transport_errors=self._transport_errors,
                bytes_sent=self._bytes_sent,
                bytes_received=self._bytes_received,
                concurrency_limit=self._limit,
                max_concurrency=self._max,
                in_flight=self._in_flight,
            )
