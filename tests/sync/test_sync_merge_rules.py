"""Per-field sync rules in the three-way merge (B46), property-tested for every rule: fields
that sync both ways end equal, collisions are won by the rule's side and recorded under its
name, one-way rules never write the other side, never-blank never replaces a value with a
blank."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.errors import InvalidValueError
from crmsync.sync.merge import MergeResult, merge_record, normalize_value, same_value
from crmsync.sync.policy import (
    CollisionPolicy,
    CollisionRule,
    FieldRule,
    Side,
    SyncRule,
    policy_for,
)

POLICIES = [policy_for("lead"), policy_for("contact"), policy_for("account")]
VALUES = st.sampled_from([None, "", " ", "a", " a ", "b", 0, 1, 1.0, True, False])
FIELD_NAMES = ["email", "firstName", "title", "city", "website"]
RULES = st.builds(FieldRule, st.sampled_from(list(SyncRule)), st.booleans())
NO_DEADLINE = settings(deadline=None)

WINNERS = {
    SyncRule.DYNAMICS_WINS: Side.CRM,
    SyncRule.MARKETING_WINS: Side.MARKETING,
    SyncRule.DYNAMICS_TO_MARKETING: Side.CRM,
    SyncRule.MARKETING_TO_DYNAMICS: Side.MARKETING,
}


@dataclass(frozen=True)
class Case:
    """A record's baseline, both sides' values, the policy, read-only fields and rules."""

    baseline: dict[str, object] | None
    crm: dict[str, object]
    marketing: dict[str, object]
    policy: CollisionPolicy
    fields: tuple[str, ...]
    one_way_fields: frozenset[str]
    rules: dict[str, FieldRule]

    def merge(self, **overrides: object) -> MergeResult:
        args: dict[str, object] = {
            "baseline": self.baseline,
            "crm": self.crm,
            "marketing": self.marketing,
        }
        args.update(overrides)
        return merge_record(
            args["baseline"],  # type: ignore[arg-type]
            args["crm"],  # type: ignore[arg-type]
            args["marketing"],  # type: ignore[arg-type]
            self.policy,
            self.fields,
            one_way_fields=self.one_way_fields,
            rules=self.rules,
        )

    def rule(self, name: str) -> FieldRule:
        return self.rules.get(name, FieldRule())

    def dynamics_only(self, name: str) -> bool:
        """Whether the field cannot write Dynamics whatever its rule (one-way entity, read-only
        column) or its rule says Dynamics → marketing only."""
        return (
            not self.policy.two_way
            or name in self.one_way_fields
            or self.rule(name).sync_rule is SyncRule.DYNAMICS_TO_MARKETING
        )

    def marketing_only(self, name: str) -> bool:
        return (
            not self.dynamics_only(name)
            and self.rule(name).sync_rule is SyncRule.MARKETING_TO_DYNAMICS
        )

    def two_way(self, name: str) -> bool:
        return not self.dynamics_only(name) and not self.marketing_only(name)


@st.composite
def cases(draw: st.DrawFn, *, with_baseline: bool | None = None) -> Case:
    """Any baseline, edits on either side, and a rule (or none) per field."""
    fields = tuple(draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, unique=True)))
    has_baseline = draw(st.booleans()) if with_baseline is None else with_baseline
    baseline = {f: draw(VALUES) for f in fields} if has_baseline else None
    crm: dict[str, object] = {}
    marketing: dict[str, object] = {}
    for name in fields:
        base = (baseline or {}).get(name)
        for side in (crm, marketing):
            side[name] = base if draw(st.booleans()) else draw(VALUES)
    rules = {f: draw(RULES) for f in fields if draw(st.integers(0, 4)) > 0}
    one_way = frozenset(draw(st.lists(st.sampled_from(fields), unique=True, max_size=1)))
    return Case(baseline, crm, marketing, draw(st.sampled_from(POLICIES)), fields, one_way, rules)


def _n(values: dict[str, object] | None, name: str) -> object:
    return normalize_value((values or {}).get(name))


def _after(case: Case, result: MergeResult) -> tuple[dict[str, object], dict[str, object]]:
    return {**case.crm, **result.crm_writes}, {**case.marketing, **result.marketing_writes}


@NO_DEADLINE
@given(cases())
def test_fields_that_sync_both_ways_end_equal_on_both_sides(case: Case) -> None:
    result = case.merge()
    crm_after, marketing_after = _after(case, result)
    for name in case.fields:
        if case.two_way(name) or not case.rule(name).never_blank:
            assert same_value(_n(crm_after, name), _n(marketing_after, name)), name
        if case.two_way(name):
            assert same_value(result.new_baseline[name], _n(crm_after, name)), name


@NO_DEADLINE
@given(cases(with_baseline=True))
def test_collisions_are_won_by_the_rules_side_and_named_after_it(case: Case) -> None:
    result = case.merge()
    collided = {c.field: c for c in result.collisions}
    for name in case.fields:
        base, crm, marketing = _n(case.baseline, name), _n(case.crm, name), _n(case.marketing, name)
        apart = (
            not same_value(crm, base)
            and not same_value(marketing, base)
            and not same_value(crm, marketing)
        )
        assert (name in collided) == apart, name
        if not apart:
            continue
        collision, rule = collided[name], case.rule(name)
        blank_lost = rule.never_blank and (
            collision.losing_value is not None and collision.winning_value is None
        )
        assert not blank_lost, name
        if collision.rule is CollisionRule.NEVER_BLANK:
            assert rule.never_blank
            assert None in (crm, marketing)
            continue
        if case.dynamics_only(name):
            assert collision.winner is Side.CRM
        elif rule.sync_rule in WINNERS:
            assert collision.winner is WINNERS[rule.sync_rule]
        else:
            assert collision.winner is case.policy.winner
        forced = not case.policy.two_way or name in case.one_way_fields
        if rule.sync_rule in WINNERS and not (forced and WINNERS[rule.sync_rule] is Side.MARKETING):
            assert collision.rule.value == rule.sync_rule.value
        assert collision.rule is not CollisionRule.NEVER_BLANK


@NO_DEADLINE
@given(cases())
def test_one_way_rules_never_write_the_other_side(case: Case) -> None:
    result = case.merge()
    for name in case.fields:
        if case.dynamics_only(name):
            assert name not in result.crm_writes, name
        if case.marketing_only(name) and name in result.marketing_writes:
            # only a blank person field is filled, when there is no baseline yet
            assert case.baseline is None and _n(case.marketing, name) is None, name


@NO_DEADLINE
@given(cases())
def test_never_blank_never_replaces_a_value_with_a_blank(case: Case) -> None:
    result = case.merge()
    for name in case.fields:
        if not case.rule(name).never_blank:
            continue
        for side, writes in (
            (case.crm, result.crm_writes),
            (case.marketing, result.marketing_writes),
        ):
            if name in writes and _n(side, name) is not None:
                assert normalize_value(writes[name]) is not None, name


@NO_DEADLINE
@given(cases())
def test_merging_again_changes_nothing(case: Case) -> None:
    result = case.merge()
    crm_after, marketing_after = _after(case, result)
    again = case.merge(baseline=result.new_baseline, crm=crm_after, marketing=marketing_after)
    assert again.crm_writes == {} and again.marketing_writes == {}
    assert again.collisions == ()


# --- Examples -------------------------------------------------------------------------------

LEAD, CONTACT = policy_for("lead"), policy_for("contact")


def _merge(
    policy: CollisionPolicy, rule: FieldRule, base: object, crm: object, mkt: object
) -> MergeResult:
    return merge_record(
        {"title": base}, {"title": crm}, {"title": mkt}, policy, ["title"], rules={"title": rule}
    )


def test_dynamics_wins_overrides_the_lead_rule() -> None:
    result = _merge(LEAD, FieldRule(SyncRule.DYNAMICS_WINS), "CEO", "CTO", "CFO")
    assert result.marketing_writes == {"title": "CTO"} and result.crm_writes == {}
    (collision,) = result.collisions
    assert (collision.winner, collision.rule.value) == (Side.CRM, "dynamics-wins")
    assert "sync rule says the Dynamics value wins" in collision.describe()


def test_marketing_wins_overrides_the_contact_rule() -> None:
    result = _merge(CONTACT, FieldRule(SyncRule.MARKETING_WINS), "CEO", "CTO", "CFO")
    assert result.crm_writes == {"title": "CFO"} and result.marketing_writes == {}
    assert result.collisions[0].rule is CollisionRule.MARKETING_WINS


def test_dynamics_to_marketing_overwrites_a_marketing_edit_and_sends_nothing() -> None:
    result = _merge(LEAD, FieldRule(SyncRule.DYNAMICS_TO_MARKETING), "CEO", "CEO", "CFO")
    assert result.crm_writes == {} and result.marketing_writes == {"title": "CEO"}


def test_marketing_to_dynamics_overwrites_a_dynamics_edit_and_keeps_the_person() -> None:
    result = _merge(CONTACT, FieldRule(SyncRule.MARKETING_TO_DYNAMICS), "CEO", "CTO", "CEO")
    assert result.crm_writes == {"title": "CEO"} and result.marketing_writes == {}


def test_never_blank_keeps_the_value_a_collision_would_blank() -> None:
    rule = FieldRule(SyncRule.ENTITY_DEFAULT, never_blank=True)
    result = _merge(LEAD, rule, "CEO", "CTO", None)
    assert result.crm_writes == {} and result.marketing_writes == {"title": "CTO"}
    (collision,) = result.collisions
    assert (collision.winner, collision.rule) == (Side.CRM, CollisionRule.NEVER_BLANK)


def test_never_blank_refills_a_blank_from_the_other_side() -> None:
    rule = FieldRule(SyncRule.ENTITY_DEFAULT, never_blank=True)
    result = _merge(CONTACT, rule, "CEO", None, "CEO")
    assert result.crm_writes == {"title": "CEO"} and result.collisions == ()


def test_rule_names_read_as_written_on_the_command_line() -> None:
    assert FieldRule.parse("dynamics-wins") == FieldRule(SyncRule.DYNAMICS_WINS)
    assert FieldRule.parse("never-blank") == FieldRule(SyncRule.ENTITY_DEFAULT, True)
    both = FieldRule.parse("Marketing-Wins, never-blank")
    assert both == FieldRule(SyncRule.MARKETING_WINS, True)
    assert both.name == "marketing-wins,never-blank"
    for bad in ("", "dynamics", "dynamics-wins,marketing-wins"):
        with pytest.raises(InvalidValueError, match=r"entity-default.*never-blank"):
            FieldRule.parse(bad)
