"""Collision policy: who wins, under which named rule (B23, B24; R60, R61)."""

from __future__ import annotations

import pytest

from crmsync.errors import InvalidValueError
from crmsync.sync.policy import CollisionRule, Side, policy_for


def test_marketing_wins_for_leads() -> None:
    """B23/R60: a person whose CRM type is Lead — the marketing value wins."""
    policy = policy_for("lead")
    assert policy.two_way
    assert policy.winner is Side.MARKETING
    assert policy.rule is CollisionRule.MARKETING_WINS_FOR_LEADS


def test_dynamics_wins_for_contacts() -> None:
    """B23/R60: a person whose CRM type is Contact — the Dynamics value wins."""
    policy = policy_for("contact", "Contact")
    assert policy.two_way
    assert policy.winner is Side.CRM
    assert policy.rule is CollisionRule.DYNAMICS_WINS_FOR_CONTACTS


@pytest.mark.parametrize("entity", ["account", "systemuser", "team", "opportunity", "new_project"])
def test_dynamics_always_wins_for_one_way_entities(entity: str) -> None:
    """B2/B23/R61: one-way entities (custom ones too) never write to Dynamics; Dynamics wins."""
    policy = policy_for(entity)
    assert not policy.two_way
    assert policy.winner is Side.CRM
    assert policy.rule is CollisionRule.DYNAMICS_WINS_ONE_WAY_ENTITY


@pytest.mark.parametrize(
    ("entity", "crm_type", "winner"),
    [
        ("person", "Lead", Side.MARKETING),
        ("person", "contact", Side.CRM),
        ("lead", "Contact", Side.CRM),  # a qualified lead's person is now a contact (B30)
        ("Contact", None, Side.CRM),
        ("LEAD", " lead ", Side.MARKETING),
    ],
)
def test_the_persons_crm_type_decides(entity: str, crm_type: str | None, winner: Side) -> None:
    """R60 speaks of persons whose CRM type is Lead, so the CRM type decides when given."""
    assert policy_for(entity, crm_type).winner is winner


def test_a_marketing_only_person_has_no_policy() -> None:
    """B7: CRM type empty means no Dynamics record, so there is nothing to merge with."""
    with pytest.raises(InvalidValueError, match="neither Lead nor Contact"):
        policy_for("person", None)


def test_every_rule_explains_itself() -> None:
    """B24: each collision names its rule with a sentence for the activity log."""
    texts = {rule.description for rule in CollisionRule}
    assert len(texts) == len(CollisionRule)
    assert "Lead" in CollisionRule.MARKETING_WINS_FOR_LEADS.description
    assert "Contact" in CollisionRule.DYNAMICS_WINS_FOR_CONTACTS.description
    assert "one way" in CollisionRule.DYNAMICS_WINS_ONE_WAY_ENTITY.description
