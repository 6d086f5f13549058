"""Value conversion between Dynamics columns and marketing fields (dataverse-webapi §2, §10)."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.dataverse_codes import (
    INTEGER_OUT_OF_RANGE,
    NUMBER_OUT_OF_RANGE,
    PICKLIST_OUT_OF_RANGE,
    STRING_TOO_LONG,
)
from crmsync.dynamics.types import AttributeSchema, AttributeType, CrmValue, LookupValue
from crmsync.errors import ValidationFailedError
from crmsync.sync.convert import (
    CODE_BAD_DATETIME,
    CODE_WRONG_TYPE,
    ColumnConverter,
    DateOnlyConverter,
    LinkConverter,
    canonical_value,
    format_datetime,
    normalize_marketing,
    to_crm,
    to_marketing,
)

T = AttributeType
LEAD_SOURCE = AttributeSchema(
    "leadsourcecode",
    T.PICKLIST,
    options={1: "Advertisement", 2: "Employee Referral", 8: "Web", 10: "Other"},
)
FIRSTNAME = AttributeSchema("firstname", T.STRING, max_length=50)
EMPLOYEES = AttributeSchema("numberofemployees", T.INTEGER, min_value=0, max_value=1_000_000)
REVENUE = AttributeSchema("revenue", T.MONEY, min_value=0, max_value=1e14, precision=2)
CREATED = AttributeSchema("createdon", T.DATETIME)
UNSUBSCRIBED = AttributeSchema("donotbulkemail", T.BOOLEAN)
PARENT_ACCOUNT = AttributeSchema("parentaccountid", T.LOOKUP, targets=("account",))
OWNER = AttributeSchema("ownerid", T.OWNER, targets=("systemuser", "team"))
GUID = "5ca9b3f2-1d2e-4f5a-8b6c-7d8e9f0a1b2c"

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\x0b\x0c"),
    min_size=1,
).filter(lambda s: all(ord(c) >= 32 or c in "\t\n\r" for c in s))
aware_datetimes = st.datetimes(
    min_value=datetime(1753, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
labels = st.text(alphabet=string.ascii_letters + " -", min_size=1, max_size=12).filter(
    lambda s: s.strip() == s and s
)

# Examples are timed on a shared machine; their speed is not what these tests check.
NO_DEADLINE = settings(deadline=None)


@st.composite
def attribute_and_value(draw: st.DrawFn) -> tuple[AttributeSchema, CrmValue]:
    """A column of any synced type with a value Dynamics could hold in it."""
    kind = draw(st.sampled_from(["text", "int", "real", "bool", "datetime", "option", "lookup"]))
    if kind == "text":
        value = draw(text)
        attr = AttributeSchema("x", draw(st.sampled_from([T.STRING, T.MEMO])), max_length=None)
        if draw(st.booleans()):
            attr = AttributeSchema("x", attr.type, max_length=len(value) + draw(st.integers(0, 5)))
        return attr, value
    if kind == "int":
        return AttributeSchema("x", T.INTEGER), draw(st.integers(-(2**31), 2**31 - 1))
    if kind == "real":
        real_type = draw(st.sampled_from([T.MONEY, T.DECIMAL, T.DOUBLE]))
        number = draw(
            st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**9), 10**9)
        )
        return AttributeSchema("x", real_type), number
    if kind == "bool":
        return AttributeSchema("x", T.BOOLEAN), draw(st.booleans())
    if kind == "datetime":
        return AttributeSchema("x", T.DATETIME), draw(aware_datetimes)
    if kind == "option":
        option_labels = draw(st.lists(labels, min_size=1, max_size=6, unique_by=str.casefold))
        values = draw(
            st.lists(
                st.integers(0, 100_000),
                min_size=len(option_labels),
                max_size=len(option_labels),
                unique=True,
            )
        )
        options = dict(zip(values, option_labels, strict=True))
        option_type = draw(st.sampled_from([T.PICKLIST, T.STATE, T.STATUS]))
        return AttributeSchema("x", option_type, options=options), draw(st.sampled_from(values))
    target = draw(st.sampled_from(["account", "contact", "systemuser"]))
    record_id = str(draw(st.uuids()))
    return AttributeSchema("x", T.LOOKUP, targets=(target,)), LookupValue(record_id, target)


@NO_DEADLINE
@given(attribute_and_value())
def test_every_valid_value_round_trips(case: tuple[AttributeSchema, CrmValue]) -> None:
    """to_crm(to_marketing(v)) == v for every valid Dynamics value (no drift over cycles)."""
    attr, value = case
    back = to_crm(attr, to_marketing(attr, value))
    assert back == value
    assert type(back) is type(value) or isinstance(value, int | float)
    converter = ColumnConverter(attr)
    marketing = converter.to_marketing(value)
    assert marketing == to_marketing(attr, value)
    assert converter.to_crm(marketing) == value
    assert canonical_value(converter, marketing) == marketing


@NO_DEADLINE
@given(attribute_and_value())
def test_none_stays_none_both_ways(case: tuple[AttributeSchema, CrmValue]) -> None:
    """A cleared column is a cleared field and back (R28: nulls propagate)."""
    attr, _ = case
    assert to_marketing(attr, None) is None
    assert to_crm(attr, None) is None
    assert to_crm(attr, "") is None


def test_option_sets_carry_labels_on_the_marketing_side() -> None:
    """Appendix A: leadSource holds the label ("Web"), Dynamics holds the integer (spec §2e)."""
    assert to_marketing(LEAD_SOURCE, 8) == "Web"
    assert to_crm(LEAD_SOURCE, "Web") == 8
    assert to_crm(LEAD_SOURCE, "web") == 8  # an API caller's casing is forgiven
    assert to_crm(LEAD_SOURCE, 2) == 2


def test_an_unknown_label_fails_naming_the_allowed_ones() -> None:
    """B37: a bad option fails that record with Dynamics' code and a message that helps."""
    with pytest.raises(ValidationFailedError) as caught:
        to_crm(LEAD_SOURCE, "Carrier Pigeon")
    assert caught.value.code == PICKLIST_OUT_OF_RANGE
    message = str(caught.value)
    assert "leadsourcecode" in message
    assert "'Carrier Pigeon'" in message
    for label in ("Advertisement", "Employee Referral", "Web", "Other"):
        assert repr(label) in message


