"""Every read and write of sync state in the store, in bulk, in the caller's transaction.

Links (``crm_links``), baselines (``sync_baselines``), change-tracking cursors
(``delta_cursors``), the outbox (``sync_outbox``), sync errors, history and notifications. Each
function costs one statement (or one ``executemany``) whatever the number of records, so the
cycle's cost grows with the changes, not with the database (DESIGN principle 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Table, and_, bindparam, delete, false, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from crmsync.store.inserts import insert_many
from crmsync.store.sync_state import get_setting, set_setting
from crmsync.store.tables import (
    companies,
    crm_links,
    delta_cursors,
    notifications,
    opportunities,
    persons,
    sales_persons,
    sync_baselines,
    sync_errors,
    sync_history,
    sync_lease,
    sync_outbox,
    teams,
)
from crmsync.sync.mapping import EntityMapping
from crmsync.sync.plan import LinkState, LocalRecord

LOCAL_TABLES: Mapping[str, Table] = {
    "person": persons,
    "company": companies,
    "salesperson": sales_persons,
    "team": teams,
    "opportunity": opportunities,
}
"""The marketing table each local kind lives in."""

CHUNK = 2000
"""Ids per ``IN (...)`` list: well inside every backend's bind-parameter limit."""


def now_utc() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def lock_for_write(conn: Connection) -> None:
    """Make the caller's transaction a write transaction now, before it reads.

    On SQLite a transaction otherwise reads first and takes the write lock only at its first
    write, so an API edit committed in between could be overwritten by values planned from
    the older read. A no-op ``UPDATE`` takes the lock up front; other writers then wait (the
    busy timeout) until this page is committed. PostgreSQL locks the rows it reads instead
    (:func:`local_values` reads persons ``FOR UPDATE``).
    """
    if conn.dialect.name == "sqlite":
        conn.execute(update(sync_lease).where(false()).values(holder=sync_lease.c.holder))


@dataclass(frozen=True, slots=True)
class LinkRow:
    """One stored link between a Dynamics record and a local record."""

    entity: str
    crm_id: str
    local_kind: str
    local_id: int
    etag: str | None


# ---- links and baselines ------------------------------------------------------------------


def load_links(conn: Connection, entity: str, crm_ids: Sequence[str]) -> dict[str, LinkRow]:
    """The links of ``entity`` records among ``crm_ids``, by Dynamics id."""
    found: dict[str, LinkRow] = {}
    for part in chunks(list(crm_ids)):
        rows = conn.execute(
            select(
                crm_links.c.crm_id,
                crm_links.c.local_kind,
                crm_links.c.local_id,
                crm_links.c.etag,
            ).where(crm_links.c.entity == entity, crm_links.c.crm_id.in_(part))
        )
        for crm_id, kind, local_id, etag in rows:
            found[crm_id] = LinkRow(entity, crm_id, kind, int(local_id), etag)
    return found


def links_of_local(conn: Connection, local_kind: str, local_ids: Sequence[int]) -> list[LinkRow]:
    """Every link of the given local records (a person may have a lead and a contact)."""
    found: list[LinkRow] = []
    for part in chunks(list(local_ids)):
        rows = conn.execute(
            select(
                crm_links.c.entity,
                crm_links.c.crm_id,
                crm_links.c.local_id,
                crm_links.c.etag,
            ).where(crm_links.c.local_kind == local_kind, crm_links.c.local_id.in_(part))
        )
        for entity, crm_id, local_id, etag in rows:
            found.append(LinkRow(entity, crm_id, local_kind, int(local_id), etag))
    return found


def load_baselines(
    conn: Connection, entity: str, crm_ids: Sequence[str]
) -> dict[str, dict[str, object]]:
    """The baselines of ``entity`` records among ``crm_ids``, by Dynamics id."""
    found: dict[str, dict[str, object]] = {}
    for part in chunks(list(crm_ids)):
        rows = conn.execute(
            select(sync_baselines.c.crm_id, sync_baselines.c["values"]).where(
                sync_baselines.c.entity == entity, sync_baselines.c.crm_id.in_(part)
            )
        )
        for crm_id, values in rows:
            found[crm_id] = dict(values or {})
    return found


