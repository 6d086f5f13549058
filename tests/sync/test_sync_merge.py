"""The per-field three-way merge (B19, B22–B24; seeds' data-collision sections, R60–R61)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.dynamics.types import AttributeSchema, AttributeType, EntitySchema, LookupValue
from crmsync.sync.mapping import default_mapping
from crmsync.sync.merge import MergeResult, merge_record, normalize_value, same_value
from crmsync.sync.policy import CollisionPolicy, CollisionRule, Side, policy_for

LEAD = policy_for("lead")
CONTACT = policy_for("contact")
ACCOUNT = policy_for("account")
POLICIES = [LEAD, CONTACT, ACCOUNT, policy_for("opportunity"), policy_for("new_project")]

# A small value space so that sides often agree, disagree, or differ only by normalisation.
VALUES = st.sampled_from([None, "", "  ", "a", " a ", "A", "b", 0, 1, 1.0, 2.5, True, False])
FIELD_NAMES = ["email", "firstName", "leadSource", "unsubscribed", "annualRevenue", "city"]

# Examples are timed on a shared machine; their speed is not what these tests check.
NO_DEADLINE = settings(deadline=None)


@dataclass(frozen=True)
class Case:
    """A record's baseline, both sides' current values and how it is merged."""

    baseline: dict[str, object] | None
    crm: dict[str, object]
    marketing: dict[str, object]
    policy: CollisionPolicy
    fields: tuple[str, ...]
    one_way_fields: frozenset[str]
    origin: Side

    def merge(self) -> MergeResult:
        return merge_record(
            self.baseline,
            self.crm,
            self.marketing,
            self.policy,
            self.fields,
            one_way_fields=self.one_way_fields,
            origin=self.origin,
        )


@st.composite
def cases(draw: st.DrawFn, *, with_baseline: bool | None = None) -> Case:
    """Any baseline (or none, or missing fields), then edits on either side, both or neither."""
    fields = tuple(draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, unique=True)))
    has_baseline = draw(st.booleans()) if with_baseline is None else with_baseline
    baseline: dict[str, object] | None = None
    if has_baseline:
        baseline = {f: draw(VALUES) for f in fields if draw(st.integers(0, 9)) > 0}
    crm: dict[str, object] = {}
    marketing: dict[str, object] = {}
    for name in fields:
        base = (baseline or {}).get(name)
        for side in (crm, marketing):
            edit = draw(st.sampled_from(["keep", "edit", "absent"]))
            if edit == "keep":
                side[name] = base
            elif edit == "edit":
                side[name] = draw(VALUES)
    one_way = frozenset(draw(st.lists(st.sampled_from(fields), unique=True, max_size=2)))
    return Case(
        baseline,
        crm,
        marketing,
        draw(st.sampled_from(POLICIES)),
        fields,
        one_way,
        draw(st.sampled_from([Side.CRM, Side.MARKETING])),
    )


def _n(mapping: dict[str, object] | None, name: str) -> object:
    return normalize_value((mapping or {}).get(name))


def _is_one_way(case: Case, name: str) -> bool:
    return not case.policy.two_way or name in case.one_way_fields


@NO_DEADLINE
@given(cases())
def test_both_sides_end_equal_after_the_writes(case: Case) -> None:
    """B22: after both sides' writes every synced field agrees, and so does the baseline."""
    result = case.merge()
    crm_after = {**case.crm, **result.crm_writes}
    marketing_after = {**case.marketing, **result.marketing_writes}
    assert set(result.new_baseline) == set(case.fields)
    for name in case.fields:
        assert same_value(_n(crm_after, name), _n(marketing_after, name)), name
        assert same_value(_n(crm_after, name), result.new_baseline[name]), name


@NO_DEADLINE
@given(cases())
def test_merging_again_changes_nothing(case: Case) -> None:
    """Idempotence and echo suppression (B19): our own writes coming back are not changes."""
    result = case.merge()
    again = merge_record(
        result.new_baseline,
        {**case.crm, **result.crm_writes},
        {**case.marketing, **result.marketing_writes},
        case.policy,
        case.fields,
        one_way_fields=case.one_way_fields,
    )
    assert again.crm_writes == {}
    assert again.marketing_writes == {}
    assert again.collisions == ()
    assert again.new_baseline == result.new_baseline


