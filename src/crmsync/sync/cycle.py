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

After the reads, the outbox is pushed (:class:`~crmsync.sync.outbox.OutboxPusher`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from crmsync.dynamics.budget import ClientStats
from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.tracking import same_selection, selection_changed
from crmsync.dynamics.types import ChangePage, CrmChange, CrmDelete, DeltaCursor
from crmsync.errors import (
    DeltaTokenExpiredError,
    FatalError,
    RecordNotFoundError,
    RetryLaterError,
    UnknownFieldError,
)
from crmsync.store.tables import crm_links, field_selection
from crmsync.sync.apply import ApplyCounts, apply_plan
from crmsync.sync.collection import PageCollector
from crmsync.sync.mapping import (
    EntityMapping,
    default_mapping,
    mapping_for_selection,
    rest_name_for,
)
from crmsync.sync.outbox import OutboxPusher, PushCounts
from crmsync.sync.plan import (
    customer_contact_ids,
    local_kind_for,
    originating_lead_ids,
    plan_page,
)
from crmsync.sync.state import (
    INITIAL_PHASE,
    clear_rereads,
    company_of_contacts,
    get_cursor,
    insert_history,
    link_opportunity_companies,
    link_states,
    lock_for_write,
    notify,
    now_utc,
    outbox_size,
    pending_rereads,
    read_cursor,
    set_cursor,
)

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

SELECTED_STATUSES = ("selected", "quick_sync")


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
class EntityReport:
    """What the cycle did for one entity."""

    entity: str
    mode: str = "delta"
    pages: int = 0
    records: int = 0
    created: int = 0
    updated: int = 0
    deleted_flags: int = 0
    skipped: int = 0
    failed: int = 0
    collisions: int = 0
    error: str | None = None
    note: str | None = None

    def add(self, counts: ApplyCounts) -> None:
        """Add one applied page's counts."""
        self.created += counts.created
        self.updated += counts.updated
        self.deleted_flags += counts.deleted_flags
        self.skipped += counts.skipped
        self.failed += counts.failed
        self.collisions += counts.collisions


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
            "entities": [asdict(e) for e in self.entities],
            "push": asdict(self.push),
        }


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
    ) -> None:
        self._engine = engine
        self._client = client
        self._entities = tuple(entities)
        self._progress = progress
        self._renew = renew
        self._clock = clock
        # per entity: the selected columns a mapping was built from, and the mapping
        self._mappings: dict[str, tuple[tuple[str, ...], EntityMapping]] = {}
        self._duplicate_detection = duplicate_detection

    # ---- mappings ---------------------------------------------------------------------------

    def mappings(self) -> dict[str, EntityMapping]:
        """The mapping of every enabled entity: the stored field selection (B9), else the
        default mapping restricted to what the org has. Schemas are read once."""
        with self._engine.begin() as conn:
            selected = _selections(conn)
            return {
                entity: self._mapping_of(conn, entity, selected.get(entity, ()))
                for entity in self._entities
            }

    def _mapping_of(
        self, conn: Connection, entity: str, wanted: tuple[str, ...], *, fresh: bool = False
    ) -> EntityMapping:
        """One entity's mapping for the ``wanted`` columns (none: the default mapping), reused
        while that selection holds unless ``fresh``. Selected columns the schema lacks are
        announced (B14)."""
        cached = self._mappings.get(entity)
        if cached is not None and cached[0] == wanted and not fresh:
            return cached[1]
        schema = self._client.cached_schema(entity) or self._client.entity_schema(entity)
        mapping = mapping_for_selection(schema, wanted) if wanted else default_mapping(schema)
        if mapping.missing:  # selected columns Dynamics no longer has (B14)
            known = {m.attribute: m.field for m in cached[1].fields} if cached else {}
            names = {a: known.get(a) or rest_name_for(a) for a in mapping.missing}
            _announce_missing(conn, entity, names)
            wanted = tuple(a for a in wanted if a not in mapping.missing)  # now marked missing
        self._mappings[entity] = (wanted, mapping)
        return mapping

    # ---- the cycle --------------------------------------------------------------------------

    def run(self) -> CycleReport:
        """Run one whole cycle; record it in the sync history (B40)."""
        started = self._clock()
        report = CycleReport(started_at=now_utc())
        stats_before = self._client.stats()
        try:
            mappings = self.mappings()
            self._reread_requested(mappings)
            for entity in self._entities:
                report.entities.append(self._sync_entity(entity, mappings))
            report.push = self._push(mappings)
            if any(e.error for e in report.entities):
                report.status = "partial"
        except FatalError as exc:
            report.status = "failed"
            report.error = exc.message
            raise
        except RetryLaterError as exc:
            report.status = "failed"
            report.error = exc.message
        finally:
            report.finished_at = now_utc()
            report.duration_seconds = self._clock() - started
            stats_after = self._client.stats()
            report.api_calls = stats_after.requests - stats_before.requests
            report.traffic = traffic_between(stats_before, stats_after)
            self._record(report)
        return report

    def _push(self, mappings: Mapping[str, EntityMapping]) -> PushCounts:
        """Send the outbox (B18), reporting progress per round against the queue's size."""
        tracker = None
        if self._progress is not None:
            with self._engine.connect() as conn:
                tracker = _PushProgress(self._progress, outbox_size(conn))
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

    def _record(self, report: CycleReport) -> None:
        details = report.as_dict()
        with self._engine.begin() as conn:
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
                dropped = self._drop_deleted_columns(entity, mappings)
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
        if not reselected and selection_changed(
            stored.link, self._client.tracking.first_page_link(entity, mapping.attributes)
        ):
            # B12: fields were selected (or removed) since the delta link was made; it keeps
            # its columns, so the entity is read in full with the new ones (a quick sync).
            # Records are merged as in any read: a newly selected field, absent from the
            # baselines, is filled from Dynamics and never pushed blank.
            report.note = "the field selection changed: read in full with the new fields"
            reselected = True
        if not reselected:
            try:
                changes = self._client.read_changes(DeltaCursor(entity, stored.link))
                self._read(changes, mapping, mappings, report, reconcile=False)
                return
            except DeltaTokenExpiredError:
                pass  # B17: the token expired or was refused; reconcile the whole entity.
        report.mode = "reconcile"
        changes = self._client.start_tracking(
            self._client.entity_set_of(entity), mapping.attributes
        )
        self._read(changes, mapping, mappings, report, reconcile=True)
        if reselected:
            self._quick_sync_done(entity)

    def _quick_sync_done(self, entity: str) -> None:
        """B12/B41: the columns selected after go-live were filled by this full read; they
        are now ordinary selected columns, and the admins are told."""
        stamp = now_utc()
        with self._engine.begin() as conn:
            filled = [
                str(attribute)
                for (attribute,) in conn.execute(
                    select(field_selection.c.attribute).where(
                        field_selection.c.entity == entity,
                        field_selection.c.status == "quick_sync",
                    )
                )
            ]
            if not filled:
                return
            conn.execute(
                field_selection.update()
                .where(field_selection.c.entity == entity, field_selection.c.status == "quick_sync")
                .values(status="selected", updated_at=stamp)
            )
            notify(
                conn,
                severity="info",
                kind="quick_sync_done",
                title=f"Quick sync done: {entity}",
                message=(
                    f"{', '.join(filled)} now hold Dynamics' values for every {entity}, and "
                    "sync both ways from now on where the field allows it."
                ),
                dedupe_key=f"quick_sync_done:{entity}:{stamp.isoformat()}",
            )

    def _drop_deleted_columns(self, entity: str, mappings: dict[str, EntityMapping]) -> list[str]:
        """B14: read ``entity``'s schema again; columns the mapping reads that Dynamics no
        longer has are left out of the mapping (in ``mappings`` too) and announced (see
        :func:`_announce_missing`). Returns them."""
        before = mappings[entity]
        self._client.entity_schema(entity)  # fresh, replacing the cached schema
        with self._engine.begin() as conn:
            wanted = _selections(conn, entity).get(entity, ())
            after = self._mapping_of(conn, entity, wanted, fresh=True)
            dropped = [a for a in before.field_attributes if a not in after.field_attributes]
            # also a default mapping's columns, which have no selection row to mark
            names = {m.attribute: m.field for m in before.fields if m.attribute in dropped}
            _announce_missing(conn, entity, names)
        if dropped:
            mappings[entity] = after
        return dropped

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
                pages = self._client.tracking.initial_pages(entity, resume_link, resumed=True)
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
        pages = self._client.tracking.initial_pages(entity, first, resumed=False)
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
        with PageCollector() as collector:
            for page in pages:
                if seen is not None:
                    seen.update(_item_id(item) for item in page.items)
                link = page.delta_link
                counts = self.apply_page(
                    mapping,
                    page.items,
                    mappings,
                    cursor=DeltaCursor(mapping.entity, link) if link else None,
                    next_page=page.next_link if resumable else None,
                    missing_from=seen if page.last else None,
                )
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

    def apply_page(
        self,
        mapping: EntityMapping,
        items: Sequence[CrmChange | CrmDelete],
        mappings: Mapping[str, EntityMapping],
        *,
        cursor: DeltaCursor | None = None,
        next_page: str | None = None,
        missing_from: set[str] | None = None,
    ) -> ApplyCounts:
        """Plan and apply one page, and store ``cursor`` with it, in one transaction.

        ``next_page`` (an initial read's next link) is stored instead when there is no
        ``cursor`` yet, so a crashed initial read resumes after this page (B16).

        With ``missing_from`` (the ids a full reconciliation saw), linked records not among
        them are flagged deleted in the same transaction (B17, B26, B29).
        """
        entity = mapping.entity
        kind = local_kind_for(entity)
        with self._engine.begin() as conn:
            lock_for_write(conn)
            if missing_from is not None:
                gone = [
                    crm_id
                    for (crm_id,) in conn.execute(
                        select(crm_links.c.crm_id).where(crm_links.c.entity == entity)
                    )
                    if crm_id not in missing_from
                ]
                items = [*items, *(CrmDelete(entity, crm_id) for crm_id in gone)]
            ids = [_item_id(item) for item in items]
            states, links = link_states(conn, mapping, ids, kind)
            originating = None
            if entity == "contact" and "lead" in mappings:
                lead_ids = originating_lead_ids(items)
                if lead_ids:
                    originating, _ = link_states(conn, mapping, lead_ids, "person", entity="lead")
            companies = None
            if entity == "opportunity":
                contact_ids = customer_contact_ids(items)
                if contact_ids:
                    companies = company_of_contacts(conn, contact_ids)
            plan = plan_page(
                mapping,
                items,
                states,
                originating_leads=originating,
                contact_companies=companies,
            )
            counts = apply_plan(conn, plan, mapping, kind, links, states=states)
            if entity == "opportunity":
                link_opportunity_companies(
                    conn, [item.record.id for item in items if isinstance(item, CrmChange)]
                )
            if cursor is not None:
                set_cursor(conn, entity, cursor.delta_link)
            elif next_page is not None:
                set_cursor(conn, entity, next_page, phase=INITIAL_PHASE)
        return counts

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

    def _reread_requested(self, mappings: Mapping[str, EntityMapping]) -> None:
        """Admin retries of records that failed on their way in (B38): read them again. A
        request stays queued until its record was read (or is gone)."""
        with self._engine.connect() as conn:
            wanted = pending_rereads(conn)
        done: list[tuple[str, str]] = []
        for entity, crm_id in wanted:
            mapping = mappings.get(entity)
            if mapping is None:
                done.append((entity, crm_id))
                continue
            try:
                record = self._client.get(
                    self._client.entity_set_of(entity), crm_id, mapping.attributes
                )
            except RecordNotFoundError:
                done.append((entity, crm_id))
                continue
            except RetryLaterError:
                continue
            self.apply_page(mapping, [CrmChange(record)], mappings)
            done.append((entity, crm_id))
        if done:
            with self._engine.begin() as conn:
                clear_rereads(conn, done)