def test_an_option_missing_from_stale_metadata_keeps_its_number() -> None:
    """An option added in Dynamics after the schema was read is not lost on the way through."""
    assert to_marketing(LEAD_SOURCE, 77) == "77"
    assert to_crm(LEAD_SOURCE, "77") == 77


def test_an_integer_outside_the_option_set_is_refused() -> None:
    with pytest.raises(ValidationFailedError) as caught:
        to_crm(LEAD_SOURCE, 3)
    assert caught.value.code == PICKLIST_OUT_OF_RANGE


def test_too_long_text_fails_instead_of_being_truncated() -> None:
    """B37/§10: MaxLength is enforced by Dynamics (0x80044331); we never cut a value short."""
    assert to_crm(FIRSTNAME, "x" * 50) == "x" * 50
    with pytest.raises(ValidationFailedError) as caught:
        to_crm(FIRSTNAME, "x" * 51)
    assert caught.value.code == STRING_TOO_LONG
    assert "51 characters" in str(caught.value)
    assert "maximum of 50" in str(caught.value)


def test_control_characters_are_refused() -> None:
    """§10: invalid characters in text are rejected by Dynamics (0x80040278)."""
    with pytest.raises(ValidationFailedError, match="control characters"):
        to_crm(FIRSTNAME, "Bob\x07")
    assert to_crm(FIRSTNAME, "line\nbreak\tand tab") == "line\nbreak\tand tab"


@pytest.mark.parametrize("bad", [-1, 1_000_001])
def test_numbers_outside_the_column_range_fail(bad: int) -> None:
    """§10: Integer min/max are enforced with IntegerValueOutOfRange (0x8004432F)."""
    with pytest.raises(ValidationFailedError) as caught:
        to_crm(EMPLOYEES, bad)
    assert caught.value.code == INTEGER_OUT_OF_RANGE


@pytest.mark.parametrize("bad", [-0.01, 1e15])
def test_money_outside_the_column_range_fails_with_the_code_dynamics_sends(bad: float) -> None:
    """§10: money min/max are enforced with the code the emulator and Dynamics answer."""
    with pytest.raises(ValidationFailedError) as caught:
        to_crm(REVENUE, bad)
    assert caught.value.code == NUMBER_OUT_OF_RANGE


@pytest.mark.parametrize(
    ("attr", "bad"),
    [
        (EMPLOYEES, True),  # a bool is not a number, though Python thinks so
        (EMPLOYEES, 2.5),
        (EMPLOYEES, "12"),
        (REVENUE, float("nan")),
        (REVENUE, float("inf")),
        (UNSUBSCRIBED, "yes"),
        (UNSUBSCRIBED, 1),
        (FIRSTNAME, 12),
        (CREATED, 12),
    ],
)
def test_values_of_the_wrong_type_fail(attr: AttributeSchema, bad: object) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        to_crm(attr, bad)
    assert caught.value.code == CODE_WRONG_TYPE


def test_whole_floats_are_accepted_for_integer_columns() -> None:
    assert to_crm(EMPLOYEES, 250.0) == 250
    assert isinstance(to_crm(EMPLOYEES, 250.0), int)


def test_booleans_keep_their_polarity() -> None:
    """donotbulkemail true ↔ unsubscribed true (Appendix A; no inversion)."""
    assert to_marketing(UNSUBSCRIBED, True) is True
    assert to_crm(UNSUBSCRIBED, False) is False


