"""Reading the enabled custom entities in each sync cycle (B45, R99, R103).

The same change-tracking reads as every other entity: until its delta link is stored an
entity gets its **initial load** (progress per page, resumable after a crash from the stored
next link, an in-app notification when done); then each cycle reads its **changes since**;
a refused delta link, or a changed field selection, reads it in full again and flags the
records Dynamics no longer has (B17, B29). Pages are stored by
:func:`~crmsync.sync.custom_apply.apply_custom_page`, the link in the same transaction.

For a two-level path the parents of a page's records are read from Dynamics (one request per
hundred parents, remembered for the cycle) to find the person or company they belong to; after
the entities, the changes of those parents are read and the records below a parent that moved
are re-linked (:mod:`crmsync.sync.custom_parents`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import Engine, update

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.tracking import same_selection, selection_changed
from crmsync.dynamics.types import ChangePage, CrmChange, CrmDelete, DeltaCursor
from crmsync.errors import ConfigurationError, DeltaTokenExpiredError, RetryLaterError
from crmsync.store.tables import custom_entities, now_utc
from crmsync.sync.cursors import read_cursor
from crmsync.sync.custom_apply import apply_custom_page, json_value, root_ids
from crmsync.sync.custom_entities import CustomEntity, cursor_key, stored_entities
from crmsync.sync.custom_parents import ParentHop, follow_parent_moves, parent_hops
from crmsync.sync.history import notify
from crmsync.sync.reports import EntityReport, Progress

_PARENTS_PER_REQUEST = 100


class CustomEntityReader:
    """Reads every enabled custom entity once per call of :meth:`run`."""

    def __init__(
        self,
        engine: Engine,
        client: DynamicsClient,
        *,
        progress: Callable[[Progress], None] | None = None,
        renew: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._client = client
        self._progress = progress
        self._renew = renew
        self._parents: dict[str, str | None] = {}

    def run(self) -> list[EntityReport]:
        """One read of each enabled custom entity; a transient failure of one is reported on
        it and the others still run."""
        with self._engine.connect() as conn:
            enabled = stored_entities(conn, enabled_only=True)
        reports: dict[str, EntityReport] = {}
        for entity in enabled:
            report = EntityReport(entity.name)
            try:
                self._read_entity(entity, report)
            except RetryLaterError as exc:
                report.error = exc.message
            reports[entity.name] = report
        for hop, below in parent_hops(enabled).items():
            self._follow(hop, below, [reports[e.name] for e in below])
        return list(reports.values())

    def _follow(
        self, hop: ParentHop, entities: Sequence[CustomEntity], reports: Sequence[EntityReport]
    ) -> None:
        """Re-link the records of ``entities`` whose parent row moved (said on their reports)."""
        try:
            moved = follow_parent_moves(self._engine, self._client, hop, entities)
        except (RetryLaterError, ConfigurationError) as exc:
            reason = exc.message
            if isinstance(exc, ConfigurationError):
                reason = f"change tracking is off for {hop.table}"
            for report in reports:
                _add_note(
                    report,
                    f"records whose {hop.table} moved keep their old link until they change "
                    f"({reason})",
                )
            return
        for entity, report in zip(entities, reports, strict=True):
            count = moved.get(entity.name, 0)
            if count:
                report.updated += count
                _add_note(report, f"{count} re-linked: their {hop.table} moved")

    def _read_entity(self, entity: CustomEntity, report: EntityReport) -> None:
        client = self._client
        if client.cached_schema(entity.name) is None:
            client.entity_schema(entity.name)  # lookups are read as _x_value (spec §2a)
        first = client.tracking.first_page_link(entity.name, entity.fields)
        with self._engine.connect() as conn:
            stored = read_cursor(conn, cursor_key(entity.name))
        if stored is None or not stored.initial_done:
            report.mode = "initial"
            pages: Iterable[ChangePage] | None = None
            if stored is not None and same_selection(stored.link, first):
                pages = client.tracking.initial_pages(entity.name, stored.link, resumed=True)
                report.note = "initial load resumed where it stopped"
            total = None
            if pages is None and self._progress is not None:
                total = client.tracking.record_total(entity.name)
            if pages is None:
                pages = client.tracking.initial_pages(entity.name, first, resumed=False)
            try:
                self._read(entity, pages, report, resumable=True, total=total)
            except DeltaTokenExpiredError:
                report.note = "the stored page of the initial load was refused; started again"
                pages = client.tracking.initial_pages(entity.name, first, resumed=False)
                self._read(entity, pages, report, resumable=True, total=total)
            self._loaded(entity)
            return
        if not selection_changed(stored.link, first):
            try:
                changes = client.read_changes(DeltaCursor(entity.name, stored.link))
                self._read(entity, changes, report)
                return
            except DeltaTokenExpiredError:
                pass
        else:
            report.note = "the field selection changed: read in full with the new fields"
        report.mode = "reconcile"
        pages = client.start_tracking(entity.entity_set, entity.fields)
        self._read(entity, pages, report, reconcile=True)

    def _read(
        self,
        entity: CustomEntity,
        pages: Iterable[ChangePage],
        report: EntityReport,
        *,
        resumable: bool = False,
        reconcile: bool = False,
        total: int | None = None,
    ) -> None:
        seen: set[str] | None = set() if reconcile else None
        for page in pages:
            if seen is not None:
                seen.update(i.record.id if isinstance(i, CrmChange) else i.id for i in page.items)
            counts, _ = apply_custom_page(
                self._engine,
                entity,
                page.items,
                self._parents_of(entity, page.items),
                link=page.delta_link,
                next_page=page.next_link if resumable else None,
                missing_from=seen if page.last else None,
            )
            report.pages += 1
            report.records += len(page.items)
            report.add(counts)
            if self._renew is not None:
                self._renew()
            if self._progress is not None:
                done = report.records if page.last else total
                self._progress(
                    Progress(
                        entity.name, report.mode, report.records, report.pages, page.last, done
                    )
                )

    def _parents_of(
        self, entity: CustomEntity, items: Sequence[CrmChange | CrmDelete]
    ) -> dict[str, str | None]:
        """For a two-level path: the root id of every parent row the records point at."""
        if entity.path.depth == 1:
            return {}
        hop = entity.path.hops[1]
        wanted = sorted(set(root_ids(entity, items).values()) - set(self._parents))
        info = self._client.entity(hop.entity)
        if wanted and self._client.cached_schema(hop.entity) is None:
            self._client.entity_schema(hop.entity)
        for start in range(0, len(wanted), _PARENTS_PER_REQUEST):
            chunk = wanted[start : start + _PARENTS_PER_REQUEST]
            for parent in chunk:
                self._parents[parent] = None
            condition = " or ".join(f"{info.primary_id} eq {parent}" for parent in chunk)
            for record in self._client.iter_records(
                info.entity_set, [hop.attribute], filter=condition
            ):
                value = json_value(record.values.get(hop.attribute))
                self._parents[record.id.lower()] = str(value).lower() if value else None
        return self._parents

    def _loaded(self, entity: CustomEntity) -> None:
        """The initial load is done: say when, and tell the admins once (B16)."""
        stamp = now_utc()
        with self._engine.begin() as conn:
            conn.execute(
                update(custom_entities)
                .where(custom_entities.c.name == entity.name)
                .values(loaded_at=stamp)
            )
            notify(
                conn,
                severity="info",
                kind="custom_entity_loaded",
                title=f"Custom entity {entity.display_name} loaded",
                message=(
                    f"Every {entity.name} record Dynamics has was read; from now on each cycle "
                    "reads only its changes."
                ),
                dedupe_key=f"custom_entity_loaded:{entity.name}:{entity.created_at.isoformat()}",
            )


def _add_note(report: EntityReport, note: str) -> None:
    report.note = note if not report.note else f"{report.note}; {note}"
