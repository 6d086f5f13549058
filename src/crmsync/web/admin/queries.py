"""What the admin pages and API read, beyond :func:`crmsync.sync.status.read_status`.

Every list is paged by id (keyset: ``before`` the last id shown) and every lookup goes through
an index: a page costs the same with ten persons or a million.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, or_, select, update

from crmsync.marketing.activity_types import ACTIVITY_TYPES
from crmsync.marketing.person_company import SHARED_FIELDS
from crmsync.store.field_specs import COMPANY_FIELDS, PERSON_FIELDS
from crmsync.store.tables import (
    activities,
    audit_log,
    companies,
    notifications,
    now_utc,
    persons,
    sync_errors,
    sync_history,
)
from crmsync.sync.error_counts import open_error_groups

PAGE_SIZE = 50
API_LIMIT_PER_5_MINUTES = 6000  # Dataverse service protection: requests per user per 5 minutes
_TYPE_NAMES = {t.id: t.name for t in ACTIVITY_TYPES}


@dataclass(frozen=True, slots=True)
class LastCycle:
    """The most recent cycle and its truthful outcome."""

    started_at: datetime
    duration_seconds: float | None
    status: str
    failed_records: int
    error: str | None

    @property
    def outcome(self) -> str:
        """The outcome in words: "Succeeded", "Partial: 3 records failed" or "Failed: reason"."""
        if self.status == "failed":
            return f"Failed: {self.error or 'see the sync errors'}"
        failed = self.failed_records
        if failed:
            return f"Partial: {failed} record{'s' if failed != 1 else ''} failed"
        if self.status != "ok":
            return f"Partial: {self.error or 'an entity could not be read'}"
        return "Succeeded"


def last_cycle(conn: Connection) -> LastCycle | None:
    """The latest cycle in the sync history, counting every failed record it reported."""
    row = conn.execute(
        select(
            sync_history.c.started_at,
            sync_history.c.finished_at,
            sync_history.c.status,
            sync_history.c.details,
        )
        .where(sync_history.c.kind == "cycle")
        .order_by(sync_history.c.started_at.desc(), sync_history.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    details = row.details if isinstance(row.details, dict) else {}
    failed = 0
    entities = details.get("entities")
    for entity in entities if isinstance(entities, list) else []:
        if isinstance(entity, dict) and isinstance(entity.get("failed"), int):
            failed += int(entity["failed"])
    push = details.get("push")
    if isinstance(push, dict) and isinstance(push.get("failed"), int):
        failed += int(push["failed"])
    error = details.get("error")
    if error is None and isinstance(entities, list):
        errors = [str(e["error"]) for e in entities if isinstance(e, dict) and e.get("error")]
        error = "; ".join(errors) or None
    finished = row.finished_at
    return LastCycle(
        row.started_at,
        (finished - row.started_at).total_seconds() if finished else None,
        str(row.status),
        failed,
        str(error) if error else None,
    )


def requests_last_5_minutes(conn: Connection, now: datetime | None = None) -> int:
    """Dynamics requests of the cycles that started in the last five minutes."""
    since = (now or now_utc()) - timedelta(minutes=5)
    total = conn.execute(
        select(func.coalesce(func.sum(sync_history.c.api_calls), 0)).where(
            sync_history.c.kind == "cycle", sync_history.c.started_at >= since
        )
    ).scalar_one()
    return int(total)


def unread_notifications(conn: Connection, *, severity: str | None = None) -> int:
    """How many notifications are unread (of ``severity`` when given)."""
    query = select(func.count()).select_from(notifications).where(notifications.c.read_at.is_(None))
    if severity is not None:
        query = query.where(notifications.c.severity == severity)
    return int(conn.execute(query).scalar_one())


def list_notifications(conn: Connection, *, before: int | None = None) -> list[dict[str, Any]]:
    """A page of notifications, newest first."""
    query = select(notifications).order_by(notifications.c.id.desc()).limit(PAGE_SIZE)
    if before is not None:
        query = query.where(notifications.c.id < before)
    return [dict(row) for row in conn.execute(query).mappings()]


def mark_notifications_read(conn: Connection, notification_id: int | None) -> int:
    """Mark one unread notification (or all when None) as read; returns how many."""
    statement = (
        update(notifications).where(notifications.c.read_at.is_(None)).values(read_at=now_utc())
    )
    if notification_id is not None:
        statement = statement.where(notifications.c.id == notification_id)
    return int(conn.execute(statement).rowcount)


def list_audit(conn: Connection, *, before: int | None = None) -> list[dict[str, Any]]:
    """A page of the audit trail, newest first."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(PAGE_SIZE)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    return [dict(row) for row in conn.execute(query).mappings()]


