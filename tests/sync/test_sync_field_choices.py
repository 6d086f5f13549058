"""The admin's choices for a selected column (B9, B46): mapping onto an existing marketing
field of a compatible type, and the per-field rule carried by the mapping."""

from __future__ import annotations

import re

import pytest

from crmsync.dynamics.types import AttributeSchema, AttributeType, EntitySchema
from crmsync.errors import InvalidValueError
from crmsync.marketing.fields import FieldDef
from crmsync.sync.field_choices import check_existing_field, check_rule, parse_column
from crmsync.sync.mapping import ColumnChoice, Direction, mapping_for_selection
from crmsync.sync.policy import FieldRule, SyncRule

T = AttributeType
URL = AttributeSchema("websiteurl", T.STRING, max_length=200)
LEAD = EntitySchema(
    "lead",
    "leads",
    "leadid",
    "fullname",
    True,
    False,
    {
        "leadid": AttributeSchema("leadid", T.UNIQUEIDENTIFIER, valid_for_update=False),
        "jobtitle": AttributeSchema("jobtitle", T.STRING, max_length=100),
        "websiteurl": URL,
        "revenue": AttributeSchema("revenue", T.MONEY),
    },
)


def _field(
    name: str, data_type: str, length: int | None = None, read_only: bool = False
) -> FieldDef:
    return FieldDef("person", name, name, data_type, length, read_only, False)


def test_a_column_maps_onto_a_field_that_holds_its_values() -> None:
    assert check_existing_field("lead", URL, _field("website", "url", 255), "website") == "website"
    revenue = LEAD.attributes["revenue"]
    assert check_existing_field("lead", revenue, _field("amount", "float"), "amount") == "amount"


@pytest.mark.parametrize(
    ("field", "says"),
    [
        (None, "there is no marketing field 'site'"),
        (_field("site", "url", 255, read_only=True), "is read-only"),
        (_field("site", "integer"), "holds String values (string)"),
        (_field("site", "url", 100), "holds up to 200 characters"),
    ],
)
def test_a_field_that_cannot_take_the_columns_values_is_refused(
    field: FieldDef | None, says: str
) -> None:
    with pytest.raises(InvalidValueError, match=re.escape(says)):
        check_existing_field("lead", URL, field, "site")


def test_column_entries_read_with_or_without_a_field() -> None:
    assert parse_column(" WebsiteURL = website ") == ("websiteurl", "website")
    assert parse_column("jobtitle") == ("jobtitle", None)
    for bad in ("=website", "websiteurl="):
        with pytest.raises(InvalidValueError, match="COLUMN=FIELD"):
            parse_column(bad)


def test_the_mapping_carries_the_chosen_field_and_rule() -> None:
    mapping = mapping_for_selection(
        LEAD,
        [
            ColumnChoice("websiteurl", "website", FieldRule(SyncRule.MARKETING_WINS, True)),
            ColumnChoice("jobtitle", None, FieldRule(SyncRule.DYNAMICS_TO_MARKETING)),
            "leadid",
        ],
    )
    website = mapping.for_field("website")
    assert website.attribute == "websiteurl" and website.direction is Direction.BOTH
    title = mapping.for_field("title")
    assert title.direction is Direction.CRM_TO_MARKETING  # never pushed
    assert "title" in mapping.crm_only_fields
    assert dict(mapping.field_rules) == {
        "website": FieldRule(SyncRule.MARKETING_WINS, True),
        "title": FieldRule(SyncRule.DYNAMICS_TO_MARKETING),
    }
    with pytest.raises(InvalidValueError, match="syncs from Dynamics only"):
        mapping.to_crm({"title": "CEO"})


def test_a_rule_that_writes_dynamics_is_refused_for_a_read_only_column() -> None:
    mapping = mapping_for_selection(
        LEAD, [ColumnChoice("leadid", None, FieldRule(SyncRule.MARKETING_TO_DYNAMICS))]
    )
    with pytest.raises(InvalidValueError, match=r"lead\.leadid syncs from Dynamics only"):
        check_rule("lead", mapping.fields[0])
    fine = mapping_for_selection(
        LEAD, [ColumnChoice("leadid", None, FieldRule(SyncRule.DYNAMICS_WINS, True))]
    )
    check_rule("lead", fine.fields[0])