def save_baselines(
    conn: Connection, entity: str, baselines: Mapping[str, Mapping[str, object]]
) -> None:
    """Replace the baselines of the given records (delete, then one ``executemany``)."""
    if not baselines:
        return
    ids = list(baselines)
    for part in chunks(ids):
        conn.execute(
            delete(sync_baselines).where(
                sync_baselines.c.entity == entity, sync_baselines.c.crm_id.in_(part)
            )
        )
    stamp = now_utc()
    insert_many(
        conn,
        sync_baselines,
        [
            {"entity": entity, "crm_id": crm_id, "values": dict(values), "updated_at": stamp}
            for crm_id, values in baselines.items()
        ],
    )


def insert_links(conn: Connection, rows: Sequence[LinkRow]) -> None:
    """Insert new links in one ``executemany``."""
    if not rows:
        return
    stamp = now_utc()
    insert_many(
        conn,
        crm_links,
        [
            {
                "entity": row.entity,
                "crm_id": row.crm_id,
                "local_kind": row.local_kind,
                "local_id": row.local_id,
                "etag": row.etag,
                "created_at": stamp,
                "updated_at": stamp,
            }
            for row in rows
        ],
    )


def update_links(conn: Connection, rows: Sequence[LinkRow]) -> None:
    """Point existing links at (possibly new) local records and store their ETags."""
    if not rows:
        return
    stamp = now_utc()
    conn.execute(
        update(crm_links)
        .where(
            crm_links.c.entity == bindparam("_entity"),
            crm_links.c.crm_id == bindparam("_crm_id"),
        )
        .values(local_id=bindparam("local_id"), etag=bindparam("etag"), updated_at=stamp),
        [
            {"_entity": r.entity, "_crm_id": r.crm_id, "local_id": r.local_id, "etag": r.etag}
            for r in rows
        ],
    )


def local_values(
    conn: Connection, kind: str, ids: Sequence[int], fields: Sequence[str]
) -> dict[int, LocalRecord]:
    """The local records ``ids`` of ``kind`` with the mapped ``fields`` (custom ones from the
    ``custom`` JSON column) and, for persons, the CRM type."""
    table = LOCAL_TABLES[kind]
    columns = [table.c.id]
    standard = [name for name in fields if name in table.c]
    columns += [table.c[name] for name in standard]
    custom_fields = [name for name in fields if name not in table.c]
    has_custom = "custom" in table.c and bool(custom_fields)
    if has_custom:
        columns.append(table.c.custom)
    is_person = kind == "person"
    if is_person and "crmType" not in standard:
        columns.append(table.c.crmType)
    found: dict[int, LocalRecord] = {}
    for part in chunks(list(ids)):
        query = select(*columns).where(table.c.id.in_(part))
        if is_person and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        for row in conn.execute(query).mappings():
            values: dict[str, object] = {name: row[table.c[name]] for name in standard}
            if has_custom:
                custom = row["custom"] or {}
                for name in custom_fields:
                    values[name] = custom.get(name)
            crm_type = row[table.c.crmType] if is_person else None
            found[int(row["id"])] = LocalRecord(int(row["id"]), values, crm_type)
    return found


def link_states(
    conn: Connection,
    mapping: EntityMapping,
    crm_ids: Sequence[str],
    local_kind: str,
    *,
    entity: str | None = None,
) -> tuple[dict[str, LinkState], dict[str, LinkRow]]:
    """The :class:`LinkState` of every linked id among ``crm_ids`` (for ``plan_page``), and
    the raw links. A link whose local record is gone gets ``local=None`` (B27). ``entity``
    reads another entity's links with ``mapping``'s fields (a contact's originating leads)."""
    linked_entity = entity or mapping.entity
    links = load_links(conn, linked_entity, crm_ids)
    if not links:
        return {}, {}
    baselines = load_baselines(conn, linked_entity, list(links))
    locals_ = local_values(
        conn, local_kind, sorted({link.local_id for link in links.values()}), mapping.field_names
    )
    states = {
        crm_id: LinkState(locals_.get(link.local_id), baselines.get(crm_id))
        for crm_id, link in links.items()
    }
    return states, links


# ---- cursors --------------------------------------------------------------------------------


DELTA_PHASE = "delta"
"""A stored link that is a finished read's delta link (the next cycle reads changes, B17)."""

INITIAL_PHASE = "initial"
"""A stored link that is the next page of an unfinished initial read (resumed, B16)."""


@dataclass(frozen=True, slots=True)
class StoredCursor:
    """Where the next read of an entity starts: ``link`` and which read it continues."""

    link: str
    phase: str  # DELTA_PHASE | INITIAL_PHASE

    @property
    def initial_done(self) -> bool:
        """Whether the entity's initial read has finished (a delta link is stored)."""
        return self.phase == DELTA_PHASE