@NO_DEADLINE
@given(cases(with_baseline=True))
def test_a_field_changed_on_one_side_only_takes_that_sides_value(case: Case) -> None:
    """B22: changed on one side only → that side's value wins (one-way fields: Dynamics's)."""
    result = case.merge()
    assert case.baseline is not None
    for name in case.fields:
        if name not in case.baseline:
            continue
        base = _n(case.baseline, name)
        crm_changed = not same_value(_n(case.crm, name), base)
        marketing_changed = not same_value(_n(case.marketing, name), base)
        if crm_changed and not marketing_changed:
            assert same_value(result.new_baseline[name], _n(case.crm, name))
            assert name not in result.crm_writes
        if marketing_changed and not crm_changed:
            expected = _n(case.crm if _is_one_way(case, name) else case.marketing, name)
            assert same_value(result.new_baseline[name], expected)
            assert name not in result.crm_writes or not _is_one_way(case, name)
        if not crm_changed and not marketing_changed:
            assert name not in result.crm_writes
            assert name not in result.marketing_writes


@NO_DEADLINE
@given(cases(with_baseline=True))
def test_collisions_are_won_by_the_documented_side(case: Case) -> None:
    """B23: marketing wins for leads, Dynamics for contacts and always for one-way records."""
    result = case.merge()
    assert case.baseline is not None
    collided = {c.field: c for c in result.collisions}
    for name in case.fields:
        base, crm, marketing = (
            _n(case.baseline, name),
            _n(case.crm, name),
            _n(case.marketing, name),
        )
        both_changed_apart = (
            name in case.baseline
            and not same_value(crm, base)
            and not same_value(marketing, base)
            and not same_value(crm, marketing)
        )
        assert (name in collided) == both_changed_apart, name
        if not both_changed_apart:
            continue
        collision = collided[name]
        if _is_one_way(case, name):
            assert collision.winner is Side.CRM
            expected_rule = (
                CollisionRule.DYNAMICS_WINS_READ_ONLY_FIELD
                if case.policy.two_way
                else CollisionRule.DYNAMICS_WINS_ONE_WAY_ENTITY
            )
            assert collision.rule is expected_rule
        else:
            assert collision.winner is case.policy.winner
            assert collision.rule is case.policy.rule
        assert same_value(result.new_baseline[name], collision.winning_value)
        assert (collision.baseline_value, collision.crm_value, collision.marketing_value) == (
            base,
            crm,
            marketing,
        )


@NO_DEADLINE
@given(cases())
def test_one_way_records_never_write_to_dynamics(case: Case) -> None:
    """B2/B3: one-way entities and read-only fields never produce a Dynamics write."""
    result = case.merge()
    if not case.policy.two_way:
        assert result.crm_writes == {}
    assert not (set(result.crm_writes) & case.one_way_fields)


@NO_DEADLINE
@given(cases(with_baseline=False))
def test_a_first_link_takes_the_dynamics_values(case: Case) -> None:
    """No baseline: the initial sync runs Dynamics → marketing, so Dynamics wins every field,
    except that a record the marketing side created keeps the person's non-empty values."""
    result = case.merge()
    assert result.collisions == ()
    for name in case.fields:
        crm, marketing = _n(case.crm, name), _n(case.marketing, name)
        marketing_keeps = (
            case.origin is Side.MARKETING and marketing is not None and not _is_one_way(case, name)
        )
        expected = marketing if marketing_keeps else crm
        assert same_value(result.new_baseline[name], expected)


# --- Examples: the seed pages' collision cases ("same field changed in both systems") --------


