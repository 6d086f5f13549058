"""The soak's model and checker, without processes: they must be able to fail.

The model gives the values the rules allow (B22, B23); the checker must report a lost change,
a value that is not allowed, a duplicate Dynamics record, a side that did not converge and a
rejected record nobody can see.
"""

from __future__ import annotations

from soak.check import Observed, compare
from soak.model import CRM, MARKETING, Pair, Write, allowed_values

INITIAL = {"firstname": "Ada", "jobtitle": "Clerk", "telephone1": "+1 555 0000"}


def _writes(*sides: tuple[str, str]) -> list[Write]:
    return [Write(seq, side, value) for seq, (side, value) in enumerate(sides, 1)]


def test_one_side_wins_when_only_it_changed() -> None:
    """B22: nothing written keeps the initial value; one side's last write wins."""
    assert allowed_values("lead", "a", []) == {"a"}
    assert allowed_values("lead", "a", _writes((MARKETING, "b"), (MARKETING, "c"))) == {"c"}
    assert allowed_values("contact", "a", _writes((CRM, "b"), (CRM, "c"))) == {"c"}


def test_both_sides_allow_the_last_writer_or_the_collision_winner_only() -> None:
    """B23: for a lead marketing wins a collision, for a contact Dynamics does; whether a cycle
    ran between the two last writes is unknown, so both outcomes are allowed, no others."""
    marketing_last = _writes((CRM, "d1"), (MARKETING, "m1"))
    crm_last = _writes((MARKETING, "m1"), (CRM, "d1"))
    assert allowed_values("lead", "a", marketing_last) == {"m1"}
    assert allowed_values("lead", "a", crm_last) == {"d1", "m1"}
    assert allowed_values("contact", "a", crm_last) == {"d1"}
    assert allowed_values("contact", "a", marketing_last) == {"m1", "d1"}
    older = _writes((CRM, "d0"), (MARKETING, "m0"), (CRM, "d1"), (MARKETING, "m1"))
    assert "d0" not in allowed_values("contact", "a", older)
    assert "m0" not in allowed_values("lead", "a", older)


def _pair(**changes: object) -> Pair:
    pair = Pair(0, "seed", "ada@example.com", "lead", "L1", 7, dict(INITIAL))
    for name, value in changes.items():
        setattr(pair, name, value)
    return pair


def _seen(person: dict[str, object], crm: dict[str, object]) -> Observed:
    return Observed(
        crm={"lead": {"L1": {"emailaddress1": "ada@example.com", **crm}}, "contact": {}},
        people={7: {"id": 7, "crmIsDeleted": False, **person}},
        links={7: [("lead", "L1")]},
        error_activities=set(),
        open_errors=[],
    )


AGREED_PERSON = {"firstName": "Ada", "title": "Clerk", "phone": "+1 555 0000"}


def test_the_checker_passes_an_agreed_pair_and_reports_a_lost_change() -> None:
    """A committed marketing write found overwritten by the old value is a lost change."""
    pair = _pair()
    assert compare([pair], _seen(AGREED_PERSON, dict(INITIAL))).mismatches == []
    pair.record(1, MARKETING, "jobtitle", "Manager")
    result = compare([pair], _seen(AGREED_PERSON, dict(INITIAL)))
    assert {(m.kind, m.field) for m in result.mismatches} == {("lost", "jobtitle")}
    assert "Manager" in result.mismatches[0].explain()


def test_the_checker_reports_an_unconverged_pair_and_a_value_nobody_wrote() -> None:
    """One side holding a value the rules do not allow is a mismatch, even if the other
    side is right."""
    person = {**AGREED_PERSON, "phone": "+1 555 9999"}
    result = compare([_pair()], _seen(person, dict(INITIAL)))
    assert [(m.kind, m.field, m.found) for m in result.mismatches] == [
        ("mismatch", "telephone1", "+1 555 9999")
    ]


def test_the_checker_reports_duplicates_and_invisible_rejections() -> None:
    """Two Dynamics records for one created person, and a rejected value with no activity and
    no open error, are both reported."""
    made = Pair(1, "marketing", "new@soak.example", "lead", None, 8, dict(INITIAL))
    made.pending_create = True
    made.expected_crm_id = "L2"
    seen = _seen(AGREED_PERSON, dict(INITIAL))
    seen.crm["lead"]["L2"] = {"emailaddress1": "new@soak.example", **INITIAL}
    seen.crm["lead"]["L3"] = {"emailaddress1": "new@soak.example", **INITIAL}
    seen.people[8] = {"id": 8, "crmIsDeleted": False, **AGREED_PERSON}
    seen.links[8] = [("lead", "L2")]
    poisoned = _pair(poison="x" * 120)
    seen.people[7]["title"] = "x" * 120
    result = compare([poisoned, made], seen)
    kinds = sorted(m.kind for m in result.mismatches)
    assert kinds == ["duplicate", "invisible", "invisible"]
    seen.error_activities.add(7)
    seen.open_errors.append({"local_id": 7, "crm_id": "L1"})
    assert [m.kind for m in compare([poisoned, made], seen).mismatches] == ["duplicate"]
