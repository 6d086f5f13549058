"""Reading whole Dynamics rows through a mapping (B2, B16, B37): the page-at-a-time readers
give exactly what each field's converter gives, and a bad value fails with the same error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.dynamics.types import AttributeSchema, AttributeType, EntitySchema, LookupValue
from crmsync.errors import ValidationFailedError
from crmsync.sync.mapping import default_mapping

T = AttributeType
USER_ID = "0b3c7f1e-2a4d-4e6f-8a9b-1c2d3e4f5a6b"

LEAD = EntitySchema(
    "lead",
    "leads",
    "leadid",
    "fullname",
    True,
    False,
    {
        attr.logical_name: attr
        for attr in (
            AttributeSchema("leadid", T.UNIQUEIDENTIFIER, valid_for_update=False),
            AttributeSchema("firstname", T.STRING, max_length=50),
            AttributeSchema("lastname", T.STRING, max_length=50),
            AttributeSchema("emailaddress1", T.STRING, max_length=100),
            AttributeSchema("donotbulkemail", T.BOOLEAN),
            AttributeSchema("leadsourcecode", T.PICKLIST, options={8: "Web", 10: "Other"}),
            AttributeSchema("revenue", T.MONEY, min_value=0, max_value=1e14),
            AttributeSchema("ownerid", T.OWNER, targets=("systemuser", "team")),
            AttributeSchema(
                "createdon", T.DATETIME, valid_for_create=False, valid_for_update=False
            ),
            AttributeSchema("subject", T.STRING, max_length=300),
        )
    },
)

ANY_VALUE = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.booleans(),
    st.integers(-3, 12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(LookupValue(USER_ID, "systemuser")),
    st.just(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
)


def _field_by_field(row: dict[str, Any]) -> dict[str, object] | str:
    """The reference: each mapped field converted alone, in mapping order; or the first
    error's message."""
    mapping = default_mapping(LEAD)
    result: dict[str, object] = {}
    for mapped in mapping.fields:
        try:
            result[mapped.field] = mapped.converter.to_marketing(row.get(mapped.attribute))
        except ValidationFailedError as exc:
            return exc.message
    return result


@settings(deadline=None, max_examples=150)
@given(st.dictionaries(st.sampled_from(sorted(LEAD.attributes)), ANY_VALUE))
def test_whole_rows_read_exactly_as_field_by_field(row: dict[str, Any]) -> None:
    """B16 readers: for any row (well or badly typed), the values — or the error — are those
    of converting every field alone, in mapping order."""
    mapping = default_mapping(LEAD)
    expected = _field_by_field(row)
    try:
        values = mapping.to_marketing(row)
    except ValidationFailedError as exc:
        assert exc.message == expected
        return
    assert values == expected
    assert list(values) == list(mapping.field_names)


def test_a_number_in_a_text_column_names_that_column_before_a_later_bad_option() -> None:
    """B37: the error names the first failing field in mapping order, whatever its type."""
    mapping = default_mapping(LEAD)
    with pytest.raises(ValidationFailedError, match=r"^firstname: "):
        mapping.to_marketing({"firstname": 7, "leadsourcecode": "Web"})
    with pytest.raises(ValidationFailedError, match=r"^leadsourcecode: "):
        mapping.to_marketing({"firstname": "Ada", "leadsourcecode": True})


def test_typed_values_read_as_marketing_values() -> None:
    """B2: booleans, numbers, option sets (a missing option keeps its number) and text."""
    values = default_mapping(LEAD).to_marketing(
        {
            "firstname": "Ada",
            "donotbulkemail": False,
            "leadsourcecode": 99,
            "revenue": 12,
        }
    )
    assert values["firstName"] == "Ada"
    assert values["unsubscribed"] is False
    assert values["leadSource"] == "99"
    assert values["annualRevenue"] == 12
    assert default_mapping(LEAD).to_marketing({"revenue": 12.5})["annualRevenue"] == 12.5
