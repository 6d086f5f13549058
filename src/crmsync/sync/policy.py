"""Who wins a data collision, and under which named rule (B23, B24).

A *collision* is one field changed on both sides since the baseline, to different values
(B22). The winner depends only on what kind of record it is:

* a person whose CRM type is ``Lead``: **marketing wins** (R60: marketing is authoritative for
  people it is still working);
* a person whose CRM type is ``Contact``: **Dynamics wins** (R60: the sales system is the system
  of record for contacts);
* every one-way entity (account, systemuser, team, opportunity, custom entities): **Dynamics
  always wins** (R61), and marketing-side edits are never sent (B2, B3).

Each policy names its rule so that the activity log and the sync history can say *why* a value
won (B24).

**Per-field rules** (B46, beyond Marketo): the admin may override the entity's rule for one
selected field with a :class:`FieldRule`: a :class:`SyncRule` (Dynamics wins, marketing wins,
Dynamics → marketing only, marketing → Dynamics only; the default keeps the entity's rule) and
the *never blank* option (a blank never overwrites a value). Rules are named in kebab case
(``dynamics-wins``), the same name on the command line, in the store and in every collision
they decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from crmsync.errors import InvalidValueError

TWO_WAY_ENTITIES = frozenset({"lead", "contact"})
"""Dynamics tables that sync both ways with a person (B1)."""

PERSON = "person"
"""The marketing-side name of a lead or contact, accepted by :func:`policy_for`."""


class Side(Enum):
    """One side of the sync."""

    CRM = "crm"
    MARKETING = "marketing"


class CollisionRule(Enum):
    """The named rule that decided a collision (recorded with it, B24)."""

    MARKETING_WINS_FOR_LEADS = "marketing_wins_for_leads"
    DYNAMICS_WINS_FOR_CONTACTS = "dynamics_wins_for_contacts"
    DYNAMICS_WINS_ONE_WAY_ENTITY = "dynamics_wins_one_way_entity"
    DYNAMICS_WINS_READ_ONLY_FIELD = "dynamics_wins_read_only_field"
    # per-field rules (B46): the value is the rule's own name
    DYNAMICS_WINS = "dynamics-wins"
    MARKETING_WINS = "marketing-wins"
    DYNAMICS_TO_MARKETING = "dynamics-to-marketing"
    MARKETING_TO_DYNAMICS = "marketing-to-dynamics"
    NEVER_BLANK = "never-blank"

    @property
    def description(self) -> str:
        """A sentence for the activity log and the sync history."""
        return _RULE_TEXT[self]


_RULE_TEXT = {
    CollisionRule.MARKETING_WINS_FOR_LEADS: (
        "Changed on both sides: the marketing value wins for a person whose CRM type is Lead."
    ),
    CollisionRule.DYNAMICS_WINS_FOR_CONTACTS: (
        "Changed on both sides: the Dynamics value wins for a person whose CRM type is Contact."
    ),
    CollisionRule.DYNAMICS_WINS_ONE_WAY_ENTITY: (
        "Changed on both sides: Dynamics always wins for records synced one way."
    ),
    CollisionRule.DYNAMICS_WINS_READ_ONLY_FIELD: (
        "Changed on both sides: the field syncs from Dynamics only, so Dynamics wins."
    ),
    CollisionRule.DYNAMICS_WINS: (
        "Changed on both sides: the field's sync rule says the Dynamics value wins."
    ),
    CollisionRule.MARKETING_WINS: (
        "Changed on both sides: the field's sync rule says the marketing value wins."
    ),
    CollisionRule.DYNAMICS_TO_MARKETING: (
        "Changed on both sides: the field's sync rule is Dynamics to marketing only, so the "
        "Dynamics value wins and marketing edits are never sent."
    ),
    CollisionRule.MARKETING_TO_DYNAMICS: (
        "Changed on both sides: the field's sync rule is marketing to Dynamics only, so the "
        "marketing value wins and Dynamics edits are overwritten."
    ),
    CollisionRule.NEVER_BLANK: (
        "Changed on both sides, one of them to a blank: the field's rule never overwrites a "
        "value with a blank, so the value was kept."
    ),
}


class SyncRule(Enum):
    """Which side owns one selected field (B46); the value is the rule's name."""

    ENTITY_DEFAULT = "entity-default"
    DYNAMICS_WINS = "dynamics-wins"
    MARKETING_WINS = "marketing-wins"
    DYNAMICS_TO_MARKETING = "dynamics-to-marketing"
    MARKETING_TO_DYNAMICS = "marketing-to-dynamics"

    @property
    def description(self) -> str:
        """What the rule does, in a few words (for ``--help`` and the field lists)."""
        return _SYNC_RULE_TEXT[self]

    @property
    def writes_dynamics(self) -> bool:
        """Whether marketing values of the field may be sent to Dynamics under this rule."""
        return self is not SyncRule.DYNAMICS_TO_MARKETING

    @property
    def needs_two_way_field(self) -> bool:
        """Whether the rule only makes sense for a field marketing may write to Dynamics."""
        return self in (SyncRule.MARKETING_WINS, SyncRule.MARKETING_TO_DYNAMICS)


