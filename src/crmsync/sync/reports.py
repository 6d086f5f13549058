"""What a sync cycle reports: progress events while it runs (B16, B40), and per entity and for
the whole cycle what it did, with the requests it cost (``crmsync sync once --json``, the sync
history).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from crmsync.dynamics.budget import ClientStats
from crmsync.sync.apply import RecordCounts
from crmsync.sync.push import PushCounts
from crmsync.sync.status import outcome_text

PUSH_ENTITY = "outbox"
"""The :attr:`Progress.entity` of the push phase's events."""


@dataclass(frozen=True, slots=True)
class Progress:
    """Progress of one part of a cycle (B16, B40).

    For reads, a page applied: ``records`` read so far for ``entity`` in this ``mode``
    (``initial``, ``delta``, ``reconcile``); an initial read first reports 0 records with its
    ``total`` when Dynamics can count them. For the push (``mode="push"``, ``entity`` =
    :data:`PUSH_ENTITY`), ``records`` is the outbox entries handled so far of ``total``
    queued when the push started. ``total`` is ``None`` when unknown.
    """

    entity: str
    mode: str  # initial | delta | reconcile | push
    records: int
    pages: int
    done: bool
    total: int | None = None


@dataclass(slots=True)
class EntityReport(RecordCounts):
    """What the cycle did for one entity: its read mode, pages and records read, and what
    happened to them (:class:`~crmsync.sync.apply.RecordCounts`, added page by page)."""

    entity: str
    mode: str = "delta"
    pages: int = 0
    records: int = 0
    error: str | None = None
    note: str | None = None


@dataclass(slots=True)
class CycleReport:
    """What one cycle did: per entity, the push, requests used, how long it took."""

    started_at: datetime
    finished_at: datetime | None = None
    duration_seconds: float = 0.0
    entities: list[EntityReport] = field(default_factory=list)
    push: PushCounts = field(default_factory=PushCounts)
    api_calls: int = 0
    traffic: dict[str, object] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None

    @property
    def records_synced(self) -> int:
        """Records changed on either side by this cycle."""
        pulled = sum(e.created + e.updated + e.deleted_flags for e in self.entities)
        return pulled + self.push.created + self.push.updated

    @property
    def records_failed(self) -> int:
        """Records that failed on either side in this cycle (each is a sync error)."""
        return sum(e.failed for e in self.entities) + self.push.failed

    @property
    def outcome(self) -> str:
        """The status with the records that failed: ``ok``, ``ok, 2 records failed``."""
        return outcome_text(self.status, self.records_failed)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (``crmsync sync once --json``)."""
        return {
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_seconds": round(self.duration_seconds, 3),
            "status": self.status,
            "error": self.error,
            "api_calls": self.api_calls,
            "traffic": self.traffic,
            "records_synced": self.records_synced,
            "records_failed": self.records_failed,
            "entities": [asdict(e) for e in self.entities],
            "push": asdict(self.push),
        }


def push_summary(push: PushCounts) -> str:
    """What a push did, each outcome counted apart: ``3 created, 1 updated, 2 failed,
    400 skipped (400 marketing-only: no Dynamics lead or contact)``."""
    parts = [f"{push.created} created", f"{push.updated} updated", f"{push.failed} failed"]
    if push.dropped:
        why = ", ".join(f"{count} {reason}" for reason, count in push.dropped_why.items())
        parts.append(f"{push.dropped} skipped ({why})" if why else f"{push.dropped} skipped")
    if push.deferred:
        parts.append(f"{push.deferred} deferred (Dynamics busy: retried next cycle)")
    if push.waiting_for:
        why = "; ".join(f"writes to {e} wait, {reason}" for e, reason in push.waiting_for.items())
        parts.append(f"{push.waiting} waiting ({why})")
    return ", ".join(parts)


def traffic_between(before: ClientStats, after: ClientStats) -> dict[str, object]:
    """What a cycle asked of Dynamics (B40): requests by kind, 429s, retries, transport
    errors and bytes each way, from the client's counters before and after it."""
    kinds = {
        kind: count - before.requests_by_kind.get(kind, 0)
        for kind, count in after.requests_by_kind.items()
        if count > before.requests_by_kind.get(kind, 0)
    }
    return {
        "requests_by_kind": dict(sorted(kinds.items())),
        "throttled": after.throttled - before.throttled,
        "retries": after.retries - before.retries,
        "transport_errors": after.transport_errors - before.transport_errors,
        "bytes_sent": after.bytes_sent - before.bytes_sent,
        "bytes_received": after.bytes_received - before.bytes_received,
    }


class PushProgress:
    """Turns the pusher's per-round counts into :class:`Progress` events (B40)."""

    def __init__(self, hook: Callable[[Progress], None], total: int) -> None:
        self._hook = hook
        self._total = total
        self._handled = 0
        self._rounds = 0

    def __call__(self, handled: int) -> None:
        """Report that ``handled`` records of the push are done after one more round."""
        self._handled = handled
        self._rounds += 1
        self._emit(done=False)

    def finish(self) -> None:
        """The push ended: report it done (nothing when nothing was queued)."""
        if self._total or self._handled:
            self._emit(done=True)

    def _emit(self, *, done: bool) -> None:
        total = max(self._total, self._handled)
        records = total if done else self._handled
        self._hook(Progress(PUSH_ENTITY, "push", records, self._rounds, done, total))
