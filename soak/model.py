"""An independent model of the sync rules: which final values the documented behaviour allows.

Written from the behaviour reference, not from the engine (it imports nothing of
``crmsync.sync``). The soak records every committed write of a tracked field as it makes it;
the order of the writes is known (one workload thread), the moments of the sync cycles are
not. From the writes alone the model gives, per field, the set of values the rules allow at
quiescence:

* no write since the record was agreed: its initial value;
* writes on one side only: that side's last value (B22, and nothing is lost: B18, B38);
* writes on both sides: the last writer's value (a cycle ran between the two last writes, so
  only one side had changed at each merge), or the collision winner's last value (no cycle ran
  between them: a collision, won by marketing for a lead, by Dynamics for a contact; B23).
  Nothing else: an older value in the result is a lost change.

Deletes never propagate (B26, B27); a person deleted on the marketing side comes back as a new
person only when its Dynamics record changes later; Sync Person to Microsoft creates exactly
one record (B31, B33); a rejected value stays on the marketing side and is visible (B37, B38).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# (Dynamics column, marketing field) of the tracked two-way fields of leads and contacts.
TRACKED: tuple[tuple[str, str], ...] = (
    ("firstname", "firstName"),
    ("jobtitle", "title"),
    ("telephone1", "phone"),
)
CRM = "crm"
MARKETING = "marketing"


def normal(value: Any) -> str | None:
    """A value as the rules compare it: surrounding blanks trimmed, empty text as empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@dataclass(frozen=True, slots=True)
class Write:
    """One committed write of a field: its order in the run, the side, the value."""

    seq: int
    side: str
    value: str | None


@dataclass
class Pair:
    """A person and its Dynamics record as the workload knows them.

    ``entity`` is ``lead``, ``contact`` or None (marketing only); ``crm_id`` / ``person_id``
    are None while unknown. ``initial`` holds the values both sides agreed on when the model
    started following the pair, by Dynamics column.
    """

    key: int
    origin: str
    email: str
    entity: str | None
    crm_id: str | None
    person_id: int | None
    initial: dict[str, str | None]
    writes: dict[str, list[Write]] = field(default_factory=dict)
    crm_deleted: bool = False
    old_crm_ids: list[str] = field(default_factory=list)
    person_deleted: bool = False
    crm_writes_after_person_delete: bool = False
    poison: str | None = None
    pending_create: bool = False
    expected_crm_id: str | None = None

    def record(self, seq: int, side: str, column: str, value: Any) -> None:
        """Note a committed write."""
        self.writes.setdefault(column, []).append(Write(seq, side, normal(value)))
        if side == CRM and self.person_deleted:
            self.crm_writes_after_person_delete = True

    @property
    def untouched(self) -> bool:
        """Whether no tracked field was written yet and the record is the one it started with
        (not qualified, not re-created): only then are deletes and qualification unambiguous."""
        return not any(self.writes.values()) and not self.old_crm_ids


def allowed_values(entity: str | None, initial: str | None, writes: list[Write]) -> set[str | None]:
    """The final values the rules allow for one field after ``writes`` (in order)."""
    marketing = [w for w in writes if w.side == MARKETING]
    crm = [w for w in writes if w.side == CRM]
    if not marketing and not crm:
        return {initial}
    if not crm:
        return {marketing[-1].value}
    if not marketing:
        return {crm[-1].value}
    last = marketing[-1] if marketing[-1].seq > crm[-1].seq else crm[-1]
    winner = marketing[-1] if entity == "lead" else crm[-1]
    return {last.value, winner.value}


def superseded(initial: str | None, writes: list[Write]) -> set[str | None]:
    """Values a field held earlier (so finding one at the end means a change was lost)."""
    return {initial, *(w.value for w in writes)}


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the rules allow for one pair at quiescence."""

    person_exists: bool | None  # None: either
    crm_exists: bool
    values: dict[str, set[str | None]]  # by Dynamics column, for every side that exists
    crm_values: dict[str, set[str | None]]  # the Dynamics side when it differs (rejected value)
    converged: bool
    crm_is_deleted: bool


def expect(pair: Pair) -> Expectation:
    """The expectation for ``pair`` from its writes and what happened to it."""
    values = {
        column: allowed_values(pair.entity, pair.initial.get(column), pair.writes.get(column, []))
        for column, _ in TRACKED
    }
    if pair.poison is not None:
        crm_values = {column: {pair.initial.get(column)} for column, _ in TRACKED}
        values = dict(crm_values)
        values["jobtitle"] = {normal(pair.poison)}
        return Expectation(True, True, values, crm_values, False, False)
    if pair.person_deleted:
        exists = pair.crm_writes_after_person_delete
        return Expectation(exists, True, values, values, exists, False)
    if pair.crm_deleted:
        return Expectation(True, False, values, {}, False, True)
    if pair.entity is None:
        return Expectation(True, False, values, {}, False, False)
    return Expectation(True, True, values, values, True, False)
