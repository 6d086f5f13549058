"""The per-field three-way merge of a record (B22–B24). Pure: no I/O, no clock, no globals.

All three inputs are keyed by **marketing field name** and hold **marketing values**: the
caller converts the Dynamics row with :meth:`~crmsync.sync.mapping.EntityMapping.to_marketing`
first, and converts ``crm_writes`` back with :meth:`~crmsync.sync.mapping.EntityMapping.to_crm`.
A field absent from a mapping reads as empty.

Per field, against the baseline (the values both sides agreed on at the last sync):

* unchanged on both sides → nothing;
* changed on one side only → that side's value wins and is written to the other side;
* changed on both sides to the same value → no write and no collision;
* changed on both sides to different values → a :class:`Collision`, won as the policy says
  (B23), and recorded with its rule (B24).

Fields that sync from Dynamics only (every field of a one-way entity, and a two-way entity's
read-only fields) always end with the Dynamics value: a marketing-side edit is local and is
overwritten whenever the record is merged (B3, R40); they never produce a Dynamics write.

**First link (no baseline).** The Dynamics value wins for every field, because an initial
sync, like Marketo's, runs Dynamics → marketing: the CRM record is the existing system of
record and the person is being created or attached for it. The exception is a record the
marketing side created itself (Sync Person to Microsoft, B31; ``origin=Side.MARKETING``): there
the person's non-empty values win and Dynamics only fills what the person left empty (such as
a defaulted rating or status). A field missing from an existing baseline (newly selected, B12)
is treated the same way as a first link. No collisions are reported without a baseline,
since neither side can be said to have changed.

**Normalisation** before comparing, and in every write and baseline: surrounding whitespace
is stripped from text and empty text is ``None`` (Dataverse stores no empty strings, and a
trailing space is not an edit anyone means to sync). Case is kept and compared exactly, for
emails too: a salesperson correcting ``Bob@X.com`` to ``bob@x.com`` made an edit that should
reach the other side. Numbers compare by value (``5 == 5.0``) but never equal a boolean.
Type-specific canonical forms (date-time offsets, option-label spelling) are the converters'
job (:func:`crmsync.sync.convert.normalize_marketing`).

**Per-field rules** (B46) override the above for the fields they name (``rules``, keyed by
marketing field; a field without one follows the policy):

* *Dynamics wins* / *marketing wins*: the field syncs both ways as above, and a collision is
  won by the named side instead of the policy's.
* *Dynamics → marketing only*: the field behaves as a read-only field: the Dynamics value
  always stands, marketing edits are never sent and are overwritten when the record is merged.
* *Marketing → Dynamics only*: the mirror image: the marketing value always stands, Dynamics
  edits never reach the person and are overwritten in Dynamics when the record is merged.
  Without a baseline, a blank marketing value is filled from Dynamics (there is nothing of
  marketing's to keep yet).
* *Never blank*: a blank never overwrites a value. On a field that syncs both ways, when the
  rule would leave the field blank while one side holds a value, that value is kept and both
  sides end with it; on a one-way field, a blank from the owning side is not copied over. A
  collision decided this way is recorded under the ``never-blank`` rule.

Every collision is recorded with the per-field rule's name when the field has one, so the
activity log says which rule decided. A rule that would send marketing values (marketing
wins, marketing → Dynamics only) cannot make a read-only field or a one-way entity write to
Dynamics: there the Dynamics value stands as before (the field selection refuses such rules).

**Echo suppression** (B19) follows: a value we wrote comes back equal to the new baseline, so
it is not a change and produces no write.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from crmsync.sync.policy import CollisionPolicy, CollisionRule, FieldRule, Side, SyncRule


@dataclass(frozen=True, slots=True)
class Collision:
    """One field changed on both sides to different values, and how it was decided (B24)."""

    field: str
    baseline_value: object
    crm_value: object
    marketing_value: object
    winner: Side
    rule: CollisionRule

    @property
    def winning_value(self) -> object:
        """The value both sides hold after the merge."""
        return self.crm_value if self.winner is Side.CRM else self.marketing_value

    @property
    def losing_value(self) -> object:
        """The value that was overwritten."""
        return self.marketing_value if self.winner is Side.CRM else self.crm_value

    def describe(self) -> str:
        """One sentence for the person's activity log and the sync history (B24)."""
        winner = "Dynamics" if self.winner is Side.CRM else "marketing"
        return (
            f"{self.field} changed in both systems: Dynamics {self.crm_value!r}, marketing "
            f"{self.marketing_value!r} (was {self.baseline_value!r}); kept the {winner} value. "
            f"{self.rule.description}"
        )

    def as_record(self) -> dict[str, object]:
        """The collision as JSON-ready attributes for the activity log and sync history."""
        return {
            "field": self.field,
            "baselineValue": self.baseline_value,
            "crmValue": self.crm_value,
            "marketingValue": self.marketing_value,
            "winner": self.winner.value,
            "rule": self.rule.value,
            "description": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class MergeResult:
    """What to write to each side, the new baseline, and the collisions decided."""

    crm_writes: dict[str, object]
    marketing_writes: dict[str, object]
    new_baseline: dict[str, object]
    collisions: tuple[Collision, ...]

    @property
    def has_writes(self) -> bool:
        """Whether either side needs a write."""
        return bool(self.crm_writes or self.marketing_writes)


def normalize_value(value: object) -> object:
    """The comparison form of a marketing value: stripped text, ``None`` for empty text."""
    if value.__class__ is str:
        return value.strip() or None
    return value


def same_value(left: object, right: object) -> bool:
    """Whether two normalised values are equal (numbers by value, never equal to a bool)."""
    if left is right:
        return True
    return bool(left == right) and ((left.__class__ is bool) is (right.__class__ is bool))


_NO_BASELINE: Mapping[str, object] = {}


def merge_record(
    baseline: Mapping[str, object] | None,
    crm: Mapping[str, object],
    marketing: Mapping[str, object],
    policy: CollisionPolicy,
    fields: Collection[str],
    *,
    one_way_fields: Collection[str] = frozenset(),
    origin: Side = Side.CRM,
    rules: Mapping[str, FieldRule] | None = None,
) -> MergeResult:
    """Merge one record's synced ``fields`` three ways against ``baseline`` (B22, B23).

    ``one_way_fields`` are fields that sync from Dynamics only within a two-way entity (see
    :attr:`~crmsync.sync.mapping.EntityMapping.crm_only_fields`); for a one-way policy every
    field is. ``origin`` says who created the link when there is no baseline: ``Side.CRM``
    (the default) for records arriving from Dynamics, ``Side.MARKETING`` for a record the
    marketing side just created in Dynamics.

    Returns the writes for each side (normalised values keyed by field), the new baseline
    (the agreed value of every field) and the collisions, in ``fields`` order.
    """
    base = _NO_BASELINE if baseline is None else baseline
    two_way = policy.two_way
    winner = policy.winner
    one_way_rule = (
        CollisionRule.DYNAMICS_WINS_READ_ONLY_FIELD
        if two_way
        else CollisionRule.DYNAMICS_WINS_ONE_WAY_ENTITY
    )
    marketing_created = origin is Side.MARKETING
    crm_only = (
        one_way_fields if isinstance(one_way_fields, set | frozenset) else frozenset(one_way_fields)
    )
    crm_writes: dict[str, object] = {}
    marketing_writes: dict[str, object] = {}
    new_baseline: dict[str, object] = {}
    collisions: list[Collision] = []

    for name in fields:
        crm_value = crm.get(name)
        if crm_value.__class__ is str:
            crm_value = crm_value.strip() or None
        marketing_value = marketing.get(name)
        if marketing_value.__class__ is str:
            marketing_value = marketing_value.strip() or None
        has_baseline = name in base
        if has_baseline:
            base_value = base[name]
            if base_value.__class__ is str:
                base_value = base_value.strip() or None
        else:
            base_value = None

        rule = rules.get(name) if rules else None
        if rule is not None and not rule.is_default:
            new_baseline[name] = _merge_ruled_field(
                _FieldValues(name, has_baseline, base_value, crm_value, marketing_value),
                rule,
                policy,
                dynamics_only=not two_way or name in crm_only,
                one_way_rule=one_way_rule,
                marketing_created=marketing_created,
                out=_Writes(crm_writes, marketing_writes, collisions),
            )
            continue

        if not two_way or name in crm_only:
            # Dynamics only: its value always stands.
            final = crm_value
            if not same_value(marketing_value, crm_value):
                marketing_writes[name] = crm_value
                if (
                    has_baseline
                    and not same_value(marketing_value, base_value)
                    and not same_value(crm_value, base_value)
                ):
                    collisions.append(
                        Collision(
                            name,
                            base_value,
                            crm_value,
                            marketing_value,
                            Side.CRM,
                            one_way_rule,
                        )
                    )
        elif not has_baseline:
            if marketing_created and marketing_value is not None:
                final = marketing_value
                if not same_value(crm_value, marketing_value):
                    crm_writes[name] = marketing_value
            else:
                final = crm_value
                if not same_value(marketing_value, crm_value):
                    marketing_writes[name] = crm_value
        else:
            # same_value(), inlined: this is the hot path of every continuous-sync merge.
            crm_is_bool = crm_value.__class__ is bool
            base_is_bool = base_value.__class__ is bool
            crm_changed = not (
                crm_value is base_value or (crm_value == base_value and crm_is_bool is base_is_bool)
            )
            marketing_changed = not (
                marketing_value is base_value
                or (
                    marketing_value == base_value
                    and (marketing_value.__class__ is bool) is base_is_bool
                )
            )
            if not crm_changed:
                final = marketing_value
                if marketing_changed:
                    crm_writes[name] = marketing_value
            elif not marketing_changed:
                final = crm_value
                marketing_writes[name] = crm_value
            elif same_value(crm_value, marketing_value):
                final = crm_value
            elif winner is Side.CRM:
                final = crm_value
                marketing_writes[name] = crm_value
                collisions.append(
                    Collision(name, base_value, crm_value, marketing_value, winner, policy.rule)
                )
            else:
                final = marketing_value
                crm_writes[name] = marketing_value
                collisions.append(
                    Collision(name, base_value, crm_value, marketing_value, winner, policy.rule)
                )
        new_baseline[name] = final

    return MergeResult(crm_writes, marketing_writes, new_baseline, tuple(collisions))


@dataclass(frozen=True, slots=True)
class _FieldValues:
    """One field's normalised values on each side and in the baseline."""

    name: str
    has_baseline: bool
    base: object
    crm: object
    marketing: object

    @property
    def crm_changed(self) -> bool:
        return not same_value(self.crm, self.base)

    @property
    def marketing_changed(self) -> bool:
        return not same_value(self.marketing, self.base)

    @property
    def both_changed(self) -> bool:
        return (
            self.has_baseline
            and self.crm_changed
            and self.marketing_changed
            and not same_value(self.crm, self.marketing)
        )

    def collision(self, winner: Side, rule: CollisionRule) -> Collision:
        return Collision(self.name, self.base, self.crm, self.marketing, winner, rule)


@dataclass(frozen=True, slots=True)
class _Writes:
    """Where a merged field's writes and collision go."""

    crm: dict[str, object]
    marketing: dict[str, object]
    collisions: list[Collision]


def _merge_ruled_field(
    values: _FieldValues,
    rule: FieldRule,
    policy: CollisionPolicy,
    *,
    dynamics_only: bool,
    one_way_rule: CollisionRule,
    marketing_created: bool,
    out: _Writes,
) -> object:
    """Merge one field that has a per-field rule (B46); returns its new baseline value."""
    kind = rule.sync_rule
    if dynamics_only or kind is SyncRule.DYNAMICS_TO_MARKETING:
        decided = (
            rule.collision_rule
            if kind in (SyncRule.DYNAMICS_TO_MARKETING, SyncRule.DYNAMICS_WINS)
            else None
        )
        return _one_way(values, Side.CRM, decided or one_way_rule, rule.never_blank, out)
    if kind is SyncRule.MARKETING_TO_DYNAMICS:
        if values.has_baseline or values.marketing is not None:
            decided = CollisionRule.MARKETING_TO_DYNAMICS
            return _one_way(values, Side.MARKETING, decided, rule.never_blank, out)
        # nothing of marketing's to keep yet: Dynamics fills the blank
        if values.crm is not None:
            out.marketing[values.name] = values.crm
        return values.crm
    return _two_way(values, rule, policy, marketing_created, out)


def _one_way(
    values: _FieldValues, owner: Side, rule: CollisionRule, never_blank: bool, out: _Writes
) -> object:
    """The ``owner``'s value stands and is copied to the other side, unless it is a blank the
    rule keeps from overwriting a value."""
    if owner is Side.CRM:
        kept, other, target = values.crm, values.marketing, out.marketing
    else:
        kept, other, target = values.marketing, values.crm, out.crm
    if same_value(kept, other):
        return kept
    collided = values.both_changed
    if never_blank and kept is None:
        if collided:
            loser = Side.MARKETING if owner is Side.CRM else Side.CRM
            out.collisions.append(values.collision(loser, CollisionRule.NEVER_BLANK))
        return kept
    target[values.name] = kept
    if collided:
        out.collisions.append(values.collision(owner, rule))
    return kept


def _two_way(
    values: _FieldValues,
    rule: FieldRule,
    policy: CollisionPolicy,
    marketing_created: bool,
    out: _Writes,
) -> object:
    """A field that syncs both ways: one-sided changes travel, collisions are won by the rule's
    side (the policy's for the entity default), and never-blank keeps values from blanks."""
    name = values.name
    collision: Collision | None = None
    if not values.has_baseline:
        take_marketing = marketing_created and values.marketing is not None
        final = values.marketing if take_marketing else values.crm
    elif not values.crm_changed:
        final = values.marketing
    elif not values.marketing_changed or same_value(values.crm, values.marketing):
        final = values.crm
    else:
        if rule.sync_rule is SyncRule.DYNAMICS_WINS:
            winner = Side.CRM
        elif rule.sync_rule is SyncRule.MARKETING_WINS:
            winner = Side.MARKETING
        else:
            winner = policy.winner
        final = values.crm if winner is Side.CRM else values.marketing
        collision = values.collision(winner, rule.collision_rule or policy.rule)
    if rule.never_blank and final is None:
        if values.crm is not None:
            final = values.crm
        elif values.marketing is not None:
            final = values.marketing
        if collision is not None and final is not None:
            winner = Side.CRM if same_value(final, values.crm) else Side.MARKETING
            collision = values.collision(winner, CollisionRule.NEVER_BLANK)
    if not same_value(values.crm, final):
        out.crm[name] = final
    if not same_value(values.marketing, final):
        out.marketing[name] = final
    if collision is not None:
        out.collisions.append(collision)
    return final
