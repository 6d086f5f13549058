"""The checks at quiescence: both sides against the model, duplicates, rejected records.

:func:`observe` reads the final state: every lead and contact through the Web API, every person
with its Dynamics link and its *Microsoft Sync Error* activities from the marketing database,
and the open failures from ``crmsync sync errors --json``. :func:`compare` then holds every
pair against :func:`soak.model.expect` and lists each difference as a :class:`Mismatch`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from crmsync.store.db import open_database
from crmsync.store.tables import activities, crm_links, persons
from soak.model import TRACKED, Pair, expect, normal, superseded
from soak.processes import Workdir
from soak.sides import DynamicsSide

SYNC_ERROR_ACTIVITY = 500  # "Microsoft Sync Error" in the activity log
COLUMNS = [c for c, _ in TRACKED] + ["emailaddress1"]
FIELDS = [name for _, name in TRACKED]


@dataclass
class Observed:
    """The final state of both sides."""

    crm: dict[str, dict[str, dict[str, Any]]]  # entity -> id -> column -> value
    people: dict[int, dict[str, Any]]  # person id -> field -> value
    links: dict[int, list[tuple[str, str]]]  # person id -> [(entity, crm id)]
    error_activities: set[int]
    open_errors: list[dict[str, Any]]

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


def observe(work: Workdir, dynamics: DynamicsSide) -> Observed:
    """Read both sides at quiescence."""
    crm = {
        entity: dynamics.read_all(entity_set, COLUMNS)
        for entity, entity_set in (("lead", "leads"), ("contact", "contacts"))
    }
    engine = open_database(work.database_url)
    try:
        with engine.connect() as conn:
            people = {
                int(row.id): dict(row._mapping)
                for row in conn.execute(
                    select(
                        persons.c.id,
                        *(
                            persons.c[name].label(name)
                            for name in ("email", "crmIsDeleted", "crmType", *FIELDS)
                        ),
                    )
                )
            }
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
    finally:
        engine.dispose()
    open_errors = json.loads(work.cli("sync", "errors", "--json").stdout or "[]")
    return Observed(crm, people, links, error_activities, open_errors)


def _field_checks(
    pair: Pair,
    side: str,
    values: dict[str, Any],
    allowed: dict[str, set[str | None]],
    result: CheckResult,
    crm_id: str | None,
) -> None:
    for column, name in TRACKED:
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


def compare(pairs: list[Pair], seen: Observed) -> CheckResult:
    """Hold every pair against the model; also look for duplicate Dynamics records."""
    result = CheckResult()
    for pair in pairs:
        _check_pair(pair, seen, result)
    _check_duplicates(pairs, seen, result)
    return result


def _linked_crm_id(pair: Pair, seen: Observed) -> str | None:
    if pair.person_id is None:
        return None
    found = [
        c
        for e, c in seen.links.get(pair.person_id, [])
        if e == pair.entity and c == pair.expected_crm_id
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
