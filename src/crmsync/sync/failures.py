"""Record-level sync failures (``sync_errors``, B37) and admin retries of them (B38).

A failing record gets one open error, refreshed (attempts counted) while it keeps failing
and closed once it syncs. An admin retry of a record that failed on its way in is a re-read
(:mod:`crmsync.sync.rereads`); the sync-failure activity on the person is built by
:func:`crmsync.marketing.activity_log.sync_error`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection

from crmsync.errors import InvalidValueError
from crmsync.store.id_match import id_conditions
from crmsync.store.inserts import chunks
from crmsync.store.tables import UtcDateTime, now_utc, sync_errors
from crmsync.sync.error_counts import (
    CountKey,
    count_key,
    open_error_total,
    shift_error_counts,
)


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
    """Open (or refresh, counting attempts) one sync error per failing record; the counts
    of open errors change with them."""
    if not reports:
        return
    stamp = now_utc()
    crm_ids = sorted({r.crm_id for r in reports if r.crm_id})
    open_rows: dict[tuple[str, str | None, str], tuple[int, int]] = {}
    codes: dict[int, str | None] = {}  # each open error's code before this refresh
    for part in chunks(crm_ids):
        rows = conn.execute(
            select(
                sync_errors.c.id,
                sync_errors.c.entity,
                sync_errors.c.crm_id,
                sync_errors.c.direction,
                sync_errors.c.attempts,
                sync_errors.c.error_code,
            ).where(sync_errors.c.resolved_at.is_(None), sync_errors.c.crm_id.in_(part))
        )
        for error_id, entity, crm_id, direction, attempts, code in rows:
            open_rows[(entity, crm_id, direction)] = (int(error_id), int(attempts))
            codes[int(error_id)] = code
    updates: list[dict[str, object]] = []
    inserts: list[dict[str, object]] = []
    counts: Counter[CountKey] = Counter()
    recoded: dict[int, tuple[str, str, str | None]] = {}  # refreshed: the code it ends with
    for r in reports:
        existing = open_rows.get((r.entity, r.crm_id, r.direction))
        if existing is not None:
            recoded[existing[0]] = (r.entity, r.direction, r.code)
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
        counts[count_key(r.entity, r.direction, r.code)] += 1
    if updates:
        conn.execute(
            update(sync_errors).where(sync_errors.c.id == bindparam("_id")),
            updates,
        )
    if inserts:
        conn.execute(insert(sync_errors), inserts)
    counts.update(_recounted(conn, codes, recoded))
    shift_error_counts(conn, counts)


def _recounted(
    conn: Connection,
    codes_before: dict[int, str | None],
    codes_after: dict[int, tuple[str, str, str | None]],
) -> Counter[CountKey]:
    """How the counts change for refreshed errors whose code changed: each moves from its
    old code's group to its new one, if it is still open (an error closed meanwhile by
    another transaction left the counts already)."""
    moved = {
        error_id: (entity, direction, code)
        for error_id, (entity, direction, code) in codes_after.items()
        if (code or "") != (codes_before[error_id] or "")
    }
    changes: Counter[CountKey] = Counter()
    for part in chunks(sorted(moved)):
        still_open = conn.execute(
            select(sync_errors.c.id).where(
                sync_errors.c.id.in_(part), sync_errors.c.resolved_at.is_(None)
            )
        )
        for (error_id,) in still_open:
            entity, direction, code = moved[int(error_id)]
            changes[count_key(entity, direction, codes_before[int(error_id)])] -= 1
            changes[count_key(entity, direction, code)] += 1
    return changes


def failing_locals(
    conn: Connection, direction: str, local_kind: str, local_ids: Sequence[int]
) -> set[int]:
    """The records among ``local_ids`` with an open error in ``direction`` (the push compares
    every field of a failing person, so a refused change is retried with its next change)."""
    found: set[int] = set()
    if not local_ids or not _any_open(conn):
        return found
    for matching in id_conditions(conn, sync_errors.c.local_id, list(local_ids)):
        rows = conn.execute(
            select(sync_errors.c.local_id).where(
                sync_errors.c.resolved_at.is_(None),
                sync_errors.c.direction == direction,
                sync_errors.c.local_kind == local_kind,
                matching,
            )
        )
        found.update(int(local_id) for (local_id,) in rows)
    return found


def _any_open(conn: Connection) -> bool:
    return (
        conn.execute(
            select(sync_errors.c.id).where(sync_errors.c.resolved_at.is_(None)).limit(1)
        ).first()
        is not None
    )


def resolve_errors(conn: Connection, entity: str, crm_ids: Sequence[str], direction: str) -> None:
    """Close the open errors of records that now synced (nothing to do when none is open);
    the counts of open errors change with them."""
    if not crm_ids or not _any_open(conn):
        return
    stamp = now_utc()
    counts: Counter[CountKey] = Counter()
    for part in chunks(sorted(set(crm_ids))):
        closed = conn.execute(
            update(sync_errors)
            .where(
                sync_errors.c.resolved_at.is_(None),
                sync_errors.c.entity == entity,
                sync_errors.c.direction == direction,
                sync_errors.c.crm_id.in_(part),
            )
            .values(resolved_at=stamp)
            .returning(sync_errors.c.error_code)
        )
        for (code,) in closed:
            counts[count_key(entity, direction, code)] -= 1
    shift_error_counts(conn, counts)


def _open_errors_where(
    error_id: int | None, entity: str | None, search: str | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [sync_errors.c.resolved_at.is_(None)]
    if error_id is not None:
        conditions.append(sync_errors.c.id == error_id)
    if entity is not None:
        conditions.append(sync_errors.c.entity == entity.strip().lower())
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        conditions.append(
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
    return conditions


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ErrorPosition:
    """A row's place in the list of open errors (newest first: last seen, then id), where a
    page ends or starts; its :meth:`token` goes in page links (keyset paging: a deep page is
    read through the index from there, not counted off from the top)."""

    last_seen: datetime
    id: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> ErrorPosition:
        """The position of a row of :func:`open_errors`."""
        return cls(row["last_seen"], int(row["id"]))

    def token(self) -> str:
        """``<microseconds since 1970>.<id>``: exact, and safe in a URL as it is."""
        micros = (self.last_seen - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{self.id}"

    @classmethod
    def parse(cls, token: str) -> ErrorPosition:
        """The position in ``token``, or :class:`InvalidValueError`."""
        micros, _, row_id = token.strip().partition(".")
        if not (_whole(micros) and _whole(row_id)) or len(token) > 40:
            raise InvalidValueError("That page link is not valid; start from the first page.")
        return cls(_EPOCH + timedelta(microseconds=int(micros)), int(row_id))


def _whole(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 20


def open_errors(
    conn: Connection,
    *,
    error_id: int | None = None,
    entity: str | None = None,
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    after: ErrorPosition | None = None,
    before: ErrorPosition | None = None,
    oldest: bool = False,
) -> list[dict[str, Any]]:
    """Open sync errors, newest first: all, the one with ``error_id``, those of ``entity``,
    and those whose message, error code or Dynamics id contains ``search`` (any case, B39).

    ``limit`` pages them in the database: from the top, skipping ``offset``; or (keyset)
    the ``limit`` rows just ``after`` or just ``before`` a position, or the ``oldest`` ones
    (the last page), each still listed newest first."""
    conditions = _open_errors_where(error_id, entity, search)
    place = tuple_(sync_errors.c.last_seen, sync_errors.c.id)
    newest_first = (sync_errors.c.last_seen.desc(), sync_errors.c.id.desc())
    oldest_first = (sync_errors.c.last_seen.asc(), sync_errors.c.id.asc())
    backwards = before is not None or oldest
    if after is not None:
        conditions.append(place < tuple_(literal(after.last_seen, UtcDateTime()), after.id))
    if before is not None:
        conditions.append(place > tuple_(literal(before.last_seen, UtcDateTime()), before.id))
    query = select(sync_errors).where(*conditions)
    query = query.order_by(*(oldest_first if backwards else newest_first))
    if limit is not None:
        query = query.limit(max(0, limit))
        if after is None and not backwards:
            query = query.offset(max(0, offset))
    rows = [dict(row) for row in conn.execute(query).mappings()]
    return rows[::-1] if backwards else rows


def count_open_errors(
    conn: Connection, *, entity: str | None = None, search: str | None = None
) -> int:
    """How many open sync errors :func:`open_errors` lists with the same filter (read from
    the counts of open errors unless a search narrows them)."""
    if not search:
        return open_error_total(conn, entity.strip().lower() if entity is not None else None)
    query = select(func.count()).select_from(sync_errors)
    return int(conn.execute(query.where(*_open_errors_where(None, entity, search))).scalar_one())
