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
}


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
