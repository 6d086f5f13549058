"""Following the parent rows of two-level custom entities when they move (B45).

A record of ``new_visit`` reaches its person through its parent: ``new_visit.new_projectid →
new_project.new_contactid → contact``. When a project moves to another contact, its visits do
not change in Dynamics, so their own change tracking says nothing. Each cycle therefore also
reads the changes of every parent lookup on an enabled two-level path (``new_project`` with
only ``new_contactid``, one change-tracking read shared by the entities using that hop) and
re-links the records below each changed parent in the marketing database: one set-based
update per entity and chunk of parents, only where the link differs, firing "<entity> is
added" for the persons that gain records.

The first read of a hop is a full read (every parent row, then its delta link), so records
loaded before tracking began are put right too. A refused delta link reads in full again.
A parent table without change tracking cannot be followed: its records keep the link they
were read with until they change themselves, and the report of the entity says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, and_, bindparam, func, select, update
from sqlalchemy.engine import Connection

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import ChangePage, CrmChange, DeltaCursor
from crmsync.errors import DeltaTokenExpiredError
from crmsync.marketing.campaigns.custom_triggers import record_custom_object_added
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import crm_links, custom_object_rows, now_utc
from crmsync.sync.cursors import read_cursor, set_cursor
from crmsync.sync.custom_apply import json_value
from crmsync.sync.custom_entities import CustomEntity
from crmsync.sync.custom_paths import Hop

PARENT_CURSOR_PREFIX = "custom-parent:"
"""Parent lookups keep their change-tracking link under ``custom-parent:<table>.<column>``."""

_CHUNK = 500
_LOCAL_KIND = {"lead": "person", "contact": "person", "account": "company"}


@dataclass(frozen=True, slots=True)
class ParentHop:
    """A lookup of an intermediate table that enabled two-level entities reach their root by."""

    table: str
    attribute: str
    root: str

    @property
    def cursor_key(self) -> str:
        """Where this hop's change-tracking link is stored."""
        return f"{PARENT_CURSOR_PREFIX}{self.table}.{self.attribute}"


def parent_hops(entities: Iterable[CustomEntity]) -> dict[ParentHop, list[CustomEntity]]:
    """The parent lookups of the two-level entities among ``entities``, each with its entities."""
    found: dict[ParentHop, list[CustomEntity]] = {}
    for entity in entities:
        if entity.path.depth == 2:
            hop: Hop = entity.path.hops[1]
            found.setdefault(ParentHop(hop.entity, hop.attribute, hop.target), []).append(entity)
    return found


def follow_parent_moves(
    engine: Engine, client: DynamicsClient, hop: ParentHop, entities: Sequence[CustomEntity]
) -> dict[str, int]:
    """Read the changes of ``hop``'s parent rows since the stored link (all of them the first
    time) and re-link the records of ``entities`` below those that moved; returns how many
    records of each entity were re-linked. Raises :class:`~crmsync.errors.ConfigurationError`
    when the parent table has no change tracking."""
    if client.cached_schema(hop.table) is None:
        client.entity_schema(hop.table)  # the lookup is read as _x_value (spec §2a)
    with engine.connect() as conn:
        stored = read_cursor(conn, hop.cursor_key)
    if stored is not None and stored.initial_done:
        changes = client.read_changes(DeltaCursor(hop.table, stored.link))
        try:
            return _apply(engine, hop, entities, changes)
        except DeltaTokenExpiredError:
            pass
    return _apply(engine, hop, entities, client.tracking.start(hop.table, [hop.attribute]))


def _apply(
    engine: Engine, hop: ParentHop, entities: Sequence[CustomEntity], pages: Iterable[ChangePage]
) -> dict[str, int]:
    moved = dict.fromkeys((entity.name for entity in entities), 0)
    for page in pages:
        roots = {
            item.record.id.lower(): _lower(json_value(item.record.values.get(hop.attribute)))
            for item in page.items
            if isinstance(item, CrmChange)
        }
        with engine.begin() as conn:
            take_write_lock(conn)
            locals_ = _local_ids(conn, hop.root, [r for r in roots.values() if r is not None])
            targets = {
                parent: locals_.get(root) if root else None for parent, root in roots.items()
            }
            for entity in entities:
                moved[entity.name] += relink(conn, entity, targets)
            if page.delta_link is not None:
                set_cursor(conn, hop.cursor_key, page.delta_link)
    return moved


def _lower(value: object) -> str | None:
    return str(value).lower() if value else None


def _local_ids(conn: Connection, root: str, crm_ids: Sequence[str]) -> dict[str, int]:
    """The local person or company linked to each of ``crm_ids`` (rows of ``root``)."""
    wanted = sorted(set(crm_ids))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            select(crm_links.c.crm_id, crm_links.c.local_id).where(
                and_(
                    crm_links.c.entity == root,
                    crm_links.c.local_kind == _LOCAL_KIND[root],
                    crm_links.c.crm_id.in_(wanted[start : start + _CHUNK]),
                )
            )
        )
        found.update({str(crm_id).lower(): int(local_id) for crm_id, local_id in rows})
    return found


def relink(conn: Connection, entity: CustomEntity, targets: Mapping[str, int | None]) -> int:
    """Link the records of ``entity`` below each parent id of ``targets`` to its person or
    company (``None``: to nobody), in the caller's transaction; records flagged deleted stay
    as they were. Returns how many records moved."""
    column = (
        custom_object_rows.c.company_id
        if entity.link_kind == "company"
        else custom_object_rows.c.person_id
    )
    parents = sorted(targets)
    stale: list[dict[str, object]] = []
    moved = 0
    for start in range(0, len(parents), _CHUNK):
        linked_now = conn.execute(
            select(custom_object_rows.c.parent_crm_id, column, func.count())
            .where(
                custom_object_rows.c.entity == entity.name,
                custom_object_rows.c.parent_crm_id.in_(parents[start : start + _CHUNK]),
                custom_object_rows.c.crm_is_deleted.is_(False),
            )
            .group_by(custom_object_rows.c.parent_crm_id, column)
        ).all()
        wrong = {str(p): n for p, linked, n in linked_now if linked != targets[str(p)]}
        moved += sum(wrong.values())
        stale += [{"parent": p, "target": targets[p]} for p in sorted(wrong)]
    if not stale:
        return 0
    conn.execute(
        update(custom_object_rows)
        .where(
            custom_object_rows.c.entity == entity.name,
            custom_object_rows.c.parent_crm_id == bindparam("parent"),
            custom_object_rows.c.crm_is_deleted.is_(False),
            column.is_distinct_from(bindparam("target")),
        )
        .values({column.name: bindparam("target"), "updated_at": now_utc()}),
        stale,
    )
    if entity.link_kind == "person":
        gained = [target for m in stale if isinstance(target := m["target"], int)]
        record_custom_object_added(conn, entity.name, gained)
    return moved
