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

Three more parts of the rules:

* **Per-field sync rules** (B46): a field whose rule is ``dynamics-wins`` or ``marketing-wins``
  has that side as its collision winner whatever the record is; under ``never-blank`` a blank
  never overwrites a value, so where the rules above would allow a blank the model allows
  instead any non-blank value the field held (which one the engine keeps depends on when the
  cycles ran). A blank stays allowed only where no side may hold a value at the last merge:
  each side's latest value is a blank (its own last write, or the blank its record was
  created with when the other side had the record first, ``linked_at``). A person that comes
  back after its deletion is made from the Dynamics values as they are, and from then on a
  Dynamics blank meets the value it came back with. A marketing blank is refilled only when
  the Dynamics record next changes, which a deleted record never does.
* **A column deleted in Dynamics** (B14): from then on the field is marketing-only. Its
  marketing value is the last marketing write after the delete; with none, the value the
  person held at the delete: what the rules make of its own writes and of the Dynamics writes
  read by then (read in order, so a first part of them: possibly a collision winner whose
  later Dynamics write was never read). A Dynamics value that was never read before the
  column went is gone with the column, and that is not a lost change.
* **Campaigns** (B31, B32): a person created for the soak's trigger campaign gets exactly one
  Dynamics lead from its *Sync Person to Microsoft* step, one activity with the campaign's id,
  and the value its *Change Data Value* step set, on both sides.
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
# Per-field sync rules the soak gives these columns of both tables (B46); the others keep
# their table's rule (marketing wins for a lead, Dynamics for a contact).
RULES: dict[str, str] = {
    "address1_city": "dynamics-wins",
    "address1_postalcode": "marketing-wins",
    "address1_line1": "never-blank",
}
TRACKED = (
    *TRACKED,
    ("address1_city", "city"),
    ("address1_postalcode", "postalCode"),
    ("address1_line1", "address"),
)
# A custom column made for the soak on both tables, selected, written on both sides, then
# deleted in Dynamics part-way through the run (B14).
DROPPED: tuple[str, str] = ("new_soaknote", "newSoaknote")
# The trigger campaign's Change Data Value step: a field the workload itself never writes.
CAMPAIGN_FIELD: tuple[str, str] = ("mobilephone", "mobilePhone")
CAMPAIGN_NAME = "Soak: form fill to Dynamics"
CAMPAIGN_LAST_NAME = "Soak campaign"  # the trigger campaign's smart list: this last name
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
    dropped_at: int | None = None  # when the custom column was deleted in Dynamics
    linked_at: int | None = 0  # from when both sides surely had the record (None: not yet)
    campaign_value: str | None = None  # what the trigger campaign's Change Data Value set

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

    @property
    def untouched_record(self) -> bool:
        """Whether the person and its first Dynamics record are both still there (neither
        deleted nor replaced by a qualification or a new record)."""
        return not (self.person_deleted or self.crm_deleted or self.old_crm_ids)


def allowed_values(
    entity: str | None,
    initial: str | None,
    writes: list[Write],
    rule: str | None = None,
    linked_at: int | None = 0,
) -> set[str | None]:
    """The final values the rules allow for one field after ``writes`` (in order), under the
    field's own sync ``rule`` (None: the table's rule); ``linked_at`` as in :class:`Pair`.

    Under ``never-blank`` a merge keeps a value whenever one side holds one, so the field may
    end blank only when both sides may hold a blank at the last merge: each side's latest
    value is a blank (its own last write, or the blank its record was created with when the
    other side had the record first) and no cycle ran between those blanks.
    """
    allowed = _two_way(entity, initial, writes, rule)
    if rule != "never-blank" or None not in allowed:
        return allowed
    held = {v for v in (initial, *(w.value for w in writes)) if v is not None}
    kept = (allowed - {None}) | held if held else allowed
    if _latest(MARKETING, initial, writes, linked_at) is None and (
        _latest(CRM, initial, writes, linked_at) is None
    ):
        return kept | {None}
    return kept


def _latest(side: str, initial: str | None, writes: list[Write], linked_at: int | None) -> Any:
    """A side's latest value from the writes alone: its own last write, or a write made on the
    other side before ``linked_at`` (its record was made from that value), else ``initial``."""
    made = [w for w in writes if w.side == side or linked_at is None or w.seq <= linked_at]
    return made[-1].value if made else initial


def _two_way(
    entity: str | None, initial: str | None, writes: list[Write], rule: str | None
) -> set[str | None]:
    marketing = [w for w in writes if w.side == MARKETING]
    crm = [w for w in writes if w.side == CRM]
    if not marketing and not crm:
        return {initial}
    if not crm:
        return {marketing[-1].value}
    if not marketing:
        return {crm[-1].value}
    last = marketing[-1] if marketing[-1].seq > crm[-1].seq else crm[-1]
    if rule == "marketing-wins":
        winner = marketing[-1]
    elif rule == "dynamics-wins":
        winner = crm[-1]
    else:
        winner = marketing[-1] if entity == "lead" else crm[-1]
    return {last.value, winner.value}


def dropped_values(
    entity: str | None, initial: str | None, writes: list[Write], dropped_at: int
) -> set[str | None]:
    """The marketing values the rules allow for a field whose column was deleted in Dynamics
    at ``dropped_at`` (B14): from then on only marketing writes count."""
    after = [w for w in writes if w.seq > dropped_at and w.side == MARKETING]
    if after:
        return {after[-1].value}
    # The person holds what the cycles before the delete made of its own writes and of the
    # Dynamics writes read by then (read in order: a first part of them); a Dynamics value
    # never read before the column went is gone with it.
    before = [w for w in writes if w.seq < dropped_at]
    crm = [w for w in before if w.side == CRM]
    held: set[str | None] = set()
    for read in range(len(crm) + 1):
        seen = [w for w in before if w.side == MARKETING or w in crm[:read]]
        held |= allowed_values(entity, initial, seen)
    return held


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


def _person_values(pair: Pair, column: str, rule: str | None) -> set[str | None]:
    """The allowed values of one tracked field of ``pair`` under its field ``rule``."""
    initial, writes = pair.initial.get(column), pair.writes.get(column, [])
    if not pair.person_deleted:
        allowed = allowed_values(pair.entity, initial, writes, rule, pair.linked_at)
        mine = [w for w in writes if w.side == MARKETING]
        if rule == "never-blank" and pair.crm_deleted and mine and mine[-1].value is None:
            # a marketing blank is refilled only when the Dynamics record next changes; a
            # deleted record never does
            allowed.add(None)
        return allowed
    # A person that comes back after its deletion is made from the Dynamics values as they
    # are; from then on it is a person like any other, so a later Dynamics blank of a
    # never-blank field meets the value it came back with and the cycles keep that value.
    # When it came back (a cycle after a Dynamics change) is not known.
    allowed = allowed_values(pair.entity, initial, writes)
    if rule == "never-blank":
        allowed |= allowed_values(pair.entity, initial, writes, rule, pair.linked_at)
    return allowed


def expect(pair: Pair) -> Expectation:
    """The expectation for ``pair`` from its writes and what happened to it."""
    values = {column: _person_values(pair, column, RULES.get(column)) for column, _ in TRACKED}
    column = DROPPED[0]
    if pair.dropped_at is None:
        values[column] = allowed_values(
            pair.entity, pair.initial.get(column), pair.writes.get(column, [])
        )
    else:
        values[column] = dropped_values(
            pair.entity, pair.initial.get(column), pair.writes.get(column, []), pair.dropped_at
        )
    if pair.poison is not None:
        crm_values = {column: {pair.initial.get(column)} for column in values}
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
