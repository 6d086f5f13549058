"""The soak's model and checker, without processes: they must be able to fail.

The model gives the values the rules allow (B22, B23); the checker must report a lost change,
a value that is not allowed, a duplicate Dynamics record, a side that did not converge and a
rejected record nobody can see; a field whose own sync rule was not followed (B46), a marketing
value of a column deleted in Dynamics that was lost or a column still syncing (B14), and a
campaign that synced a person twice or not at all, or whose Change Data Value is missing.
"""

from __future__ import annotations

from collections import Counter

from soak.check import Facts, Observed, compare
from soak.model import (
    CRM,
    DROPPED,
    MARKETING,
    Pair,
    Write,
    allowed_values,
    dropped_values,
    expect,
)

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


def test_a_per_field_rule_decides_a_collision_whatever_the_record_is() -> None:
    """B46: dynamics-wins makes Dynamics win for a lead, marketing-wins makes marketing win for
    a contact; never-blank never ends blank while a value was there."""
    crm_last = _writes((MARKETING, "m1"), (CRM, "d1"))
    marketing_last = _writes((CRM, "d1"), (MARKETING, "m1"))
    assert allowed_values("lead", "a", marketing_last, "dynamics-wins") == {"m1", "d1"}
    assert allowed_values("lead", "a", crm_last, "dynamics-wins") == {"d1"}
    assert allowed_values("contact", "a", marketing_last, "marketing-wins") == {"m1"}
    assert allowed_values("contact", "a", crm_last, "marketing-wins") == {"d1", "m1"}
    blanked = _writes((MARKETING, "m1"), (CRM, None))
    assert allowed_values("lead", "a", blanked) == {None, "m1"}
    assert allowed_values("lead", "a", blanked, "never-blank") == {"a", "m1"}
    assert allowed_values("lead", None, _writes((CRM, None)), "never-blank") == {None}
    # a blank written before the other side had the record is that record's first value
    early = _writes((MARKETING, None), (MARKETING, "m2"), (MARKETING, None))
    assert allowed_values("lead", "a", early, "never-blank", linked_at=None) == {"a", "m2", None}
    # made blank at linking, m2 never merged before the last blank: both sides blank
    assert allowed_values("lead", "a", early, "never-blank", linked_at=1) == {"a", "m2", None}
    assert None not in allowed_values("lead", "a", early[1:], "never-blank", linked_at=1)
    # a blank over a value the other side still holds is never the outcome ...
    assert allowed_values("lead", "a", _writes((CRM, None)), "never-blank") == {"a"}
    assert None not in allowed_values(
        "lead", "a", _writes((CRM, None), (MARKETING, "m1"), (CRM, None)), "never-blank"
    )
    # ... but when both sides' last writes are blanks no side holds a value to keep
    both = _writes((MARKETING, "m1"), (CRM, None), (MARKETING, None))
    assert allowed_values("lead", "a", both, "never-blank") == {"a", "m1", None}


def test_never_blank_after_a_delete_on_either_side() -> None:
    """B46 with B26/B27: a person deleted on the marketing side comes back with the Dynamics
    values; a Dynamics blank after that meets the value it came back with and keeps it. A
    marketing blank is refilled only by a change in Dynamics, which a deleted record never
    makes."""
    column = "address1_line1"
    pair = _pair(person_deleted=True, crm_writes_after_person_delete=True)
    pair.initial[column] = "1 Main St"
    pair.record(2, CRM, column, None)
    assert expect(pair).values[column] == {None, "1 Main St"}
    pair.record(4, CRM, column, "2 High St")
    assert expect(pair).values[column] == {"2 High St"}
    pair.record(5, CRM, "jobtitle", None)
    assert expect(pair).values["jobtitle"] == {None}  # no never-blank rule on this field

    gone = _pair()
    gone.initial[column] = "1 Main St"
    gone.record(2, MARKETING, column, None)
    assert expect(gone).values[column] == {"1 Main St"}
    gone.crm_deleted = True
    assert expect(gone).values[column] == {None, "1 Main St"}


