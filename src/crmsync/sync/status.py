"""What the sync is doing, from the store alone (B40): backlog, last cycle, throughput, API use.

The backlog is the outbox grouped by the person's CRM type (lead, contact, or not yet linked:
``unlinked``) and operation, with the oldest pending change; Dynamics-side changes wait in
change tracking and are counted when read. Cycle figures come from the sync history.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from crmsync.store.key_values import get_sync_enabled
from crmsync.store.tables import (
    delta_cursors,
    now_utc,
    persons,
    sync_history,
    sync_outbox,
)
from crmsync.sync.cursors import DELTA_PHASE
from crmsync.sync.error_counts import open_error_total
from crmsync.sync.lease import SyncLease
from crmsync.sync.sync_user import sync_user_name
from crmsync.sync.write_waits import read_waits

_ENTITY_OF_TYPE = {"Lead": "lead", "Contact": "contact"}


@dataclass(frozen=True, slots=True)
class Backlog:
    """Pending marketing-side changes of one entity."""

    entity: str
    pending_creates: int
    pending_updates: int
    pending_deletes: int
    oldest_pending: datetime | None


@dataclass(frozen=True, slots=True)
class WaitingWrites:
    """The writes of one entity held back: why, the fix, since when (B41, B43)."""

    entity: str
    reason: str
    summary: str
    fix: str
    since: datetime
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class Traffic:
    """What the cycles asked of Dynamics: requests by kind (``track``, ``delta``, ``batch``,
    ``metadata``...), 429 answers, retries, transport errors and bytes each way (B40)."""

    requests_by_kind: dict[str, int]
    throttled: int
    retries: int
    transport_errors: int
    bytes_sent: int
    bytes_received: int


_TRAFFIC_COUNTERS = ("throttled", "retries", "transport_errors", "bytes_sent", "bytes_received")


def _sum_traffic(details: list[object]) -> Traffic:
    """Add up the ``traffic`` of cycles' history details (older cycles have none)."""
    kinds: dict[str, int] = {}
    totals = dict.fromkeys(_TRAFFIC_COUNTERS, 0)
    for detail in details:
        traffic = detail.get("traffic") if isinstance(detail, dict) else None
        if not isinstance(traffic, dict):
            continue
        by_kind = traffic.get("requests_by_kind")
        if isinstance(by_kind, dict):
            for kind, count in by_kind.items():
                if isinstance(count, int):
                    kinds[str(kind)] = kinds.get(str(kind), 0) + count
        for name in _TRAFFIC_COUNTERS:
            value = traffic.get(name)
            if isinstance(value, int):
                totals[name] += value
    return Traffic(dict(sorted(kinds.items())), **totals)


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """A snapshot of the sync for ``crmsync sync status`` and the admin API (B40)."""

    enabled: bool
    backlog: tuple[Backlog, ...]
    oldest_pending: datetime | None
    initial_sync_done: dict[str, bool]
    last_cycle_started: datetime | None
    last_cycle_status: str | None
    last_cycle_duration_seconds: float | None
    last_cycle_api_calls: int | None
    cycles_last_hour: int
    records_synced_last_hour: int
    api_calls_last_hour: int
    open_errors: int
    traffic_last_hour: Traffic
    lease_holder: str | None = None
    """The process running a cycle now (``host:pid:suffix``), or ``None``."""
    lease_host: str | None = None
    lease_pid: int | None = None
    lease_acquired_at: datetime | None = None
    lease_expires_at: datetime | None = None
    last_cycle_failed: int = 0  # records that failed in the last cycle
    writes_waiting: tuple[WaitingWrites, ...] = ()
    """Entities whose writes to Dynamics wait (e.g. the sync user lost a privilege)."""
    sync_user: str | None = None
    """Who crmsync is in Dynamics, by name (``None`` until a cycle learnt it)."""

    @property
    def last_cycle_outcome(self) -> str | None:
        """The last cycle's status with its failed records: ``ok, 2 records failed``."""
        if self.last_cycle_status is None:
            return None
        return outcome_text(self.last_cycle_status, self.last_cycle_failed)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        result = asdict(self)
        for key, value in list(result.items()):
            if isinstance(value, datetime):
                result[key] = value.isoformat()
        result["backlog"] = [
            {
                **asdict(b),
                "oldest_pending": b.oldest_pending.isoformat() if b.oldest_pending else None,
            }
            for b in self.backlog
        ]
        result["writes_waiting"] = [
            {**asdict(w), "since": w.since.isoformat(), "checked_at": w.checked_at.isoformat()}
            for w in self.writes_waiting
        ]
        return result


