"""The quick sync: a job of its own that fills newly selected columns from Dynamics (B12).

When the admin selects columns of a table after its initial sync, a job is queued
(:mod:`crmsync.sync.quick_sync_jobs`). :class:`QuickSync` works through it page by page with
a keyset read (``$filter=<id> gt <position>``, ``$orderby=<id>``, ``$top``), selecting only
the job's columns (each row comes with its ETag, the row version). Each page is written in
short transactions of :data:`WRITE_BATCH` records, each with the job's new position, so a
crash repeats at most one of them and the regular sync beside it never waits long. A write
is one set-based statement per table: the marketing rows get only the job's fields, the
baselines get those fields set in place (neither read nor rewritten whole).

Only the job's columns are written, nulls included (R28). The regular sync keeps running
meanwhile and already reads the new columns for records that change; a backfill value never
wins over one the regular sync applied: a record whose stored ETag (the version the regular
sync last applied) is newer than the page's is left alone. A record the backfill fills gets
the values into its baseline too, so the next cycle sees no change. Records linked to no
marketing record (or leads continued as contacts) are counted as read but not filled.

The quick sync steps aside for the regular cycle (:mod:`crmsync.sync.cycle_yield`): before
each page read and each write transaction it waits while a cycle holds the lease, for a
bounded time, so a cycle beside it runs nearly as fast as alone.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import CrmRecord, EntitySchema
from crmsync.errors import InputError, RecordError, ValidationFailedError
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import persons
from crmsync.sync.apply import write_local_values
from crmsync.sync.cycle_yield import MAX_WAIT_SECONDS, CycleYield
from crmsync.sync.links import LOCAL_TABLES, links_with_baseline, patch_baselines
from crmsync.sync.mapping import ColumnChoice, EntityMapping, mapping_for_selection
from crmsync.sync.plan import CRM_TYPES, local_kind_for
from crmsync.sync.quick_sync_jobs import (
    QUEUED,
    QuickSyncJob,
    advance,
    fail_job,
    finish_job,
    load_job,
    load_jobs,
    start_job,
)
from crmsync.sync.schema_drift import selections

DEFAULT_PAGE_SIZE = 5000
"""Records per keyset page (Dataverse's largest page)."""
WRITE_BATCH = 1000
"""Records written per transaction: a page is written in a few short transactions, each with
the job's position, so the write lock (SQLite) or the rows' locks are never held for long."""
JOB_FAILURES = (InputError, RecordError)
"""Errors that fail one job for good (a column Dynamics no longer has, values that do not
convert, a read Dynamics refuses as malformed); throttling and outages only postpone it."""
_VERSION = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class BackfillPage:
    """One page read for ``job``: its records (ascending ids) and whether it is the last."""

    job: QuickSyncJob
    records: tuple[CrmRecord, ...]
    last: bool


def row_version(etag: str | None) -> int | None:
    """The row version in a Dataverse ETag (``W/"12345"``), or ``None``."""
    found = _VERSION.search(etag or "")
    return int(found.group()) if found else None


def modified_filter(since: datetime | None, until: datetime | None) -> str | None:
    """The ``$filter`` condition of a date range on ``modifiedon`` (either end optional)."""

    def literal(value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    parts = []
    if since is not None:
        parts.append(f"modifiedon ge {literal(since)}")
    if until is not None:
        parts.append(f"modifiedon le {literal(until)}")
    return " and ".join(parts) or None


class QuickSync:
    """Works through the queued quick sync jobs of one database against one Dynamics org.

    :meth:`step` does one page of the oldest active job; :meth:`run` steps until no job is
    left, a time budget is spent or ``stop`` is set. :meth:`read_page` and :meth:`write_page`
    are the two halves of a step. Each page read and write transaction first waits while a
    sync cycle runs, at most ``cycle_wait_seconds`` in a row (0 turns the waiting off).
    """

    def __init__(
        self,
        engine: Engine,
        client: DynamicsClient,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        clock: Callable[[], float] = time.monotonic,
        cycle_wait_seconds: float = MAX_WAIT_SECONDS,
    ) -> None:
        self._engine = engine
        self._client = client
        self._page_size = page_size
        self._clock = clock
        self.cycle_yield = CycleYield(engine, max_wait_seconds=cycle_wait_seconds)
        self._stop: threading.Event | None = None

    def next_job(self) -> QuickSyncJob | None:
        """The oldest queued or running job, if any."""
        with self._engine.connect() as conn:
            jobs = load_jobs(conn, active_only=True, limit=1)
        return jobs[0] if jobs else None

    def read_page(self, job: QuickSyncJob) -> BackfillPage:
        """Read the page after ``job``'s position (starting the job first if queued)."""
        if job.state == QUEUED:
            ranged = job.modified_since is not None or job.modified_until is not None
            total = None if ranged else self._client.tracking.record_total(job.entity)
            with self._engine.begin() as conn:
                start_job(conn, job, total)
                job = load_job(conn, job.id) or job
        self.cycle_yield.wait(self._stop)
        records = self._client.read_after(
            job.entity,
            job.attributes,
            after=job.position,
            filter=modified_filter(job.modified_since, job.modified_until),
            page_size=self._page_size,
        )
        return BackfillPage(job, tuple(records), len(records) < self._page_size)

    def write_page(self, page: BackfillPage) -> bool:
        """Write ``page``'s values in transactions of at most :data:`WRITE_BATCH` records, each
        with the job's new position, and finish the job after its last page; so a writer
        beside it (the regular cycle) waits for at most one short transaction. ``False`` when
        the job moved on meanwhile (nothing more written)."""
        job = page.job
        records = page.records
        for start in range(0, max(len(records), 1), WRITE_BATCH):
            part = records[start : start + WRITE_BATCH]
            self.cycle_yield.wait(self._stop)
            with self._engine.begin() as conn:
                take_write_lock(conn)
                if part:
                    filled = self._fill(conn, job, part)
                    if not advance(conn, job, part[-1].id, read=len(part), filled=filled):
                        conn.rollback()
                        return False
                    job = load_job(conn, job.id) or job
                if page.last and start + WRITE_BATCH >= len(records):
                    finish_job(conn, job)
        return True

    def step(self) -> QuickSyncJob | None:
        """One page of the oldest active job; the job as it stands after, or ``None`` when
        there was nothing to do. A column Dynamics no longer has, or values that no longer
        convert, fail the job (with a notification) instead of stopping the sync."""
        job = self.next_job()
        if job is None:
            return None
        page = self._read_or_fail(job)
        if page is not None:
            self._write_or_fail(page)
        with self._engine.connect() as conn:
            return load_job(conn, job.id)

    def run(
        self, *, budget_seconds: float | None = None, stop: threading.Event | None = None
    ) -> int:
        """Step until no job is left, ``budget_seconds`` are spent (at least one page is
        done) or ``stop`` is set; returns the pages done. The next page of a job is read
        while this one is written."""
        deadline = None if budget_seconds is None else self._clock() + budget_seconds
        pages = 0
        self._stop = stop
        with ThreadPoolExecutor(1, thread_name_prefix="crmsync-quick-sync") as pool:
            ahead: Future[BackfillPage | None] | None = None
            try:
                while stop is None or not stop.is_set():
                    if ahead is not None:
                        page, ahead = ahead.result(), None
                    else:
                        job = self.next_job()
                        if job is None:
                            break
                        page = self._read_or_fail(job)
                    if page is None:
                        continue  # that job failed; on to the next one
                    if page.records and not page.last:
                        following = replace(page.job, position=page.records[-1].id)
                        ahead = pool.submit(self._read_or_fail, following)
                    if not self._write_or_fail(page):
                        _drop(ahead)
                        ahead = None
                    pages += 1
                    if deadline is not None and self._clock() >= deadline:
                        break
            finally:
                _drop(ahead)
                self._stop = None
        return pages

    def _read_or_fail(self, job: QuickSyncJob) -> BackfillPage | None:
        try:
            return self.read_page(job)
        except JOB_FAILURES as exc:
            self._fail(job, exc.message)
            return None

    def _write_or_fail(self, page: BackfillPage) -> bool:
        try:
            return self.write_page(page)
        except JOB_FAILURES as exc:
            self._fail(page.job, exc.message)
            return False

    def _fail(self, job: QuickSyncJob, message: str) -> None:
        with self._engine.begin() as conn:
            fail_job(conn, load_job(conn, job.id) or job, message)

    # ---- writing one page -------------------------------------------------------------------

    def _mapping(self, conn: Connection, job: QuickSyncJob) -> EntityMapping:
        """The mapping of the job's columns that are still selected."""
        schema: EntitySchema = self._client.cached_schema(job.entity) or self._client.entity_schema(
            job.entity
        )
        selected = {c.attribute: c for c in selections(conn, job.entity).get(job.entity, ())}
        choices: list[ColumnChoice] = [selected[a] for a in job.attributes if a in selected]
        return mapping_for_selection(schema, choices)

    def _fill(self, conn: Connection, job: QuickSyncJob, records: Sequence[CrmRecord]) -> int:
        """Write the job's columns of ``records`` where no newer change was synced; returns
        how many records were filled."""
        mapping = self._mapping(conn, job)
        if not mapping.fields:
            return 0
        kind = local_kind_for(job.entity)
        if kind not in LOCAL_TABLES:
            raise ValidationFailedError(
                f"{job.entity} records are not kept in a marketing table a quick sync can fill",
                entity=job.entity,
            )
        ids = [record.id for record in records]
        if conn.dialect.name == "postgresql":
            # lock the marketing rows as the regular sync does before reading links and
            # versions, so a live change it is applying right now is seen before deciding
            table = LOCAL_TABLES[kind]
            before = links_with_baseline(conn, job.entity, ids).values()
            local_ids = sorted({link.local_id for link, _ in before})
            if local_ids:
                conn.execute(select(table.c.id).where(table.c.id.in_(local_ids)).with_for_update())
        linked = links_with_baseline(conn, job.entity, ids)
        continued = _continued_as_contacts(
            conn, job.entity, sorted({link.local_id for link, _ in linked.values()})
        )
        values: dict[int, dict[str, object]] = {}
        patches: dict[str, dict[str, object]] = {}
        for record in records:
            found = linked.get(record.id)
            if found is None:
                continue
            link, has_baseline = found
            if link.local_kind != kind or link.local_id in continued:
                continue
            if not has_baseline:  # never agreed with Dynamics (its create is still queued)
                continue
            synced, read = row_version(link.etag), row_version(record.etag)
            if synced is not None and read is not None and synced > read:
                continue  # the regular sync applied a newer change of this record
            converted = mapping.to_marketing(record.values)
            values[link.local_id] = converted
            patches[record.id] = converted
        if values:
            write_local_values(conn, kind, values)
            patch_baselines(conn, job.entity, patches)
        return len(values)


def _drop(ahead: Future[BackfillPage | None] | None) -> None:
    """Wait for a page read ahead that will not be written (its errors do not matter)."""
    if ahead is not None:
        ahead.cancel()
        with contextlib.suppress(Exception):
            ahead.result()


def _continued_as_contacts(conn: Connection, entity: str, local_ids: Sequence[int]) -> set[int]:
    """The persons among ``local_ids`` that continue as contacts (their lead no longer syncs
    into them, B30); empty for other entities."""
    if entity != "lead" or not local_ids:
        return set()
    found: set[int] = set()
    for start in range(0, len(local_ids), 1000):
        part = local_ids[start : start + 1000]
        query = select(persons.c.id).where(
            persons.c.id.in_(part), persons.c.crmType == CRM_TYPES["contact"]
        )
        found.update(int(i) for (i,) in conn.execute(query))
    return found