_SYNC_RULE_TEXT = {
    SyncRule.ENTITY_DEFAULT: (
        "the entity's rule: marketing wins for leads, Dynamics for contacts, Dynamics always "
        "for one-way tables"
    ),
    SyncRule.DYNAMICS_WINS: "both ways; a collision keeps the Dynamics value",
    SyncRule.MARKETING_WINS: "both ways; a collision keeps the marketing value",
    SyncRule.DYNAMICS_TO_MARKETING: (
        "Dynamics to marketing only; marketing edits are never sent and are overwritten"
    ),
    SyncRule.MARKETING_TO_DYNAMICS: (
        "marketing to Dynamics only; Dynamics edits never reach marketing and are overwritten"
    ),
}

NEVER_BLANK = "never-blank"
"""The name of the option that keeps a value from being overwritten by a blank (B46)."""


@dataclass(frozen=True, slots=True)
class FieldRule:
    """The sync rule of one selected field: who owns it, and whether a blank may overwrite a
    value (B46). The default is the entity's rule with blanks synced like any value."""

    sync_rule: SyncRule = SyncRule.ENTITY_DEFAULT
    never_blank: bool = False

    @property
    def is_default(self) -> bool:
        """Whether the field simply follows the entity's rule."""
        return self.sync_rule is SyncRule.ENTITY_DEFAULT and not self.never_blank

    @property
    def name(self) -> str:
        """The rule as written on the command line: ``marketing-wins,never-blank``."""
        if self.never_blank:
            return f"{self.sync_rule.value},{NEVER_BLANK}"
        return self.sync_rule.value

    @property
    def collision_rule(self) -> CollisionRule | None:
        """The rule a collision of the field is recorded with (``None``: the entity's)."""
        return _COLLISION_RULES.get(self.sync_rule)

    @classmethod
    def parse(cls, text: str) -> FieldRule:
        """Read a rule as written on the command line (``dynamics-wins``, ``never-blank``,
        ``marketing-wins,never-blank``); raises :class:`~crmsync.errors.InvalidValueError`
        naming the accepted rules for anything else."""
        parts = [p.strip().lower().replace("_", "-") for p in text.split(",") if p.strip()]
        never_blank = NEVER_BLANK in parts
        others = [p for p in parts if p != NEVER_BLANK]
        known = {rule.value: rule for rule in SyncRule}
        if not parts or len(others) > 1 or any(p not in known for p in others):
            raise InvalidValueError(
                f"unknown sync rule {text!r}: use one of {', '.join(known)}, optionally "
                f"followed by ',{NEVER_BLANK}' (or {NEVER_BLANK} alone)"
            )
        return cls(known[others[0]] if others else SyncRule.ENTITY_DEFAULT, never_blank)


_COLLISION_RULES = {
    SyncRule.DYNAMICS_WINS: CollisionRule.DYNAMICS_WINS,
    SyncRule.MARKETING_WINS: CollisionRule.MARKETING_WINS,
    SyncRule.DYNAMICS_TO_MARKETING: CollisionRule.DYNAMICS_TO_MARKETING,
    SyncRule.MARKETING_TO_DYNAMICS: CollisionRule.MARKETING_TO_DYNAMICS,
}

DEFAULT_FIELD_RULE = FieldRule()
"""The rule of a field the admin gave none: the entity's, blanks synced as values."""


@dataclass(frozen=True, slots=True)
class CollisionPolicy:
    """How collisions are decided for one kind of record.

    ``two_way`` is false for one-way entities: their merges never write to Dynamics and every
    field takes the Dynamics value. ``winner`` and ``rule`` decide collisions on fields that sync
    both ways; fields that sync from Dynamics only are always won by Dynamics under
    :attr:`CollisionRule.DYNAMICS_WINS_READ_ONLY_FIELD`.
    """

    entity: str
    two_way: bool
    winner: Side
    rule: CollisionRule


_LEAD_POLICY = CollisionPolicy("lead", True, Side.MARKETING, CollisionRule.MARKETING_WINS_FOR_LEADS)
_CONTACT_POLICY = CollisionPolicy(
    "contact", True, Side.CRM, CollisionRule.DYNAMICS_WINS_FOR_CONTACTS
)


def policy_for(entity: str, crm_type: str | None = None) -> CollisionPolicy:
    """Return the collision policy for a record of ``entity`` (a Dynamics logical name).

    For ``lead``, ``contact`` or ``person`` the person's CRM type decides when it is given
    (R60 speaks of "persons whose Microsoft Type = Lead"), so a person whose lead was just
    qualified into a contact is already merged under the contact rule; without a CRM type the
    entity decides. Every other entity, including custom ones, is one-way (B2) and Dynamics
    always wins. A ``person`` with no CRM type is marketing-only and has nothing to merge with,
    which raises :class:`~crmsync.errors.InvalidValueError`.
    """
    name = entity.strip().lower()
    if name in TWO_WAY_ENTITIES or name == PERSON:
        kind = (crm_type or "").strip().lower() or name
        if kind == "lead":
            return _LEAD_POLICY
        if kind == "contact":
            return _CONTACT_POLICY
        raise InvalidValueError(
            f"CRM type {crm_type!r} is neither Lead nor Contact; a marketing-only person "
            "has no Dynamics record to merge with",
            entity=entity,
        )
    return CollisionPolicy(name, False, Side.CRM, CollisionRule.DYNAMICS_WINS_ONE_WAY_ENTITY)