def person_labels(conn: Connection, person_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """Name and e-mail of the persons with ``person_ids`` (for error rows)."""
    ids = sorted({int(p) for p in person_ids if p is not None})
    if not ids:
        return {}
    rows = conn.execute(
        select(persons.c.id, persons.c.firstName, persons.c.lastName, persons.c.email).where(
            persons.c.id.in_(ids)
        )
    )
    return {
        int(r.id): {
            "name": " ".join(p for p in (r.firstName, r.lastName) if p) or "(no name)",
            "email": r.email or "",
        }
        for r in rows
    }


def error_counts_by_entity(conn: Connection) -> dict[str, int]:
    """Open sync errors per entity (for the filter), from the counts of open errors."""
    totals: Counter[str] = Counter()
    for (entity, _, _), count in open_error_groups(conn).items():
        totals[entity] += count
    return dict(sorted(totals.items()))


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """Open errors sharing one Dynamics error code: how many, and the latest message as
    example."""

    code: str
    count: int
    example: str
    last_seen: datetime


def error_kinds(conn: Connection) -> list[ErrorKind]:
    """Open sync errors grouped by error code, the largest group first (B39).

    The counts come from the counts of open errors (a few rows); per code, the one newest
    open error, for its message, is read through the partial index of open errors by code
    and last seen. No code and an empty code are one group, "no code"."""
    per_code: Counter[str] = Counter()
    for (_, _, code), count in open_error_groups(conn).items():
        per_code[code] += count
    is_open = sync_errors.c.resolved_at.is_(None)
    kinds = []
    for code, count in per_code.items():
        spellings = [sync_errors.c.error_code == code]
        if not code:
            spellings.append(sync_errors.c.error_code.is_(None))
        newest = [
            conn.execute(
                select(sync_errors.c.message, sync_errors.c.last_seen)
                .where(is_open, spelling)
                .order_by(sync_errors.c.last_seen.desc())
                .limit(1)
            ).first()
            for spelling in spellings
        ]
        found = [row for row in newest if row is not None]
        if not found:  # the counts are ahead of the rows this connection sees
            continue
        message, seen = max(found, key=lambda row: row[1])
        kinds.append(ErrorKind(code, count, str(message or ""), seen))
    return sorted(kinds, key=lambda kind: (-kind.count, kind.code))


_LISTED = tuple(
    persons.c[name].label(name)  # result keys are the REST names, not the snake_case columns
    for name in (
        "id",
        "firstName",
        "lastName",
        "email",
        "company",
        "crmType",
        "crmIsDeleted",
        "createdAt",
    )
)


NAME_CANDIDATES = 2000  # a name search gathers at most this many matches per column by index


def search_people(
    conn: Connection,
    text: str = "",
    *,
    before: int | None = None,
    candidates: int = NAME_CANDIDATES,
) -> list[dict[str, Any]]:
    """A page of persons, newest first: all, or those matching ``text``.

    An e-mail address (text with "@") matches e-mail addresses starting with it, through the
    e-mail index; a number is a person id; otherwise first name, last name, full name or
    company starting with the text (any case), or a Dynamics id. A name search gathers its
    matches through the lower-case indexes, up to ``candidates`` per column; past that, the
    persons are read newest first (a common start soon fills a page).
    """
    query = select(*_LISTED).order_by(persons.c.id.desc()).limit(PAGE_SIZE)
    if before is not None:
        query = query.where(persons.c.id < before)
    term = text.strip()
    if term:
        lowered = term.lower()
        if "@" in term:
            query = query.where(
                and_(persons.c.email_key >= lowered, persons.c.email_key < lowered + "\uffff")
            )
        elif term.isascii() and term.isdigit():
            query = query.where(persons.c.id == int(term))
        else:
            matches = _name_matches(lowered)
            ids = _candidate_ids(conn, lowered, candidates)
            if ids is None:  # a common start: the newest persons hold a page of matches
                query = query.where(matches)
            else:
                return _page_of(conn, query, matches, ids, before)
    return [dict(row) for row in conn.execute(query).mappings()]


def _page_of(
    conn: Connection,
    query: Select[Any],
    matches: ColumnElement[bool],
    ids: list[int],
    before: int | None,
) -> list[dict[str, Any]]:
    """The page of ``query`` among candidate ``ids`` (newest first) that truly ``matches``:
    the candidates are tested a few hundred at a time until the page is full."""
    wanted = [i for i in ids if before is None or i < before]
    found: list[dict[str, Any]] = []
    for part in _chunks(wanted, 4 * PAGE_SIZE):
        rows = conn.execute(query.where(persons.c.id.in_(part), matches)).mappings()
        found.extend(dict(row) for row in rows)
        if len(found) >= PAGE_SIZE:
            break
    return found[:PAGE_SIZE]


def _name_matches(lowered: str) -> ColumnElement[bool]:
    """Whether a person's names, company or Dynamics id match the lower-cased search."""
    prefix = _like_prefix(lowered)
    full_name = func.lower(
        func.coalesce(persons.c.firstName, "") + " " + func.coalesce(persons.c.lastName, "")
    )
    return or_(
        func.lower(persons.c.firstName).like(prefix, escape="\\"),
        func.lower(persons.c.lastName).like(prefix, escape="\\"),
        full_name.like(prefix, escape="\\"),
        func.lower(persons.c.company).like(prefix, escape="\\"),
        persons.c.crmLeadId == lowered,
        persons.c.crmContactId == lowered,
    )


def _starting_with(column: Any, prefix: str) -> ColumnElement[bool]:
    """``lower(column)`` starting with ``prefix``, as a range the lower-case index can read."""
    following = prefix[:-1] + chr(min(ord(prefix[-1]) + 1, 0x10FFFF))
    return and_(func.lower(column) >= prefix, func.lower(column) < following)


def _candidate_ids(conn: Connection, lowered: str, limit: int) -> list[int] | None:
    """Ids of the persons whose first name, last name or company starts with the search (a
    full name through its first word), or Dynamics id is it, newest first, read through the
    lower-case indexes; None when a column has more than ``limit`` of them: then reading the
    persons newest first meets a page of matches soon."""
    first_word = lowered.split()[0]
    lookups = [
        (persons.c.firstName, lowered),
        (persons.c.lastName, lowered),
        (persons.c.company, lowered),
    ]
    if first_word != lowered:
        lookups.append((persons.c.firstName, first_word))
    found: set[int] = set()
    for column, prefix in lookups:
        ids = (
            conn.execute(
                select(persons.c.id).where(_starting_with(column, prefix)).limit(limit + 1)
            )
            .scalars()
            .all()
        )
        if len(ids) > limit:
            return None
        found.update(int(i) for i in ids)
    for crm_id in (persons.c.crmLeadId, persons.c.crmContactId):  # one index each, not OR
        by_dynamics_id = conn.execute(select(persons.c.id).where(crm_id == lowered)).scalars()
        found.update(int(i) for i in by_dynamics_id)
    return sorted(found, reverse=True)


def _chunks(values: list[int], size: int) -> list[list[int]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _by_key(columns: Any, row: Any) -> dict[str, Any]:
    """A row as a dict keyed by REST names (the columns' keys)."""
    return {column.key: value for column, value in zip(columns, row, strict=True)}


@dataclass(frozen=True, slots=True)
class PersonDetail:
    """Everything the person page shows."""

    person: dict[str, Any]
    fields: list[tuple[str, str, object]]  # (REST name, display name, value)
    company_fields: list[tuple[str, str, object]]
    open_errors: list[dict[str, Any]]


def person_detail(conn: Connection, person_id: int) -> PersonDetail | None:
    """The person with every field, its company's fields and its open sync errors."""
    row = conn.execute(select(persons).where(persons.c.id == person_id)).first()
    if row is None:
        return None
    person = _by_key(persons.c, row)
    company: dict[str, Any] | None = None
    if person.get("company_id") is not None:
        found = conn.execute(
            select(companies).where(companies.c.id == person["company_id"])
        ).first()
        company = _by_key(companies.c, found) if found is not None else None
    # A person of a company shows the company's values in its company fields (B3).
    shown = {
        name: company.get(company_field) if company is not None else person.get(name)
        for name, company_field in SHARED_FIELDS.items()
    }
    fields = [
        (s.rest_name, s.display_name, shown.get(s.rest_name, person.get(s.rest_name)))
        for s in PERSON_FIELDS
    ]
    for name, value in sorted((person.get("custom") or {}).items()):
        fields.append((str(name), str(name), value))
    company_fields: list[tuple[str, str, object]] = []
    if company is not None:
        company_fields = [
            (s.rest_name, s.display_name, company.get(s.rest_name)) for s in COMPANY_FIELDS
        ]
    errors = [
        dict(r)
        for r in conn.execute(
            select(sync_errors)
            .where(
                sync_errors.c.local_kind == "person",
                sync_errors.c.local_id == person_id,
                sync_errors.c.resolved_at.is_(None),
            )
            .order_by(sync_errors.c.id.desc())
        ).mappings()
    ]
    return PersonDetail(person, fields, company_fields, errors)


ACTIVITY_TYPE_NAMES = dict(sorted(_TYPE_NAMES.items()))


def person_activities(
    conn: Connection,
    person_id: int,
    *,
    before: int | None = None,
    type_id: int | None = None,
) -> list[dict[str, Any]]:
    """A page of the person's activity log, newest first, with each type's name; only
    activities of ``type_id`` when given."""
    query = (
        select(activities)
        .where(activities.c.person_id == person_id)
        .order_by(activities.c.id.desc())
        .limit(PAGE_SIZE)
    )
    if type_id is not None:
        query = query.where(activities.c.type_id == type_id)
    if before is not None:
        query = query.where(activities.c.id < before)
    rows = []
    for row in conn.execute(query).mappings():
        item = dict(row)
        item["type_name"] = _TYPE_NAMES.get(int(item["type_id"]), f"Activity {item['type_id']}")
        attributes = item.get("attributes")
        item["attributes"] = attributes if isinstance(attributes, dict) else {}
        rows.append(item)
    return rows