def portable_link(link: str) -> str:
    """``link`` relative to the Web API root: ``https://org.crm.dynamics.com/api/data/v9.2/
    leads?$deltatoken=…`` → ``leads?$deltatoken=…``.

    Stored links are portable: the client resolves them against the configured Dynamics URL,
    so a new host name for the same org (or the emulator on a new port) is followed by the
    next cycle. A link of another shape is kept as it is.
    """
    parts = urlsplit(link)
    if not parts.scheme or not parts.netloc:
        return link
    _, marker, rest = parts.path.partition("/api/data/")
    version, slash, resource = rest.partition("/")
    if not marker or not slash or not version.startswith("v"):
        return link
    return resource + (f"?{parts.query}" if parts.query else "")


def read_cursor(conn: Connection, entity: str) -> StoredCursor | None:
    """The stored link of ``entity`` (Web API root relative) with its phase, or ``None``
    before its first page."""
    row = conn.execute(
        select(delta_cursors.c.delta_link, delta_cursors.c.phase).where(
            delta_cursors.c.entity == entity
        )
    ).first()
    if row is None or row[0] is None:
        return None
    return StoredCursor(portable_link(str(row[0])), str(row[1]))


def get_cursor(conn: Connection, entity: str) -> str | None:
    """The stored delta link of ``entity``, or ``None`` before its initial sync finished."""
    cursor = read_cursor(conn, entity)
    return cursor.link if cursor is not None and cursor.initial_done else None


def set_cursor(
    conn: Connection, entity: str, delta_link: str | None, *, phase: str = DELTA_PHASE
) -> None:
    """Store (or clear, with ``None``) the link of ``entity``: a delta link, or with
    ``phase=INITIAL_PHASE`` the next page of its unfinished initial read (B16). Links are
    stored relative to the Web API root (:func:`portable_link`)."""
    if phase not in (DELTA_PHASE, INITIAL_PHASE):
        raise ValueError(f"unknown cursor phase {phase!r}")
    if delta_link is not None:
        delta_link = portable_link(delta_link)
    stamp = now_utc()
    changed = conn.execute(
        update(delta_cursors)
        .where(delta_cursors.c.entity == entity)
        .values(delta_link=delta_link, phase=phase, updated_at=stamp)
    ).rowcount
    if not changed:
        conn.execute(
            insert(delta_cursors).values(
                entity=entity, delta_link=delta_link, phase=phase, updated_at=stamp
            )
        )


# ---- outbox ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One captured marketing-side change waiting to be sent (B18)."""

    id: int
    person_id: int
    operation: str
    changed_fields: tuple[str, ...]
    created_at: datetime
    source: str


def read_outbox(conn: Connection, *, after_id: int = 0, limit: int = 5000) -> list[OutboxEntry]:
    """Up to ``limit`` outbox entries with ids above ``after_id``, oldest first."""
    rows = conn.execute(
        select(sync_outbox)
        .where(sync_outbox.c.id > after_id)
        .order_by(sync_outbox.c.id)
        .limit(limit)
    ).mappings()
    return [
        OutboxEntry(
            int(row["id"]),
            int(row["person_id"]),
            str(row["operation"]),
            tuple(row["changed_fields"] or ()),
            row["created_at"],
            str(row["source"]),
        )
        for row in rows
    ]


def outbox_size(conn: Connection) -> int:
    """How many outbox entries wait to be sent (the push's progress total, B40)."""
    return int(conn.execute(select(func.count()).select_from(sync_outbox)).scalar_one())


def delete_outbox(conn: Connection, ids: Sequence[int]) -> None:
    """Remove exactly the outbox entries that were read and handled (a newer one stays)."""
    for part in chunks(sorted(set(ids))):
        conn.execute(delete(sync_outbox).where(sync_outbox.c.id.in_(part)))


def enqueue_outbox(
    conn: Connection, person_ids: Iterable[int], *, operation: str, source: str
) -> None:
    """Queue persons for sending (a merge left marketing values to send, an admin retry)."""
    stamp = now_utc()
    rows = [
        {
            "person_id": person_id,
            "operation": operation,
            "changed_fields": [],
            "created_at": stamp,
            "source": source,
        }
        for person_id in dict.fromkeys(person_ids)
    ]
    if rows:
        conn.execute(insert(sync_outbox), rows)