class _PushProgress:
    """Turns the pusher's per-round counts into :class:`Progress` events (B40)."""

    def __init__(self, hook: Callable[[Progress], None], total: int) -> None:
        self._hook = hook
        self._total = total
        self._handled = 0
        self._rounds = 0

    def __call__(self, handled: int) -> None:
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


def _item_id(item: CrmChange | CrmDelete) -> str:
    return item.record.id if isinstance(item, CrmChange) else item.id


def _selections(conn: Connection, entity: str | None = None) -> dict[str, tuple[str, ...]]:
    """The stored field selection in effect (selected or waiting for a quick sync), per entity
    in selection order: one query for every entity, or for ``entity``."""
    query = select(field_selection.c.entity, field_selection.c.attribute).where(
        field_selection.c.status.in_(SELECTED_STATUSES)
    )
    if entity is not None:
        query = query.where(field_selection.c.entity == entity)
    selected: dict[str, list[str]] = {}
    for name, attribute in conn.execute(
        query.order_by(field_selection.c.entity, field_selection.c.selected_at)
    ):
        selected.setdefault(str(name), []).append(str(attribute))
    return {name: tuple(columns) for name, columns in selected.items()}


def _announce_missing(conn: Connection, entity: str, fields: Mapping[str, str]) -> None:
    """B14: mark selected columns Dynamics no longer has as *missing* in the field selection
    (no longer read or written) and raise one critical notification per column; ``fields``
    maps each column to its marketing field, whose values are kept."""
    if not fields:
        return
    conn.execute(
        field_selection.update()
        .where(
            field_selection.c.entity == entity,
            field_selection.c.attribute.in_(list(fields)),
            field_selection.c.status != "missing",
        )
        .values(status="missing", updated_at=now_utc())
    )
    for attribute, name in fields.items():
        notify(
            conn,
            severity="critical",
            kind="field_missing",
            title=f"Field {entity}.{attribute} was deleted in Dynamics",
            message=(
                f"crmsync stopped syncing {entity}.{attribute} (marketing field {name}) and "
                "kept its marketing values; everything else keeps syncing. Save the field "
                "selection to clear this."
            ),
            dedupe_key=f"field_missing:{entity}:{attribute}",
        )
