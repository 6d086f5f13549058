"""The checks at quiescence: both sides against the model, duplicates, rejected records.

:func:`observe` reads the final state: every lead and contact through the Web API, every person
with its Dynamics link and its *Microsoft Sync Error* activities from the marketing database,
and the open failures from ``crmsync sync errors --json``; also the state of the column deleted
in Dynamics (its selection status and critical notices) and what the trigger campaign did (its
*Sync Lead to Microsoft* activities). :func:`compare` then holds every pair against
:func:`soak.model.expect` and lists each difference as a :class:`Mismatch`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from crmsync.store.db import open_database
from crmsync.store.tables import (
    activities,
    campaigns,
    crm_links,
    field_selection,
    notifications,
    persons,
)
from soak.model import (
    CAMPAIGN_FIELD,
    CAMPAIGN_NAME,
    DROPPED,
    TRACKED,
    Pair,
    expect,
    normal,
    superseded,
)
from soak.processes import Workdir
from soak.sides import DynamicsSide

SYNC_ERROR_ACTIVITY = 500  # "Microsoft Sync Error" in the activity log
SYNC_TO_MICROSOFT_ACTIVITY = 300  # "Sync Lead to Microsoft"
COLUMNS = [c for c, _ in TRACKED] + ["emailaddress1", CAMPAIGN_FIELD[0]]
FIELDS = [name for _, name in TRACKED] + [CAMPAIGN_FIELD[1]]
ENTITIES = ("lead", "contact")


@dataclass(frozen=True)
class Facts:
    """What the workload did beyond the pairs: whether the custom column was deleted in
    Dynamics, and the tables whose selection was saved afterwards (a save reads the schema
    again and drops the column at once, so no notice about it need be raised)."""

    column_dropped: bool = False
    saved_after_drop: frozenset[str] = frozenset()


@dataclass
class Observed:
    """The final state of both sides."""

    crm: dict[str, dict[str, dict[str, Any]]]  # entity -> id -> column -> value
    people: dict[int, dict[str, Any]]  # person id -> field -> value
    links: dict[int, list[tuple[str, str]]]  # person id -> [(entity, crm id)]
    error_activities: set[int]
    open_errors: list[dict[str, Any]]
    dropped_status: dict[str, str | None] = field(default_factory=dict)  # table -> status
    dropped_notices: set[str] = field(default_factory=set)  # tables with a critical notice
    campaign_syncs: Counter[int] = field(default_factory=Counter)  # person -> activities

    def crm_record(self, entity: str, crm_id: str) -> dict[str, Any] | None:
        """The Dynamics record, or None when it does not exist."""
        return self.crm.get(entity, {}).get(crm_id)

    def persons_linked_to(self, crm_id: str) -> list[int]:
        """The persons linked to this Dynamics id."""
        return [pid for pid, found in self.links.items() if any(c == crm_id for _, c in found)]


@dataclass(frozen=True)
class Mismatch:
    """One difference between what the rules allow and what was found."""

    kind: str  # lost | mismatch | not_converged | duplicate | missing | unexpected | invisible
    pair: int
    detail: str
    person_id: int | None = None
    crm_id: str | None = None
    field: str | None = None
    found: Any = None
    allowed: tuple[Any, ...] = ()

    def explain(self) -> str:
        """One line a person can read."""
        where = f"pair {self.pair} (person {self.person_id}, Dynamics {self.crm_id})"
        if self.field:
            return (
                f"{self.kind}: {where} field {self.field}: found {self.found!r}, "
                f"allowed {self.allowed!r}; {self.detail}"
            )
        return f"{self.kind}: {where}: {self.detail}"


@dataclass
class CheckResult:
    """Every mismatch, with the counts of the summary line."""

    mismatches: list[Mismatch] = field(default_factory=list)
    checked_fields: int = 0

    def count(self, kind: str) -> int:
        """How many mismatches of ``kind``."""
        return sum(1 for m in self.mismatches if m.kind == kind)

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return {
            "checked_fields": self.checked_fields,
            "by_kind": dict(Counter(m.kind for m in self.mismatches)),
            "mismatches": [asdict(m) | {"explained": m.explain()} for m in self.mismatches],
        }


def observe(work: Workdir, dynamics: DynamicsSide, column_dropped: bool = False) -> Observed:
    """Read both sides at quiescence (the custom column too while Dynamics still has it)."""
    columns = COLUMNS if column_dropped else [*COLUMNS, DROPPED[0]]
    crm = {
        entity: dynamics.read_all(entity_set, columns)
        for entity, entity_set in (("lead", "leads"), ("contact", "contacts"))
    }
    engine = open_database(work.database_url)
    try:
        with engine.connect() as conn:
            people = {}
            for row in conn.execute(
                select(
                    persons.c.id,
                    persons.c.custom,
                    *(
                        persons.c[name].label(name)
                        for name in ("email", "crmIsDeleted", "crmType", *FIELDS)
                    ),
                )
            ):
                person = dict(row._mapping)
                person[DROPPED[1]] = (person.pop("custom") or {}).get(DROPPED[1])
                people[int(row.id)] = person
            links: dict[int, list[tuple[str, str]]] = {}
            for entity, crm_id, local_id in conn.execute(
                select(crm_links.c.entity, crm_links.c.crm_id, crm_links.c.local_id).where(
                    crm_links.c.local_kind == "person"
                )
            ):
                if int(local_id) in people:  # a deleted person's link stays, pointing nowhere
                    links.setdefault(int(local_id), []).append((str(entity), str(crm_id)))
            error_activities = {
                int(pid)
                for (pid,) in conn.execute(
                    select(activities.c.person_id)
                    .where(activities.c.type_id == SYNC_ERROR_ACTIVITY)
                    .distinct()
                )
            }
            status, notices, syncs = _dropped_and_campaign(conn)
    finally:
        engine.dispose()
    open_errors = json.loads(work.cli("sync", "errors", "--json").stdout or "[]")
    return Observed(crm, people, links, error_activities, open_errors, status, notices, syncs)


def _dropped_and_campaign(
    conn: Any,
) -> tuple[dict[str, str | None], set[str], Counter[int]]:
    status: dict[str, str | None] = dict.fromkeys(ENTITIES)
    for entity, found in conn.execute(
        select(field_selection.c.entity, field_selection.c.status).where(
            field_selection.c.attribute == DROPPED[0]
        )
    ):
        status[str(entity)] = str(found)
    notices = {
        entity
        for entity in ENTITIES
        for (key,) in conn.execute(
            select(notifications.c.dedupe_key).where(
                notifications.c.severity == "critical",
                notifications.c.kind == "field_missing",
            )
        )
        if key and f":{entity}:" in key and DROPPED[0] in key
    }
    campaign_id = conn.execute(
        select(campaigns.c.id).where(campaigns.c.name == CAMPAIGN_NAME)
    ).scalar_one_or_none()
    syncs: Counter[int] = Counter()
    if campaign_id is not None:
        for (person_id,) in conn.execute(
            select(activities.c.person_id).where(
                activities.c.type_id == SYNC_TO_MICROSOFT_ACTIVITY,
                activities.c.campaign_id == campaign_id,
            )
        ):
            syncs[int(person_id)] += 1
    return status, notices, syncs


def _field_checks(
    pair: Pair,
    side: str,
    values: dict[str, Any],
    allowed: dict[str, set[str | None]],
    result: CheckResult,
    crm_id: str | None,
) -> None:
    fields = [*TRACKED]
    if side == "marketing" or pair.dropped_at is None:
        fields.append(DROPPED)  # Dynamics has no value of a deleted column to check
    for column, name in fields:
        found = normal(values.get(column if side == "dynamics" else name))
        result.checked_fields += 1
        if found in allowed[column]:
            continue
        older = superseded(pair.initial.get(column), pair.writes.get(column, []))
        kind = "lost" if found in older else "mismatch"
        result.mismatches.append(
            Mismatch(
                kind,
                pair.key,
                f"{side} side",
                pair.person_id,
                crm_id,
                column,
                found,
                tuple(sorted(allowed[column], key=str)),
            )
        )


def compare(pairs: list[Pair], seen: Observed, facts: Facts | None = None) -> CheckResult:
    """Hold every pair against the model; also look for duplicate Dynamics records and check
    the column deleted in Dynamics."""
    result = CheckResult()
    for pair in pairs:
        _check_pair(pair, seen, result)
    _check_duplicates(pairs, seen, result)
    if facts is not None and facts.column_dropped:
        _check_dropped(seen, facts, result)
    return result


def _check_dropped(seen: Observed, facts: Facts, result: CheckResult) -> None:
    """B14: a column deleted in Dynamics is marked missing (or, once the selection was saved,
    no longer selected) and a critical notice named it."""
    for entity in ENTITIES:
        status = seen.dropped_status.get(entity)
        if status not in ("missing", None):
            result.mismatches.append(
                Mismatch("mismatch", -1, f"{entity}.{DROPPED[0]} deleted in Dynamics is {status!r}")
            )
        if entity not in seen.dropped_notices and entity not in facts.saved_after_drop:
            result.mismatches.append(
                Mismatch("invisible", -1, f"no critical notice for {entity}.{DROPPED[0]} deleted")
            )


def _check_campaign(
    pair: Pair,
    seen: Observed,
    result: CheckResult,
    person: dict[str, Any] | None,
    crm: dict[str, Any] | None,
    crm_id: str | None,
) -> None:
    """A person the trigger campaign synced: one activity with the campaign's id, and the
    Change Data Value step's value on both sides (B31, B32)."""
    if pair.person_id is None or person is None:
        return
    count = seen.campaign_syncs.get(pair.person_id, 0)
    if count != 1:
        kind = "duplicate" if count > 1 else "missing"
        result.mismatches.append(
            Mismatch(
                kind,
                pair.key,
                f"{count} Sync Lead to Microsoft activities of the campaign",
                pair.person_id,
                crm_id,
            )
        )
    column, name = CAMPAIGN_FIELD
    for side, values, key in (("marketing", person, name), ("dynamics", crm, column)):
        if values is None:
            continue
        result.checked_fields += 1
        found = normal(values.get(key))
        if found != pair.campaign_value:
            result.mismatches.append(
                Mismatch(
                    "mismatch",
                    pair.key,
                    f"{side} side: the campaign's Change Data Value",
                    pair.person_id,
                    crm_id,
                    column,
                    found,
                    (pair.campaign_value,),
                )
            )