# ---- errors, history, notifications --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """One record-level failure to store in ``sync_errors`` (B37)."""

    entity: str
    direction: str
    operation: str
    local_kind: str | None
    local_id: int | None
    crm_id: str | None
    code: str | None
    message: str


def record_errors(conn: Connection, reports: Sequence[ErrorReport]) -> None:
    """Open (or refresh, counting attempts) one sync error per failing record."""
    if not reports:
        return
    stamp = now_utc()
    crm_ids = sorted({r.crm_id for r in reports if r.crm_id})
    open_rows: dict[tuple[str, str | None, str], tuple[int, int]] = {}
    for part in chunks(crm_ids):
        rows = conn.execute(
            select(
                sync_errors.c.id,
                sync_errors.c.entity,
                sync_errors.c.crm_id,
                sync_errors.c.direction,
                sync_errors.c.attempts,
            ).where(sync_errors.c.resolved_at.is_(None), sync_errors.c.crm_id.in_(part))
        )
        for error_id, entity, crm_id, direction, attempts in rows:
            open_rows[(entity, crm_id, direction)] = (int(error_id), int(attempts))
    updates: list[dict[str, object]] = []
    inserts: list[dict[str, object]] = []
    for r in reports:
        existing = open_rows.get((r.entity, r.crm_id, r.direction))
        if existing is not None:
            updates.append(
                {
                    "_id": existing[0],
                    "attempts": existing[1] + 1,
                    "error_code": r.code,
                    "message": r.message,
                    "operation": r.operation,
                    "last_seen": stamp,
                }
            )
            continue
        inserts.append(
            {
                "entity": r.entity,
                "direction": r.direction,
                "operation": r.operation,
                "local_kind": r.local_kind,
                "local_id": r.local_id,
                "crm_id": r.crm_id,
                "error_code": r.code,
                "message": r.message,
                "details": None,
                "attempts": 1,
                "first_seen": stamp,
                "last_seen": stamp,
                "resolved_at": None,
            }
        )
    if updates:
        conn.execute(
            update(sync_errors).where(sync_errors.c.id == bindparam("_id")),
            updates,
        )
    if inserts:
        conn.execute(insert(sync_errors), inserts)


def resolve_errors(conn: Connection, entity: str, crm_ids: Sequence[str], direction: str) -> None:
    """Close the open errors of records that now synced (nothing to do when none is open)."""
    if (
        not crm_ids
        or not conn.execute(
            select(sync_errors.c.id).where(sync_errors.c.resolved_at.is_(None)).limit(1)
        ).first()
    ):
        return
    stamp = now_utc()
    for part in chunks(sorted(set(crm_ids))):
        conn.execute(
            update(sync_errors)
            .where(
                sync_errors.c.resolved_at.is_(None),
                sync_errors.c.entity == entity,
                sync_errors.c.direction == direction,
                sync_errors.c.crm_id.in_(part),
            )
            .values(resolved_at=stamp)
        )


def open_errors(
    conn: Connection,
    *,
    error_id: int | None = None,
    entity: str | None = None,
    search: str | None = None,
) -> list[dict[str, Any]]:
    """Open sync errors, newest first: all, the one with ``error_id``, those of ``entity``,
    and those whose message, error code or Dynamics id contains ``search`` (any case, B39)."""
    query = select(sync_errors).where(sync_errors.c.resolved_at.is_(None))
    if error_id is not None:
        query = query.where(sync_errors.c.id == error_id)
    if entity is not None:
        query = query.where(sync_errors.c.entity == entity.strip().lower())
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(
                *(
                    func.lower(func.coalesce(column, "")).like(pattern, escape="\\")
                    for column in (
                        sync_errors.c.message,
                        sync_errors.c.error_code,
                        sync_errors.c.crm_id,
                    )
                )
            )
        )
    rows = conn.execute(query.order_by(sync_errors.c.last_seen.desc(), sync_errors.c.id.desc()))
    return [dict(row) for row in rows.mappings()]


