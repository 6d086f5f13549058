"""Query-option parsing (spec §0 Prefer, §3 $filter grammar and literals)."""

from __future__ import annotations

import pytest

from crmsync.emulator.errors import EmulatorFault
from crmsync.emulator.odata import (
    Comparison,
    InFunction,
    Literal,
    Logical,
    Not,
    Property,
    StringFunction,
    evaluate,
    parse_filter,
    parse_orderby,
    parse_prefer,
    split_top_level,
)


def test_prefer_with_several_values_and_a_quoted_annotation_list() -> None:
    """§0: comma-separated preferences; the annotation list is quoted and holds commas."""
    prefs = parse_prefer(
        [
            'odata.include-annotations="OData.Community.Display.V1.FormattedValue,'
            'Microsoft.Dynamics.CRM.lookuplogicalname",odata.maxpagesize=100',
            "return=representation",
        ]
    )
    assert prefs.max_page_size == 100 and prefs.return_representation
    assert prefs.formatted and prefs.lookup_details == (True, False)
    assert parse_prefer(['odata.include-annotations="*"']).wants("Microsoft.PowerApps.CDS.HelpLink")
    assert parse_prefer(["odata.track-changes"]).track_changes
    assert parse_prefer(["odata.continue-on-error"]).continue_on_error


@pytest.mark.parametrize("bad", ["odata.maxpagesize=abc", "odata.maxpagesize=0"])
def test_prefer_rejects_bad_page_sizes(bad: str) -> None:
    """A malformed odata.maxpagesize is a clear 400."""
    with pytest.raises(EmulatorFault) as raised:
        parse_prefer([bad])
    assert raised.value.status == 400


def test_filter_precedence_literals_and_functions() -> None:
    """§3: not > and > or; quoted quotes; GUID, date-time, null and enum literals."""
    node = parse_filter(
        "lastname eq 'O''Bryan' or not startswith(firstname,'a') and "
        "_ownerid_value eq 5ca9f4a0-1b2c-4d3e-8f90-123456789abc and "
        "createdon gt 2024-11-01T00:00:00Z"
    )
    assert isinstance(node, Logical) and node.op == "or"
    assert node.left == Comparison("eq", Property("lastname"), Literal("O'Bryan", "string"))
    right = node.right
    # The three "and" terms form one balanced group (and is associative): not binds tightest.
    assert isinstance(right, Logical) and right.op == "and"
    assert right.left == Not(StringFunction("startswith", Property("firstname"), "a"))
    assert isinstance(right.right, Logical) and right.right.op == "and"
    assert right.right.left == Comparison(
        "eq", Property("_ownerid_value"), Literal("5ca9f4a0-1b2c-4d3e-8f90-123456789abc", "guid")
    )
    assert parse_filter("x eq null") == Comparison("eq", Property("x"), Literal(None, "null"))
    enum = parse_filter("AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'")
    assert enum == Comparison("eq", Property("AttributeType"), Literal("Picklist", "enum"))
    assert parse_filter(
        "Microsoft.Dynamics.CRM.In(PropertyName='statecode',PropertyValues=['0','1'])"
    ) == InFunction(Property("statecode"), ("0", "1"))


@pytest.mark.parametrize(
    "bad", ["lastname eq", "lastname has 'x'", "(a eq 1", "foo(a,'b')", "a eq 'x"]
)
def test_malformed_filters_are_400(bad: str) -> None:
    """Bad input gets a clear 400, never a 500."""
    with pytest.raises(EmulatorFault):
        parse_filter(bad)


def test_evaluate_against_documents_is_case_insensitive_and_follows_paths() -> None:
    """Metadata filters: complex properties through '/', strings without case."""
    document = {"LogicalName": "Lead", "CanChangeTrackingBeEnabled": {"Value": True}, "Code": 4}
    assert evaluate(
        parse_filter("LogicalName eq 'lead' and CanChangeTrackingBeEnabled/Value eq true"), document
    )
    assert evaluate(parse_filter("Code ge 4 and not contains(LogicalName,'x')"), document)
    assert not evaluate(parse_filter("Code lt 4"), document)


def test_orderby_parsing() -> None:
    """§3: `a asc, b desc`; default ascending."""
    assert parse_orderby("modifiedon asc,leadid") == [("modifiedon", False), ("leadid", False)]
    assert parse_orderby("name desc") == [("name", True)]
    with pytest.raises(EmulatorFault):
        parse_orderby("name sideways")


def test_split_top_level_keeps_nested_options_together() -> None:
    """§2: `$expand=OptionSet($select=Options),GlobalOptionSet(...)` is two items."""
    assert split_top_level("OptionSet($select=Options,Value),GlobalOptionSet", ",") == [
        "OptionSet($select=Options,Value)",
        "GlobalOptionSet",
    ]
    assert split_top_level("$select=a;$filter=(x eq 1;y)", ";") == [
        "$select=a",
        "$filter=(x eq 1;y)",
    ]
    assert split_top_level(" a ,,b", ",") == [" a ", "", "b"]
    for unbalanced in ("a,b(c", "a)", "a(b))"):
        with pytest.raises(EmulatorFault) as raised:
            split_top_level(unbalanced, ",")
        assert raised.value.status == 400
