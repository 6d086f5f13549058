"""Applying one page of a custom entity's Dynamics changes, with its link, in one transaction.

Records go one way into ``custom_object_rows`` keyed by (entity, Dynamics id): the selected
values as JSON (lookups as the referenced id), linked to their person or company through the
entity's path, with the id of their parent row (what the path's first lookup holds) kept beside
them so a parent that moves re-links them (:mod:`crmsync.sync.custom_parents`, B45). A deleted
record is flagged, never removed (B29); a full reconciliation flags the records Dynamics no
longer has. The entity's change-tracking link is stored in the
same transaction as the page, so a crash repeats at most one page (B16, B17).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, and_, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from crmsync.dynamics.types import CrmChange, CrmDelete, CrmValue, LookupValue
from crmsync.marketing.campaigns.custom_triggers import record_custom_object_added
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import crm_links, custom_object_rows, now_utc
from crmsync.sync.apply import RecordCounts
from crmsync.sync.cursors import INITIAL_PHASE, set_cursor
from crmsync.sync.custom_entities import CustomEntity, cursor_key

_CHUNK = 500
_LOCAL_KIND = {"lead": "person", "contact": "person", "account": "company"}


def json_value(value: CrmValue) -> Any:
    """A Dynamics value as stored in JSON: lookups as their id, dates as ISO text."""
    if isinstance(value, LookupValue):
        return value.id
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def root_ids(entity: CustomEntity, items: Sequence[CrmChange | CrmDelete]) -> dict[str, str]:
    """Per record of the page, the id its first lookup holds (the parent row)."""
    attribute = entity.path.hops[0].attribute
    found: dict[str, str] = {}
    for item in items:
        if isinstance(item, CrmChange):
            value = json_value(item.record.values.get(attribute))
            if value:
                found[item.record.id] = str(value).lower()
    return found


def apply_custom_page(
    engine: Engine,
    entity: CustomEntity,
    items: Sequence[CrmChange | CrmDelete],
    parents: Mapping[str, str | None],
    *,
    link: str | None = None,
    next_page: str | None = None,
    missing_from: set[str] | None = None,
) -> tuple[RecordCounts, list[int]]:
    """Store one page and its link; returns the counts and the persons newly linked to a record
    of the entity (what "<entity> is added" fires for).

    ``parents``: for a two-level path, the root id (lead/contact/account) of each intermediate
    row the page's records point at (read beforehand by the caller); unused for one level.
    ``link`` is the delta link of the last page, ``next_page`` an initial read's next link.
    """
    counts = RecordCounts()
    added: list[int] = []
    with engine.begin() as conn:
        take_write_lock(conn)
        if missing_from is not None:
            gone = [
                str(crm_id)
                for crm_id in conn.execute(
                    select(custom_object_rows.c.crm_id).where(
                        custom_object_rows.c.entity == entity.name,
                        custom_object_rows.c.crm_is_deleted.is_(False),
                    )
                ).scalars()
                if crm_id not in missing_from
            ]
            items = [*items, *(CrmDelete(entity.name, crm_id) for crm_id in gone)]
        changes = {i.record.id: i for i in items if isinstance(i, CrmChange)}
        deletes = [i.id for i in items if isinstance(i, CrmDelete) and i.id not in changes]
        existing = _existing(conn, entity.name, [*changes, *deletes])
        parent_of = root_ids(entity, list(changes.values()))
        targets = _targets(conn, entity, parent_of, parents)
        stamp = now_utc()
        column = "company_id" if entity.link_kind == "company" else "person_id"
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for crm_id, change in changes.items():
            values = {f: json_value(change.record.values.get(f)) for f in entity.fields}
            local = targets.get(crm_id)
            before = existing.get(crm_id)
            row = {"values": values, "link": local, "parent": parent_of.get(crm_id), "stamp": stamp}
            if before is None:
                inserts.append({**row, "crm_id": crm_id})
                counts.created += 1
            else:
                updates.append({**row, "row_id": before[0]})
                counts.updated += 1
            if (
                column == "person_id"
                and local is not None
                and (before is None or before[1] != local)
            ):
                added.append(local)
        if inserts:
            conn.execute(
                insert(custom_object_rows),
                [
                    {
                        "entity": entity.name,
                        "crm_id": row["crm_id"],
                        column: row["link"],
                        "parent_crm_id": row["parent"],
                        "values": row["values"],
                        "crm_is_deleted": False,
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                    for row in inserts
                ],
            )
        if updates:
            conn.execute(
                update(custom_object_rows)
                .where(custom_object_rows.c.id == bindparam("row_id"))
                .values(
                    {
                        "values": bindparam("values"),
                        column: bindparam("link"),
                        "parent_crm_id": bindparam("parent"),
                        "crm_is_deleted": False,
                        "updated_at": bindparam("stamp"),
                    }
                ),
                updates,
            )
        flagged = [
            {"row_id": existing[i][0]} for i in deletes if i in existing and not existing[i][2]
        ]
        if flagged:
            conn.execute(
                update(custom_object_rows)
                .where(custom_object_rows.c.id == bindparam("row_id"))
                .values(crm_is_deleted=True, updated_at=stamp),
                flagged,
            )
        counts.deleted_flags += len(flagged)
        counts.skipped += len(deletes) - len(flagged)
        if link is not None:
            set_cursor(conn, cursor_key(entity.name), link)
        elif next_page is not None:
            set_cursor(conn, cursor_key(entity.name), next_page, phase=INITIAL_PHASE)
        record_custom_object_added(conn, entity.name, added)
    return counts, added


def _existing(
    conn: Connection, name: str, ids: Sequence[str]
) -> dict[str, tuple[int, int | None, bool]]:
    """(row id, linked person or company, flagged deleted) of the page's known records."""
    found: dict[str, tuple[int, int | None, bool]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = conn.execute(
            select(
                custom_object_rows.c.crm_id,
                custom_object_rows.c.id,
                custom_object_rows.c.person_id,
                custom_object_rows.c.company_id,
                custom_object_rows.c.crm_is_deleted,
            ).where(custom_object_rows.c.entity == name, custom_object_rows.c.crm_id.in_(chunk))
        )
        for crm_id, row_id, person_id, company_id, deleted in rows:
            local = company_id if person_id is None else person_id
            found[str(crm_id)] = (int(row_id), local, bool(deleted))
    return found


def _targets(
    conn: Connection,
    entity: CustomEntity,
    parent_of: Mapping[str, str],
    parents: Mapping[str, str | None],
) -> dict[str, int]:
    """The local person or company each record is linked to, through its path."""
    if entity.path.depth == 1:
        roots = dict(parent_of)
    else:
        roots = {
            crm_id: root
            for crm_id, parent in parent_of.items()
            if (root := parents.get(parent)) is not None
        }
    root = entity.path.root
    wanted = sorted(set(roots.values()))
    local: dict[str, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = conn.execute(
            select(crm_links.c.crm_id, crm_links.c.local_id).where(
                and_(
                    crm_links.c.entity == root,
                    crm_links.c.local_kind == _LOCAL_KIND[root],
                    crm_links.c.crm_id.in_(chunk),
                )
            )
        )
        local.update({str(crm_id).lower(): int(local_id) for crm_id, local_id in rows})
    return {crm_id: local[r] for crm_id, r in roots.items() if r in local}