def test_datetimes_are_utc_iso_strings_on_the_marketing_side() -> None:
    """Date-times travel as ``...Z`` (spec §2e) and any offset is converted, not dropped."""
    value = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert to_marketing(CREATED, value) == "2026-03-01T09:30:00Z"
    plus_two = datetime(2026, 3, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    assert to_marketing(CREATED, plus_two) == "2026-03-01T09:30:00Z"
    assert to_crm(CREATED, "2026-03-01T11:30:00+02:00") == value
    assert to_crm(CREATED, "2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert format_datetime(value.replace(microsecond=120)) == "2026-03-01T09:30:00.000120Z"


@pytest.mark.parametrize("bad", ["2026-03-01T09:30:00", "yesterday", "1752-12-31T00:00:00Z"])
def test_unusable_datetimes_fail(bad: str) -> None:
    """A date-time without zone is never guessed; Dynamics starts at 1753-01-01 (§10)."""
    with pytest.raises(ValidationFailedError) as caught:
        to_crm(CREATED, bad)
    assert caught.value.code == CODE_BAD_DATETIME


def test_naive_datetimes_from_dynamics_are_refused() -> None:
    with pytest.raises(ValidationFailedError):
        to_marketing(CREATED, datetime(2026, 3, 1))


def test_single_table_lookups_are_ids_on_the_marketing_side() -> None:
    """Spec §2d: a lookup reads as a GUID; writing needs the table, known from Targets."""
    value = LookupValue(GUID, "account")
    assert to_marketing(PARENT_ACCOUNT, value) == GUID
    assert to_crm(PARENT_ACCOUNT, GUID) == value
    with pytest.raises(ValidationFailedError, match="GUID"):
        to_crm(PARENT_ACCOUNT, "not-an-id")


def test_a_bare_id_cannot_be_written_to_a_multi_table_lookup() -> None:
    """Owner and Customer lookups need the target table; an id alone is refused, not guessed."""
    with pytest.raises(ValidationFailedError, match="systemuser, team"):
        to_crm(OWNER, GUID)


def test_owner_links_only_to_sales_users() -> None:
    """B5/R105: a systemuser owner links the sales user; a team owner leaves the link empty."""
    owner = LinkConverter(OWNER, "systemuser")
    assert owner.to_marketing(LookupValue(GUID, "systemuser")) == GUID
    assert owner.to_marketing(LookupValue(GUID, "team")) is None
    assert owner.to_marketing(None) is None
    assert owner.to_crm(GUID) == LookupValue(GUID, "systemuser")
    assert owner.to_crm("") is None
    with pytest.raises(ValidationFailedError):
        LinkConverter(OWNER, "account").to_crm(GUID)


def test_date_only_columns_are_plain_dates() -> None:
    """An opportunity's close date is a DateOnly column; its marketing field is YYYY-MM-DD."""
    close = DateOnlyConverter(AttributeSchema("actualclosedate", T.DATETIME))
    assert close.to_marketing(datetime(2026, 5, 1, tzinfo=UTC)) == "2026-05-01"
    assert close.to_marketing("2026-05-01") == "2026-05-01"
    assert close.to_crm("2026-05-01") == datetime(2026, 5, 1, tzinfo=UTC)
    assert close.to_crm(None) is None
    with pytest.raises(ValidationFailedError):
        close.to_marketing("soon")


def test_normalized_marketing_values_compare_equal_across_spellings() -> None:
    """Before a merge, spellings of one value must not look like edits (B19, B22)."""
    assert normalize_marketing(LEAD_SOURCE, "web") == "Web"
    assert normalize_marketing(CREATED, "2026-03-01T11:30:00+02:00") == "2026-03-01T09:30:00Z"
    assert normalize_marketing(LEAD_SOURCE, "Carrier Pigeon") == "Carrier Pigeon"
    assert normalize_marketing(FIRSTNAME, "") is None
    source = ColumnConverter(LEAD_SOURCE)
    assert canonical_value(source, "web") == "Web"
    assert canonical_value(source, ["Web"]) == ["Web"]  # not a value this column holds
    created = ColumnConverter(CREATED)
    assert canonical_value(created, "2026-03-01T11:30:00+02:00") == "2026-03-01T09:30:00Z"
    close = DateOnlyConverter(AttributeSchema("actualclosedate", T.DATETIME))
    assert canonical_value(close, "2026-03-01") == "2026-03-01"


def test_unsupported_column_types_are_refused() -> None:
    virtual = AttributeSchema("entityimage", T.VIRTUAL)
    with pytest.raises(ValidationFailedError, match="not synced"):
        to_marketing(virtual, "x")
    with pytest.raises(ValidationFailedError, match="not synced"):
        to_crm(virtual, "x")