def read_status(engine: Engine, *, now: datetime | None = None) -> SyncStatus:
    """Build the status snapshot with a handful of aggregate queries."""
    moment = now or now_utc()
    with engine.connect() as conn:
        enabled = get_sync_enabled(conn)
        sync_user = sync_user_name(conn)
        rows = conn.execute(
            select(
                persons.c.crmType,
                sync_outbox.c.operation,
                func.count(),
                func.min(sync_outbox.c.created_at),
            )
            .select_from(sync_outbox.outerjoin(persons, persons.c.id == sync_outbox.c.person_id))
            .group_by(persons.c.crmType, sync_outbox.c.operation)
        ).all()
        cursors = {
            str(entity): link is not None and phase == DELTA_PHASE
            for entity, link, phase in conn.execute(
                select(delta_cursors.c.entity, delta_cursors.c.delta_link, delta_cursors.c.phase)
            )
        }
        last = conn.execute(
            select(
                sync_history.c.started_at,
                sync_history.c.finished_at,
                sync_history.c.status,
                sync_history.c.api_calls,
                sync_history.c.details,
            )
            .where(sync_history.c.kind == "cycle")
            .order_by(sync_history.c.started_at.desc(), sync_history.c.id.desc())
            .limit(1)
        ).first()
        recent = conn.execute(
            select(sync_history.c.api_calls, sync_history.c.details).where(
                sync_history.c.kind == "cycle",
                sync_history.c.started_at >= moment - timedelta(hours=1),
            )
        ).all()
        errors = open_error_total(conn)
        waits = read_waits(conn)
    counts: dict[str, dict[str, int]] = {}
    oldest: dict[str, datetime] = {}
    for crm_type, operation, count, first in rows:
        entity = _ENTITY_OF_TYPE.get(str(crm_type), "unlinked")
        counts.setdefault(entity, {})
        counts[entity][str(operation)] = counts[entity].get(str(operation), 0) + int(count)
        first_at = _aware(first)
        if first_at is not None and (entity not in oldest or first_at < oldest[entity]):
            oldest[entity] = first_at
    backlog = tuple(
        Backlog(
            entity,
            counts[entity].get("create", 0),
            counts[entity].get("update", 0),
            counts[entity].get("delete", 0),
            oldest.get(entity),
        )
        for entity in sorted(counts)
    )
    records = 0
    for _, details in recent:
        if isinstance(details, dict):
            value = details.get("records_synced", 0)
            records += int(value) if isinstance(value, int | float) else 0
    started = _aware(last[0]) if last else None
    finished = _aware(last[1]) if last else None
    holder = SyncLease(engine, clock=lambda: moment).current_holder()
    return SyncStatus(
        enabled=enabled,
        sync_user=sync_user,
        backlog=backlog,
        oldest_pending=min(oldest.values()) if oldest else None,
        initial_sync_done=cursors,
        last_cycle_started=started,
        last_cycle_status=str(last[2]) if last else None,
        last_cycle_duration_seconds=(
            (finished - started).total_seconds() if started and finished else None
        ),
        last_cycle_api_calls=int(last[3]) if last else None,
        cycles_last_hour=len(recent),
        records_synced_last_hour=records,
        api_calls_last_hour=sum(int(calls or 0) for calls, _ in recent),
        open_errors=int(errors),
        traffic_last_hour=_sum_traffic([details for _, details in recent]),
        lease_holder=holder.holder if holder else None,
        lease_host=holder.host if holder else None,
        lease_pid=holder.pid if holder else None,
        lease_acquired_at=_aware(holder.acquired_at) if holder else None,
        lease_expires_at=_aware(holder.expires_at) if holder else None,
        last_cycle_failed=_failed_in(last[4]) if last else 0,
        writes_waiting=tuple(
            WaitingWrites(
                w.entity,
                w.reason,
                w.summary,
                w.fix,
                _aware(w.since) or moment,
                _aware(w.checked_at) or moment,
            )
            for w in waits.values()
        ),
    )


def outcome_text(status: str, failed: int) -> str:
    """A cycle's status with the records that failed, e.g. ``ok, 2 records failed``."""
    if not failed:
        return status
    return f"{status}, {failed} record{'' if failed == 1 else 's'} failed"


def _failed_in(details: object) -> int:
    """The records a cycle's history details say failed."""
    if not isinstance(details, dict):
        return 0
    value = details.get("records_failed", 0)
    return int(value) if isinstance(value, int | float) else 0


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