def _linked_crm_id(pair: Pair, seen: Observed) -> str | None:
    if pair.person_id is None:
        return None
    found = [
        c
        for e, c in seen.links.get(pair.person_id, [])
        if e == pair.entity and pair.expected_crm_id in (None, c)
    ]
    return found[-1] if found else None


def _check_pair(pair: Pair, seen: Observed, result: CheckResult) -> None:
    want = expect(pair)
    crm_id = pair.crm_id
    if pair.pending_create:
        crm_id = _linked_crm_id(pair, seen)
        if crm_id is None:
            result.mismatches.append(
                Mismatch(
                    "missing", pair.key, "Sync Person to Microsoft made no record", pair.person_id
                )
            )
            return
    person_id = pair.person_id
    if pair.person_deleted and crm_id is not None:
        back = seen.persons_linked_to(crm_id)
        if len(back) > 1:
            result.mismatches.append(
                Mismatch("duplicate", pair.key, f"persons {back} for one record", None, crm_id)
            )
        if want.person_exists is not None and bool(back) != want.person_exists:
            detail = "a person came back" if back else "no new person for the changed record"
            result.mismatches.append(Mismatch("unexpected", pair.key, detail, None, crm_id))
        person_id = back[0] if back else None
    elif person_id is None and crm_id is not None:
        back = seen.persons_linked_to(crm_id)
        person_id = back[0] if back else None
        if not back:
            result.mismatches.append(
                Mismatch("missing", pair.key, "no person for the Dynamics record", None, crm_id)
            )
    person = seen.people.get(person_id) if person_id is not None else None
    if want.person_exists and person is None and person_id is not None:
        result.mismatches.append(Mismatch("missing", pair.key, "person gone", person_id, crm_id))
    crm = seen.crm_record(pair.entity, crm_id) if pair.entity and crm_id else None
    if want.crm_exists and crm is None:
        result.mismatches.append(
            Mismatch("missing", pair.key, "Dynamics record gone", person_id, crm_id)
        )
    if not want.crm_exists:
        for old in [*pair.old_crm_ids, *([crm_id] if crm_id else [])]:
            if pair.entity and seen.crm_record(pair.entity, old) is not None:
                result.mismatches.append(
                    Mismatch("unexpected", pair.key, "a deleted record is back", person_id, old)
                )
    if person is not None:
        _field_checks(pair, "marketing", person, want.values, result, crm_id)
        if want.crm_is_deleted and not person.get("crmIsDeleted"):
            result.mismatches.append(
                Mismatch("mismatch", pair.key, "CRM is-deleted not set", person_id, crm_id)
            )
    if crm is not None and want.crm_exists:
        _field_checks(pair, "dynamics", crm, want.crm_values, result, crm_id)
    if pair.poison is not None:
        _check_rejected(pair, seen, result, crm_id)
    elif pair.campaign_value is not None and pair.untouched_record:
        _check_campaign(pair, seen, result, person, crm, crm_id)


