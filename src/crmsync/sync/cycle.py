"""One sync cycle: Dynamics → marketing for every enabled entity, then the outbox → Dynamics.

Entities go in dependency order (sales users and teams, accounts, leads, contacts,
opportunities; see :data:`DEFAULT_ENTITIES`). Per entity, until its delta link is stored the
cycle runs the **initial full read** (B16, progress reported per page); with a delta link it
reads the **changes since** (B17). Each page is planned (:func:`~crmsync.sync.plan.plan_page`)
and applied, and the link that follows it is stored **in the same transaction** as the page:
during an initial read the next page's link (so a crashed initial sync resumes after its last
committed page, and starts again if Dynamics refuses that link), on the last page the delta
link. A crash at any point repeats at most one page's work and never skips any. A rejected or
expired delta token starts a **full reconciliation** of that entity: every record is read and
merged, and linked records Dynamics no longer has are flagged deleted in the same transaction
that stores the new cursor, losing nothing.

After the reads, the outbox is pushed (:class:`~crmsync.sync.push.OutboxPusher`), then
Campaign Sync reads the Dynamics campaigns changed since the last cycle, once it is in use
(:func:`~crmsync.sync.microsoft_campaigns.sync_microsoft_campaigns`). While the writes of an
entity wait because the sync user lost a privilege (:mod:`~crmsync.sync.write_waits`), the
cycle reports ``partial``.

At start-up the cycle reads each entity's schema (once per process). A schema read that still
fails after the client's own retries (a long 429 or 5xx burst) is tried again, up to
:data:`SCHEMA_READ_ROUNDS` times, pausing as Dynamics asked. If it still fails, the entities
read before it are synced, it and the entities after it (which may depend on it) wait for the
next cycle with the reason, the push waits too (it needs every mapping to route a change),
and the cycle reports ``partial``: nothing is lost, the outbox and change tracking keep it all.

Around the cycle: what it reports (:mod:`~crmsync.sync.reports`), the mappings and schema
drift (:mod:`~crmsync.sync.schema_drift`), applying one page with its cursor
(:mod:`~crmsync.sync.pages`) and admin re-reads (:mod:`~crmsync.sync.rereads`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.tracking import same_selection, selection_changed, with_selection
from crmsync.dynamics.types import ChangePage, DeltaCursor
from crmsync.errors import (
    CrmsyncError,
    DeltaTokenExpiredError,
    FatalError,
    RetryLaterError,
    SyncInterruptedError,
    UnknownFieldError,
)
from crmsync.store.checkpoints import PagedCheckpoints
from crmsync.store.outbox import outbox_size
from crmsync.store.tables import now_utc
from crmsync.sync.collection import PageCollector
from crmsync.sync.cursors import get_cursor, read_cursor
from crmsync.sync.custom_reader import CustomEntityReader
from crmsync.sync.history import insert_history, notify
from crmsync.sync.mapping import EntityMapping
from crmsync.sync.microsoft_campaigns import sync_microsoft_campaigns
from crmsync.sync.pages import apply_page, item_id
from crmsync.sync.push import OutboxPusher, PushCounts
from crmsync.sync.reports import (
    CycleReport,
    EntityReport,
    Progress,
    PushProgress,
    traffic_between,
)
from crmsync.sync.rereads import read_again
from crmsync.sync.schema_drift import EntityMappings
from crmsync.sync.stored_schemas import StoredSchemas
from crmsync.sync.sync_user import remember_sync_user

log = logging.getLogger(__name__)

SCHEMA_READ_ROUNDS = 3
"""How many times the start-up schema read of one entity is tried (each try retries every
request as the client's retry policy says)."""
SCHEMA_RETRY_PAUSE_SECONDS = 5.0
"""The pause between those tries when Dynamics named none (``Retry-After``)."""
MAX_SCHEMA_RETRY_PAUSE_SECONDS = 60.0

DEFAULT_ENTITIES: tuple[str, ...] = (
    "systemuser",
    "team",
    "account",
    "lead",
    "contact",
    "opportunity",
)
"""Every entity synced by default, in dependency order.

Leads come before contacts: a contact qualified from a lead is planned against the lead's
state as of this cycle, so a lead switched to "do not sync" and qualified between two cycles
gives its contact a new person (R76 F/T) instead of continuing the stale one."""


class SyncCycle:
    """Runs cycles against one database and one Dynamics client.

    Keep one instance for a long-running sync: entity schemas are read from Dynamics once and
    reused, so a cycle with no changes costs one request per entity (B17). ``progress`` is
    called after every applied page (B16). With ``duplicate_detection`` Dynamics runs its
    duplicate detection rules on crmsync's writes, and a duplicate fails that record (B37).
    """

    def __init__(
        self,
        engine: Engine,
        client: DynamicsClient,
        *,
        entities: Sequence[str] = DEFAULT_ENTITIES,
        progress: Callable[[Progress], None] | None = None,
        renew: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        duplicate_detection: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._engine = engine
        self._client = client
        self._entities = tuple(entities)
        self._progress = progress
        self._renew = renew
        self._clock = clock
        self._sleep = sleep
        self._mappings = EntityMappings(client, self._entities)
        self._stored_schemas = StoredSchemas(engine, client, self._entities)
        self._duplicate_detection = duplicate_detection

    def mappings(self) -> dict[str, EntityMapping]:
        """The mapping of every enabled entity: the stored field selection (B9), else the
        default mapping restricted to what the org has. Schemas are read once."""
        return self._mappings.all(self._engine)

    # ---- the cycle --------------------------------------------------------------------------

    def run(self) -> CycleReport:
        """Run one whole cycle; record it in the sync history (B40)."""
        started = self._clock()
        report = CycleReport(started_at=now_utc())
        stats_before = self._client.stats()
        try:
            self._stored_schemas.before_reads()  # schemas Dynamics did not change: kept
            mappings, waiting = self._startup_mappings()
            if not waiting:
                self._stored_schemas.after_reads()
            remember_sync_user(self._engine, self._client)
            if not mappings:
                raise waiting[self._entities[0]]
            read_again(self._engine, self._client, mappings)  # admin retries (B38)
            for entity in self._entities:
                if entity in mappings:
                    report.entities.append(self._sync_entity(entity, mappings))
                else:
                    report.entities.append(_waiting(entity, waiting))
            if not waiting:  # custom entities link to the records read above (B45)
                report.entities.extend(
                    CustomEntityReader(
                        self._engine, self._client, progress=self._progress, renew=self._renew
                    ).run()
                )
            if not waiting:
                report.push = self._push(mappings)
            self._sync_campaigns()
            # an entity whose writes wait for a privilege is a partial cycle (B41, B43)
            if any(e.error for e in report.entities) or report.push.waiting_for:
                report.status = "partial"
        except FatalError as exc:
            report.status = "failed"
            report.error = exc.message
            raise
        except RetryLaterError as exc:
            report.status = "failed"
            report.error = exc.message
        except SyncInterruptedError as exc:
            report.status = "interrupted"
            report.error = exc.message
            raise
        finally:
            report.finished_at = now_utc()
            report.duration_seconds = self._clock() - started
            stats_after = self._client.stats()
            report.api_calls = stats_after.requests - stats_before.requests
            report.traffic = traffic_between(stats_before, stats_after)
            self._record(report)
        return report

    def _startup_mappings(self) -> tuple[dict[str, EntityMapping], dict[str, RetryLaterError]]:
        """The mapping of each entity, in dependency order, each schema read tried up to
        :data:`SCHEMA_READ_ROUNDS` times; from the first entity whose read still fails, the
        rest wait (returned with the error)."""
        mappings: dict[str, EntityMapping] = {}
        for index, entity in enumerate(self._entities):
            try:
                mappings[entity] = self._read_schema(entity)
            except RetryLaterError as exc:
                return mappings, {later: exc for later in self._entities[index:]}
            if self._renew is not None:
                self._renew()
        return mappings, {}

    def _read_schema(self, entity: str) -> EntityMapping:
        for round_number in range(1, SCHEMA_READ_ROUNDS + 1):
            try:
                return self._mappings.one(self._engine, entity)
            except RetryLaterError as exc:
                if round_number == SCHEMA_READ_ROUNDS:
                    raise
                named = exc.retry_after
                pause = named if named is not None else SCHEMA_RETRY_PAUSE_SECONDS
                self._sleep(min(max(pause, 0.0), MAX_SCHEMA_RETRY_PAUSE_SECONDS))
                if self._renew is not None:
                    self._renew()
        raise AssertionError("unreachable")  # pragma: no cover

    def _push(self, mappings: Mapping[str, EntityMapping]) -> PushCounts:
        """Send the outbox (B18), reporting progress per round against the queue's size."""
        tracker = None
        if self._progress is not None:
            with self._engine.connect() as conn:
                tracker = PushProgress(self._progress, outbox_size(conn))
        counts = OutboxPusher(
            self._engine,
            self._client,
            mappings,
            duplicate_detection=self._duplicate_detection,
            renew=self._renew,
            progress=tracker,
        ).push()
        if tracker is not None:
            tracker.finish()
        return counts

    def _sync_campaigns(self) -> None:
        """Campaign Sync (B47), when in use: the Dynamics campaigns changed since the last
        cycle. A failure there is logged and leaves the cycle's outcome alone; the next
        cycle reads the same changes again."""
        try:
            with self._engine.begin() as conn:
                sync_microsoft_campaigns(conn, self._client)
        except CrmsyncError as exc:
            log.warning("Campaign Sync: Dynamics campaigns not read this cycle: %s", exc)

    def _record(self, report: CycleReport) -> None:
        details = report.as_dict()
        with self._engine.begin() as conn:
            details["backlog_after"] = outbox_size(conn)  # the overview's backlog chart (B40)
            insert_history(
                conn,
                [
                    {
                        "kind": "cycle",
                        "entity": None,
                        "status": report.status,
                        "started_at": report.started_at,
                        "finished_at": report.finished_at,
                        "api_calls": report.api_calls,
                        "details": details,
                    }
                ],
            )

    def _sync_entity(self, entity: str, mappings: dict[str, EntityMapping]) -> EntityReport:
        report = EntityReport(entity)
        try:
            try:
                self._read_entity(entity, mappings, report)
            except UnknownFieldError:
                # B14: a synced column was deleted in Dynamics. Drop it and read again; the
                # rest of the cycle (the push included) uses the mapping without it.
                dropped = self._mappings.drop_deleted_columns(self._engine, entity, mappings)
                if not dropped:
                    raise
                report.note = (
                    f"{', '.join(dropped)} deleted in Dynamics: no longer synced; "
                    "the entity was read again without it"
                )
                self._read_entity(entity, mappings, report, reselected=True)
        except RetryLaterError as exc:
            report.error = exc.message
        return report

    def _read_entity(
        self,
        entity: str,
        mappings: Mapping[str, EntityMapping],
        report: EntityReport,
        *,
        reselected: bool = False,
    ) -> None:
        """Read ``entity``: its initial read, else its changes since the stored delta link.
        ``reselected``: the mapped columns changed since that link, so the changes are read
        by a full reconciliation instead (a delta link keeps the columns it was made for)."""
        mapping = mappings[entity]
        with self._engine.connect() as conn:
            stored = read_cursor(conn, entity)
        if stored is None or not stored.initial_done:
            report.mode = "initial"
            self._initial_read(mapping, mappings, report, stored.link if stored else None)
            self._initial_done(entity)
            return
        link = stored.link
        current = self._client.tracking.first_page_link(entity, mapping.attributes)
        if not reselected and selection_changed(link, current):
            # B12: fields were selected (or removed) since the delta link was made. The
            # changes since its token are read with the columns selected now; records that
            # do not change are filled by the quick sync job (crmsync.sync.quick_sync).
            # Records are merged as in any read: a newly selected field, absent from the
            # baselines, is filled from Dynamics and never pushed blank.
            link = with_selection(link, current)
            report.note = "the field selection changed: changes are read with the new fields"
        if not reselected:
            try:
                changes = self._client.read_changes(DeltaCursor(entity, link))
                self._read(changes, mapping, mappings, report, reconcile=False)
                return
            except DeltaTokenExpiredError:
                pass  # B17: the token expired or was refused; reconcile the whole entity.
        report.mode = "reconcile"
        changes = self._client.start_tracking(
            self._client.entity_set_of(entity), mapping.attributes
        )
        self._read(changes, mapping, mappings, report, reconcile=True)

    def _initial_read(
        self,
        mapping: EntityMapping,
        mappings: Mapping[str, EntityMapping],
        report: EntityReport,
        resume_link: str | None,
    ) -> None:
        """B16: read every record, storing each page's next link with the page; after a crash
        continue from the stored link, or start again if Dynamics refuses it."""
        entity = mapping.entity
        first = self._client.tracking.first_page_link(entity, mapping.attributes)
        if resume_link is not None and not same_selection(resume_link, first):
            report.note = (
                "the field selection changed since the initial read stopped; "
                "the initial read started again"
            )
        elif resume_link is not None:
            try:
                pages = self._client.tracking.initial_pages(
                    entity, resume_link, resumed=True, wire_dates=mapping.wire_dates
                )
                self._read(pages, mapping, mappings, report, reconcile=False, resumable=True)
                report.note = "initial read resumed where it stopped"
                return
            except DeltaTokenExpiredError as exc:
                report.note = f"{exc.message}; the initial read started again"
        total = None
        if self._progress is not None:
            # A resumed read's total would count records read before the crash, so only a
            # read from the start announces one (B16 progress).
            total = self._client.tracking.record_total(entity)
            self._progress(Progress(entity, report.mode, report.records, 0, False, total))
        pages = self._client.tracking.initial_pages(
            entity, first, resumed=False, wire_dates=mapping.wire_dates
        )
        self._read(pages, mapping, mappings, report, reconcile=False, resumable=True, total=total)

    def _read(
        self,
        pages: Iterable[ChangePage],
        mapping: EntityMapping,
        mappings: Mapping[str, EntityMapping],
        report: EntityReport,
        *,
        reconcile: bool,
        resumable: bool = False,
        total: int | None = None,
    ) -> None:
        seen: set[str] | None = set() if reconcile else None
        # Closed on the way out, however the loop ends (an interruption, an error), so the
        # page being fetched ahead finishes before this returns rather than after the client
        # has been closed.
        with (
            closing_iterable(pages) as pages,
            PageCollector() as collector,
            PagedCheckpoints(self._engine, enabled=resumable or reconcile) as checkpoints,
        ):
            for page in pages:
                if seen is not None:
                    seen.update(item_id(item) for item in page.items)
                link = page.delta_link
                counts = apply_page(
                    self._engine,
                    mapping,
                    page.items,
                    mappings,
                    cursor=DeltaCursor(mapping.entity, link) if link else None,
                    next_page=page.next_link if resumable else None,
                    missing_from=seen if page.last else None,
                    checkpoints=checkpoints,
                )
                checkpoints.page_done()
                report.pages += 1
                report.records += len(page.items)
                report.add(counts)
                collector.page_done()
                if self._renew is not None:
                    self._renew()
                if self._progress is not None:
                    if page.last or (total is not None and report.records > total):
                        total = report.records if page.last else None
                    self._progress(
                        Progress(
                            mapping.entity,
                            report.mode,
                            report.records,
                            report.pages,
                            page.last,
                            total,
                        )
                    )

    def _initial_done(self, entity: str) -> None:
        """B16: once every enabled entity has finished its initial read, say so once."""
        with self._engine.begin() as conn:
            if any(get_cursor(conn, e) is None for e in self._entities):
                return
            notify(
                conn,
                severity="info",
                kind="initial_sync_done",
                title="Initial sync done",
                message=(
                    "Every enabled Dynamics entity has been read in full; from now on each "
                    f"cycle reads only changes (last: {entity})."
                ),
                dedupe_key="initial_sync_done",
            )


def _waiting(entity: str, waiting: Mapping[str, RetryLaterError]) -> EntityReport:
    """The report of an entity left for the next cycle because a schema could not be read."""
    first = next(iter(waiting))
    report = EntityReport(entity)
    if entity == first:
        report.error = f"its schema could not be read from Dynamics: {waiting[entity].message}"
    else:
        report.error = f"waits for the schema of {first}, which could not be read"
    report.note = "retried next cycle; the changes to Dynamics wait in the outbox"
    return report


_Item = TypeVar("_Item")


@contextmanager
def closing_iterable(items: Iterable[_Item]) -> Iterator[Iterable[_Item]]:
    """Yield ``items``; close it afterwards when it is a generator (or anything closable)."""
    try:
        yield items
    finally:
        close = getattr(items, "close", None)
        if callable(close):
            close()