def test_lead_collision_marketing_wins() -> None:
    """Seed lead-sync/field-sync, B23: a lead's first name edited on both sides → marketing's."""
    baseline = {"firstName": "Jon", "city": "Leeds", "email": "jon@example.com"}
    crm = {"firstName": "Jonathan", "city": "York", "email": "jon@example.com"}
    marketing = {"firstName": "Johnny", "city": "Leeds", "email": "jon@example.com"}
    result = merge_record(baseline, crm, marketing, LEAD, ["firstName", "city", "email"])
    assert result.crm_writes == {"firstName": "Johnny"}
    assert result.marketing_writes == {"city": "York"}
    assert result.new_baseline == {
        "firstName": "Johnny",
        "city": "York",
        "email": "jon@example.com",
    }
    (collision,) = result.collisions
    assert collision.field == "firstName"
    assert (collision.baseline_value, collision.crm_value, collision.marketing_value) == (
        "Jon",
        "Jonathan",
        "Johnny",
    )
    assert collision.winner is Side.MARKETING
    assert collision.rule is CollisionRule.MARKETING_WINS_FOR_LEADS
    assert collision.losing_value == "Jonathan"
    # B24: recorded with both values, the winner and the rule, in words and as data.
    assert collision.describe() == (
        "firstName changed in both systems: Dynamics 'Jonathan', marketing 'Johnny' "
        "(was 'Jon'); kept the marketing value. "
        + CollisionRule.MARKETING_WINS_FOR_LEADS.description
    )
    record = collision.as_record()
    assert record["winner"] == "marketing"
    assert record["rule"] == "marketing_wins_for_leads"
    assert (record["baselineValue"], record["crmValue"], record["marketingValue"]) == (
        "Jon",
        "Jonathan",
        "Johnny",
    )


def test_contact_collision_dynamics_wins() -> None:
    """Seed field-sync, B23: a contact's phone edited on both sides → Dynamics's value."""
    baseline = {"phone": "555-0100", "title": "Buyer"}
    crm = {"phone": "555-0199", "title": "Buyer"}
    marketing = {"phone": "555-0142", "title": "Head Buyer"}
    result = merge_record(baseline, crm, marketing, CONTACT, ["phone", "title"])
    assert result.crm_writes == {"title": "Head Buyer"}
    assert result.marketing_writes == {"phone": "555-0199"}
    (collision,) = result.collisions
    assert collision.winner is Side.CRM
    assert collision.winning_value == "555-0199"
    assert collision.rule is CollisionRule.DYNAMICS_WINS_FOR_CONTACTS


def test_a_company_edit_in_marketing_is_overwritten_by_dynamics() -> None:
    """B3/R40: a local company edit is never sent and the next Dynamics update overwrites it."""
    baseline = {"company": "Acme", "billingCity": "Paris"}
    crm = {"company": "Acme", "billingCity": "Lyon"}
    marketing = {"company": "ACME Corp", "billingCity": "Paris"}
    result = merge_record(baseline, crm, marketing, ACCOUNT, ["company", "billingCity"])
    assert result.crm_writes == {}
    assert result.marketing_writes == {"company": "Acme", "billingCity": "Lyon"}
    assert result.collisions == ()


def test_same_edit_on_both_sides_is_not_a_collision() -> None:
    """B22: both changed to the same value → nothing to write, nothing to record."""
    result = merge_record({"city": "Oslo"}, {"city": "Bergen"}, {"city": "Bergen "}, LEAD, ["city"])
    assert not result.has_writes
    assert result.collisions == ()
    assert result.new_baseline == {"city": "Bergen"}


def test_our_own_write_coming_back_is_not_a_change() -> None:
    """B19: Dynamics echoes the value we wrote; compared with the baseline it is no change."""
    first = merge_record({"city": "Oslo"}, {"city": "Oslo"}, {"city": "Bergen"}, LEAD, ["city"])
    assert first.crm_writes == {"city": "Bergen"}
    echo = merge_record(first.new_baseline, {"city": "Bergen"}, {"city": "Bergen"}, LEAD, ["city"])
    assert not echo.has_writes


def test_empty_and_blank_text_mean_cleared() -> None:
    """Dataverse stores no empty strings: "" and None are one value, whitespace is trimmed."""
    assert normalize_value("") is None
    assert normalize_value("  ") is None
    assert normalize_value(" Bob ") == "Bob"
    result = merge_record({"city": None}, {"city": ""}, {"city": "   "}, CONTACT, ["city"])
    assert not result.has_writes