def _check_rejected(pair: Pair, seen: Observed, result: CheckResult, crm_id: str | None) -> None:
    if pair.person_id not in seen.error_activities:
        result.mismatches.append(
            Mismatch(
                "invisible", pair.key, "no Microsoft Sync Error activity", pair.person_id, crm_id
            )
        )
    listed = [
        e
        for e in seen.open_errors
        if e.get("local_id") == pair.person_id or (crm_id and e.get("crm_id") == crm_id)
    ]
    if not listed:
        result.mismatches.append(
            Mismatch("invisible", pair.key, "not in sync errors", pair.person_id, crm_id)
        )


def _check_duplicates(pairs: list[Pair], seen: Observed, result: CheckResult) -> None:
    soak_emails = {p.email for p in pairs if p.origin != "seed"}
    per_email: Counter[str] = Counter()
    for records in seen.crm.values():
        for row in records.values():
            email = str(row.get("emailaddress1") or "")
            if email in soak_emails:
                per_email[email] += 1
    for email, count in per_email.items():
        if count > 1:
            result.mismatches.append(
                Mismatch("duplicate", -1, f"{count} Dynamics records with e-mail {email}")
            )
    for person_id, found in seen.links.items():
        by_entity = Counter(entity for entity, _ in found)
        for entity, count in by_entity.items():
            if count > 1:
                result.mismatches.append(
                    Mismatch("duplicate", -1, f"{count} {entity} links", person_id)
                )
    per_record = Counter(crm_id for found in seen.links.values() for _, crm_id in found)
    for crm_id, count in per_record.items():
        if count > 1:
            result.mismatches.append(
                Mismatch("duplicate", -1, f"{count} persons for one record", None, crm_id)
            )