def test_the_checker_reports_a_field_whose_rule_was_not_followed() -> None:
    """A lead's dynamics-wins field left at the marketing value of a collision is a lost
    change (the lead's own rule would have kept it); a never-blank field found blank is too."""
    pair = _pair()
    pair.record(1, MARKETING, "address1_city", "Paris")
    pair.record(2, CRM, "address1_city", "Lyon")
    pair.initial["address1_line1"] = "1 Main St"
    pair.record(3, MARKETING, "address1_line1", None)
    person = {**AGREED_PERSON, "city": "Lyon", "address": "1 Main St"}
    crm = {**INITIAL, "address1_city": "Lyon", "address1_line1": "1 Main St"}
    assert compare([pair], _seen(person, crm)).mismatches == []
    person_wrong = {**person, "city": "Paris", "address": None}
    crm_wrong = {**crm, "address1_city": "Paris", "address1_line1": None}
    found = compare([pair], _seen(person_wrong, crm_wrong)).mismatches
    assert sorted((m.kind, m.field) for m in found) == [
        ("lost", "address1_city"),
        ("lost", "address1_city"),
        ("lost", "address1_line1"),
        ("lost", "address1_line1"),
    ]


def test_a_deleted_column_keeps_its_marketing_values_and_stops_syncing() -> None:
    """B14: after the delete only marketing writes count; before it, the person may hold its
    own last value or a Dynamics one merged in, never an older marketing value."""
    column, name = DROPPED
    writes = _writes((MARKETING, "m0"), (MARKETING, "m1"), (CRM, "d1"))
    assert dropped_values("lead", None, writes, 4) == {"m1", "d1"}
    # a contact's collision won by Dynamics, then a Dynamics write never read before the
    # delete: the person may keep the collision's winner, never the older marketing value
    race = _writes((MARKETING, "m1"), (CRM, "d1"), (MARKETING, "m2"), (CRM, "d2"))
    assert dropped_values("contact", None, race, 5) == {"m2", "d1", "d2"}
    assert dropped_values("lead", None, race, 5) == {"m2", "d2"}
    after = [*writes, Write(5, MARKETING, "m2")]
    assert dropped_values("contact", None, after, 4) == {"m2"}

    pair = _pair(dropped_at=4)
    for write in after:
        pair.record(write.seq, write.side, column, write.value)
    seen = _seen({**AGREED_PERSON, name: "m2"}, {**INITIAL, column: "stale"})
    facts = Facts(column_dropped=True)
    seen.dropped_status = {"lead": "missing", "contact": None}
    seen.dropped_notices = {"lead", "contact"}
    assert compare([pair], seen, facts).mismatches == []

    seen.people[7][name] = "m1"
    seen.dropped_status["contact"] = "selected"
    seen.dropped_notices = {"contact"}
    found = compare([pair], seen, facts).mismatches
    assert sorted((m.kind, m.field) for m in found) == [
        ("invisible", None),
        ("lost", column),
        ("mismatch", None),
    ]
    assert "lead.new_soaknote" in next(m.detail for m in found if m.kind == "invisible")
    saved = Facts(column_dropped=True, saved_after_drop=frozenset({"lead"}))
    assert [m.kind for m in compare([pair], seen, saved).mismatches] == ["lost", "mismatch"]


def test_the_checker_reports_a_campaign_that_synced_twice_or_set_nothing() -> None:
    """A person the trigger campaign picked up has one lead, one Sync Lead to Microsoft
    activity with the campaign's id, and the Change Data Value step's value on both sides."""
    made = Pair(1, "campaign", "form@soak.example", "lead", None, 8, dict(INITIAL))
    made.pending_create, made.campaign_value = True, "+1 555 0100"
    seen = _seen(AGREED_PERSON, dict(INITIAL))
    seen.crm["lead"]["L2"] = {
        "emailaddress1": "form@soak.example",
        **INITIAL,
        "mobilephone": "+1 555 0100",
    }
    seen.people[8] = {"id": 8, "crmIsDeleted": False, **AGREED_PERSON, "mobilePhone": "+1 555 0100"}
    seen.links[8] = [("lead", "L2")]
    seen.campaign_syncs = Counter({8: 1})
    assert compare([made], seen).mismatches == []

    seen.campaign_syncs = Counter({8: 2})
    seen.crm["lead"]["L2"]["mobilephone"] = None
    found = compare([made], seen).mismatches
    assert sorted((m.kind, m.field) for m in found) == [
        ("duplicate", None),
        ("mismatch", "mobilephone"),
    ]
    seen.campaign_syncs = Counter()
    seen.people[8]["mobilePhone"] = None
    seen.crm["lead"]["L2"]["mobilephone"] = "+1 555 0100"
    found = compare([made], seen).mismatches
    assert sorted((m.kind, m.field) for m in found) == [
        ("mismatch", "mobilephone"),
        ("missing", None),
    ]
    seen.links[8] = []
    assert [m.kind for m in compare([made], seen).mismatches] == ["missing"]