def insert_history(conn: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    """Append sync-history rows (cycles, collisions, initial syncs)."""
    if rows:
        conn.execute(insert(sync_history), [dict(row) for row in rows])


def notify(
    conn: Connection, *, severity: str, kind: str, title: str, message: str, dedupe_key: str
) -> None:
    """Raise an in-app notification unless one with ``dedupe_key`` exists (B16, B41)."""
    exists = conn.execute(
        select(func.count())
        .select_from(notifications)
        .where(notifications.c.dedupe_key == dedupe_key)
    ).scalar_one()
    if exists:
        return
    conn.execute(
        insert(notifications).values(
            created_at=now_utc(),
            severity=severity,
            kind=kind,
            title=title,
            message=message,
            dedupe_key=dedupe_key,
        )
    )


# ---- retry requests for records Dynamics sent that did not convert --------------------------

RETRY_READS = "sync.retry_reads"


def request_rereads(conn: Connection, entity_ids: Iterable[tuple[str, str]]) -> None:
    """Ask the next cycle to read these Dynamics records again (an admin retry, B38)."""
    current = get_setting(conn, RETRY_READS, [])
    wanted: list[object] = []
    if isinstance(current, list):
        wanted = [pair for pair in current if isinstance(pair, list) and len(pair) == 2]
    for entity, crm_id in entity_ids:
        if [entity, crm_id] not in wanted:
            wanted.append([entity, crm_id])
    set_setting(conn, RETRY_READS, wanted)


def pending_rereads(conn: Connection) -> list[tuple[str, str]]:
    """The records queued by :func:`request_rereads`."""
    current = get_setting(conn, RETRY_READS, [])
    if not isinstance(current, list):
        return []
    return [
        (str(pair[0]), str(pair[1]))
        for pair in current
        if isinstance(pair, list) and len(pair) == 2
    ]


def clear_rereads(conn: Connection, done: Iterable[tuple[str, str]]) -> None:
    """Remove re-read requests that were handled (others stay queued)."""
    handled = {tuple(pair) for pair in done}
    if handled:
        left = [list(pair) for pair in pending_rereads(conn) if pair not in handled]
        set_setting(conn, RETRY_READS, left)  # type: ignore[arg-type]


def link_fk_columns(conn: Connection, person_ids: Sequence[int]) -> None:
    """Point persons at their company and sales user by external id (B5, B6)."""
    for part in chunks(sorted(set(person_ids))):
        company = (
            select(companies.c.id)
            .where(companies.c.externalCompanyId == persons.c.externalCompanyId)
            .scalar_subquery()
        )
        seller = (
            select(sales_persons.c.id)
            .where(sales_persons.c.externalSalesPersonId == persons.c.externalSalesPersonId)
            .scalar_subquery()
        )
        conn.execute(
            update(persons)
            .where(persons.c.id.in_(part))
            .values(company_id=company, sales_person_id=seller)
        )


def fill_person_fks(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Set ``company_id`` and ``sales_person_id`` on new person rows from their external ids,
    as :func:`link_fk_columns` would after the insert, with one query per chunk of ids
    instead of an update of every row (B5, B6)."""
    for column, table, key in (
        ("company_id", companies, "externalCompanyId"),
        ("sales_person_id", sales_persons, "externalSalesPersonId"),
    ):
        wanted = sorted({str(row[key]) for row in rows if row.get(key) is not None})
        found: dict[str, int] = {}
        for part in chunks(wanted):
            for local_id, external in conn.execute(
                select(table.c.id, table.c[key]).where(table.c[key].in_(part))
            ):
                found[str(external)] = int(local_id)
        for row in rows:
            external = row.get(key)
            row[column] = found.get(str(external)) if external is not None else None


def link_opportunity_companies(conn: Connection, crm_ids: Sequence[str]) -> None:
    """Point opportunities at their company by external id (B6): the account customer's
    company, or the company of the contact customer's account; none when unknown."""
    company = (
        select(companies.c.id)
        .where(companies.c.externalCompanyId == opportunities.c.externalCompanyId)
        .scalar_subquery()
    )
    for part in chunks(sorted(set(crm_ids))):
        conn.execute(
            update(opportunities)
            .where(opportunities.c.externalOpportunityId.in_(part))
            .values(company_id=company)
        )


def company_of_contacts(conn: Connection, contact_ids: Sequence[str]) -> dict[str, str | None]:
    """The account id of each linked contact's person (for opportunity roles, B6)."""
    found: dict[str, str | None] = {}
    for part in chunks(list(contact_ids)):
        rows = conn.execute(
            select(crm_links.c.crm_id, persons.c.externalCompanyId)
            .select_from(crm_links.join(persons, persons.c.id == crm_links.c.local_id))
            .where(
                and_(
                    crm_links.c.entity == "contact",
                    crm_links.c.local_kind == "person",
                    crm_links.c.crm_id.in_(part),
                )
            )
        )
        for crm_id, company in rows:
            found[crm_id] = company
    return found