def test_email_case_is_an_edit() -> None:
    """A salesperson correcting the case of an email made an edit that must travel."""
    result = merge_record(
        {"email": "Bob@X.com"}, {"email": "bob@x.com"}, {"email": "Bob@X.com"}, LEAD, ["email"]
    )
    assert result.marketing_writes == {"email": "bob@x.com"}


def test_booleans_never_equal_numbers() -> None:
    assert same_value(1, 1.0)
    assert not same_value(True, 1)
    assert not same_value(False, 0)
    assert not same_value(None, False)


def test_a_newly_selected_field_is_backfilled_from_dynamics() -> None:
    """B12: a field missing from the baseline takes the Dynamics value, nulls included."""
    result = merge_record(
        {"city": "Rome"},
        {"city": "Rome", "newFavouritecolour": None},
        {"city": "Rome", "newFavouritecolour": "red"},
        LEAD,
        ["city", "newFavouritecolour"],
    )
    assert result.marketing_writes == {"newFavouritecolour": None}
    assert result.crm_writes == {}


def test_a_read_only_field_of_a_lead_follows_dynamics() -> None:
    """R24/B7: crmCreatedAt is internal, so it never goes to Dynamics, even for a lead."""
    result = merge_record(
        {"crmCreatedAt": "2026-01-01T00:00:00Z"},
        {"crmCreatedAt": "2026-01-01T00:00:00Z"},
        {"crmCreatedAt": "2027-01-01T00:00:00Z"},
        LEAD,
        ["crmCreatedAt"],
        one_way_fields={"crmCreatedAt"},
    )
    assert result.crm_writes == {}
    assert result.marketing_writes == {"crmCreatedAt": "2026-01-01T00:00:00Z"}


def test_a_person_created_by_marketing_keeps_its_values_on_first_link() -> None:
    """B31: after Sync Person to Microsoft creates the lead, the person's values stand, and
    Dynamics only fills what the person left empty (its default rating)."""
    result = merge_record(
        None,
        {"firstName": "Ada", "rating": "Warm", "city": None},
        {"firstName": "Ada ", "rating": None, "city": "Turin"},
        LEAD,
        ["firstName", "rating", "city"],
        origin=Side.MARKETING,
    )
    assert result.crm_writes == {"city": "Turin"}
    assert result.marketing_writes == {"rating": "Warm"}


def test_merge_works_on_values_converted_through_the_mapping() -> None:
    """The engine converts a Dynamics row with the mapping, merges, and converts writes back."""
    T = AttributeType
    schema = EntitySchema(
        "lead",
        "leads",
        "leadid",
        "fullname",
        True,
        False,
        {
            "firstname": AttributeSchema("firstname", T.STRING, max_length=50),
            "leadsourcecode": AttributeSchema("leadsourcecode", T.PICKLIST, options={8: "Web"}),
            "ownerid": AttributeSchema("ownerid", T.OWNER, targets=("systemuser", "team")),
        },
    )
    mapping = default_mapping(schema)
    owner = "0b3c7f1e-2a4d-4e6f-8a9b-1c2d3e4f5a6b"
    crm = mapping.to_marketing(
        {"firstname": "Ada", "leadsourcecode": 8, "ownerid": LookupValue(owner, "team")}
    )
    baseline = {"firstName": "Ada", "leadSource": None, "externalSalesPersonId": owner}
    marketing = {"firstName": "Ada L.", "leadSource": None, "externalSalesPersonId": owner}
    result = merge_record(
        baseline,
        crm,
        marketing,
        LEAD,
        mapping.field_names,
        one_way_fields=mapping.crm_only_fields,
    )
    assert mapping.to_crm(result.crm_writes) == {"firstname": "Ada L."}
    # A team owner leaves the sales-user link empty (B5).
    assert result.marketing_writes == {"leadSource": "Web", "externalSalesPersonId": None}
