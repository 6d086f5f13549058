"""Quick sync jobs as stored state: queued, running, done or failed, with progress (B12).

A job fills the columns of one Dynamics table selected after go-live, for every record (or
those modified in a date range). Its row holds the columns, the range, the state, how many
records were read and filled out of how many, and its **position**: the last Dynamics id done,
ids being read in ascending order. The position moves forward only in the transaction that
writes the page it covers (:func:`advance`), and only from the position the page was read
at, so a crash repeats at most one page and two workers never apply the same page twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from crmsync.store.tables import field_selection, now_utc, quick_sync_jobs
from crmsync.sync.history import notify

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
ACTIVE_STATES = (QUEUED, RUNNING)
"""States of a job that still has work to do."""


@dataclass(frozen=True, slots=True)
class QuickSyncJob:
    """One stored quick sync job and its progress."""

    id: int
    entity: str
    attributes: tuple[str, ...]
    modified_since: datetime | None
    modified_until: datetime | None
    state: str
    records_done: int
    records_filled: int
    records_total: int | None
    position: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @property
    def active(self) -> bool:
        """Whether the job still has work to do (queued or running)."""
        return self.state in ACTIVE_STATES

    def rate(self, now: datetime | None = None) -> float | None:
        """Records read per second since the job started (``None`` before it has)."""
        if self.started_at is None or not self.records_done:
            return None
        end = self.finished_at or now or self.updated_at
        seconds = (end - self.started_at).total_seconds()
        return self.records_done / seconds if seconds > 0 else None

    def eta_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds left at the current rate, when the total is known and the job is active."""
        rate = self.rate(now)
        if not self.active or rate is None or self.records_total is None:
            return None
        return max(self.records_total - self.records_done, 0) / rate

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        """The job as JSON-ready values (what ``--json`` and the admin API show)."""

        def stamp(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        rate = self.rate(now)
        eta = self.eta_seconds(now)
        return {
            "id": self.id,
            "entity": self.entity,
            "fields": list(self.attributes),
            "modifiedSince": stamp(self.modified_since),
            "modifiedUntil": stamp(self.modified_until),
            "state": self.state,
            "done": self.records_done,
            "filled": self.records_filled,
            "total": self.records_total,
            "ratePerSecond": round(rate, 1) if rate is not None else None,
            "etaSeconds": round(eta, 1) if eta is not None else None,
            "error": self.error,
            "createdAt": stamp(self.created_at),
            "startedAt": stamp(self.started_at),
            "finishedAt": stamp(self.finished_at),
        }


def _job(row: Any) -> QuickSyncJob:
    return QuickSyncJob(
        id=int(row.id),
        entity=str(row.entity),
        attributes=tuple(str(a) for a in row.attributes or ()),
        modified_since=row.modified_since,
        modified_until=row.modified_until,
        state=str(row.state),
        records_done=int(row.records_done or 0),
        records_filled=int(row.records_filled or 0),
        records_total=None if row.records_total is None else int(row.records_total),
        position=row.position,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
    )


def queue_job(
    conn: Connection,
    entity: str,
    attributes: Sequence[str],
    *,
    modified_since: datetime | None = None,
    modified_until: datetime | None = None,
) -> int:
    """Queue a quick sync of ``attributes`` of ``entity``; returns the job's id."""
    stamp = now_utc()
    result = conn.execute(
        insert(quick_sync_jobs).values(
            entity=entity,
            attributes=list(attributes),
            modified_since=modified_since,
            modified_until=modified_until,
            state=QUEUED,
            records_done=0,
            records_filled=0,
            created_at=stamp,
            updated_at=stamp,
        )
    )
    key = result.inserted_primary_key
    return int(key[0]) if key else 0


def load_jobs(
    conn: Connection, *, entity: str | None = None, active_only: bool = False, limit: int = 50
) -> list[QuickSyncJob]:
    """Stored jobs, oldest first among active ones; newest first otherwise (up to ``limit``)."""
    query = select(quick_sync_jobs)
    if entity is not None:
        query = query.where(quick_sync_jobs.c.entity == entity)
    if active_only:
        query = query.where(quick_sync_jobs.c.state.in_(ACTIVE_STATES)).order_by(
            quick_sync_jobs.c.id
        )
    else:
        query = query.order_by(quick_sync_jobs.c.id.desc())
    return [_job(row) for row in conn.execute(query.limit(limit))]


def load_job(conn: Connection, job_id: int) -> QuickSyncJob | None:
    """One job by id."""
    row = conn.execute(select(quick_sync_jobs).where(quick_sync_jobs.c.id == job_id)).first()
    return _job(row) if row is not None else None


def busy_columns(conn: Connection, entity: str) -> dict[str, QuickSyncJob]:
    """The columns of ``entity`` a queued or running job is filling, each with its job."""
    return {
        attribute: job
        for job in load_jobs(conn, entity=entity, active_only=True)
        for attribute in job.attributes
    }


def start_job(conn: Connection, job: QuickSyncJob, total: int | None) -> None:
    """Mark ``job`` running (once) with the number of records it will read, if known."""
    stamp = now_utc()
    conn.execute(
        update(quick_sync_jobs)
        .where(quick_sync_jobs.c.id == job.id, quick_sync_jobs.c.state == QUEUED)
        .values(state=RUNNING, started_at=stamp, records_total=total, updated_at=stamp)
    )


def advance(conn: Connection, job: QuickSyncJob, position: str, *, read: int, filled: int) -> bool:
    """Move ``job`` from the position its page was read at to ``position``, counting ``read``
    and ``filled`` records, in the caller's (the page's) transaction. ``False`` when the job
    moved on meanwhile or stopped (another worker wrote that page): the caller rolls back."""
    where = [quick_sync_jobs.c.id == job.id, quick_sync_jobs.c.state == RUNNING]
    if job.position is None:
        where.append(quick_sync_jobs.c.position.is_(None))
    else:
        where.append(quick_sync_jobs.c.position == job.position)
    result = conn.execute(
        update(quick_sync_jobs)
        .where(*where)
        .values(
            position=position,
            records_done=quick_sync_jobs.c.records_done + read,
            records_filled=quick_sync_jobs.c.records_filled + filled,
            updated_at=now_utc(),
        )
    )
    return result.rowcount == 1


def finish_job(conn: Connection, job: QuickSyncJob) -> None:
    """B12/B41: ``job`` read its last page. Its columns become ordinary selected columns
    (unless another job still fills them) and the admins are told once."""
    stamp = now_utc()
    done = conn.execute(
        update(quick_sync_jobs)
        .where(quick_sync_jobs.c.id == job.id, quick_sync_jobs.c.state == RUNNING)
        .values(state=DONE, finished_at=stamp, updated_at=stamp)
    )
    if done.rowcount != 1:
        return
    still_busy = busy_columns(conn, job.entity)
    finished = [a for a in job.attributes if a not in still_busy]
    if finished:
        conn.execute(
            update(field_selection)
            .where(
                field_selection.c.entity == job.entity,
                field_selection.c.attribute.in_(finished),
                field_selection.c.status == "quick_sync",
            )
            .values(status="selected", updated_at=stamp)
        )
    current = load_job(conn, job.id) or job
    ranged = " modified in the chosen dates" if job.modified_since or job.modified_until else ""
    notify(
        conn,
        severity="info",
        kind="quick_sync_done",
        title=f"Quick sync done: {job.entity}",
        message=(
            f"{', '.join(job.attributes)} now hold Dynamics' values for every {job.entity}"
            f"{ranged} ({current.records_filled} of {current.records_done} records read were "
            "filled; the others were linked to no marketing record or had a newer change "
            "already synced), and sync as selected from now on."
        ),
        dedupe_key=f"quick_sync_done:{job.id}",
    )


def fail_job(conn: Connection, job: QuickSyncJob, message: str) -> None:
    """Stop ``job`` for good with ``message`` (its columns keep syncing changes) and say so."""
    stamp = now_utc()
    conn.execute(
        update(quick_sync_jobs)
        .where(quick_sync_jobs.c.id == job.id, quick_sync_jobs.c.state.in_(ACTIVE_STATES))
        .values(state=FAILED, error=message, finished_at=stamp, updated_at=stamp)
    )
    conn.execute(
        update(field_selection)
        .where(
            field_selection.c.entity == job.entity,
            field_selection.c.attribute.in_(list(job.attributes)),
            field_selection.c.status == "quick_sync",
        )
        .values(status="selected", updated_at=stamp)
    )
    notify(
        conn,
        severity="warning",
        kind="quick_sync_failed",
        title=f"Quick sync failed: {job.entity}",
        message=(
            f"Filling {', '.join(job.attributes)} of {job.entity} stopped after "
            f"{job.records_done} records: {message}. Changes made in Dynamics from now on "
            "still sync; deselect and reselect the fields to fill them again."
        ),
        dedupe_key=f"quick_sync_failed:{job.id}",
    )
