"""Parameter parsing of the Marketo API: the shapes Marketo clients send (spec marketo-rest §1)."""

from __future__ import annotations

import datetime as dt

import pytest

from crmsync.web.envelope import ApiError
from crmsync.web.params import ApiParams, as_record_id, media_type, parse_datetime


def test_array_parameters_accept_repeated_keys_commas_and_both() -> None:
    """§1 "Array parameters": repeated keys, comma-separated values, and the two combined."""
    params = ApiParams.from_query("fields=email&fields=firstName%2ClastName&id=1,2&id=3")
    assert params.get_list("fields") == ["email", "firstName", "lastName"]
    assert params.get_int_list("id") == [1, 2, 3]


def test_form_body_and_json_object_merge_with_the_query() -> None:
    """§10.3: ``_method=GET`` tunnelling merges query, form body and JSON body."""
    params = ApiParams.from_query("_method=GET")
    params.add_form(b"filterType=email&filterValues=a%40b.com%2Cc%40d.com&batchSize=10")
    params.add_json_object({"fields": ["email", "id"], "input": [{"id": 1}], "flag": True})
    assert params.get("_method") == "GET"
    assert params.get_list("filterValues") == ["a@b.com", "c@d.com"]
    assert params.batch_size() == 10
    assert params.get_list("fields") == ["email", "id"]
    assert params.get("flag") == "true"
    assert "input" not in params


@pytest.mark.parametrize(
    ("query", "code"),
    [("batchSize=301", "1003"), ("batchSize=0", "1003"), ("batchSize=x", "1003"), ("", "701")],
)
def test_bad_parameters_give_marketo_codes(query: str, code: str) -> None:
    """§3: a bad batch size is 1003, a missing required parameter 701."""
    params = ApiParams.from_query(query)
    with pytest.raises(ApiError) as caught:
        if code == "701":
            params.require("filterType")
        else:
            params.batch_size()
    assert caught.value.code == code


def test_bounded_array_parameters_say_blank_or_too_many() -> None:
    """§1, §4.4, §5.3: a required array is 701 when empty, 1003 past its maximum."""
    params = ApiParams.from_query("filterValues=a,b,c&activityTypeIds=1,2&leadIds=7,8,9")
    assert params.require_list("filterValues", 3) == ["a", "b", "c"]
    assert params.require_int_list("activityTypeIds", 2) == [1, 2]
    assert params.get_int_list("leadIds", 3) == [7, 8, 9]
    assert params.get_int_list("nothing", 3) == []
    checks = [
        (
            lambda: params.require_list("filterValues", 2),
            "1003",
            "Too many filterValues: 3, at most 2",
        ),
        (
            lambda: params.require_int_list("activityTypeIds", 1),
            "1003",
            "Too many activityTypeIds: 2, at most 1",
        ),
        (lambda: params.get_int_list("leadIds", 2), "1003", "Too many leadIds: 3, at most 2"),
        (lambda: params.require_list("fields", 300), "701", "'fields' cannot be blank"),
        (lambda: params.require_int_list("id", 300), "701", "'id' cannot be blank"),
    ]
    for call, code, message in checks:
        with pytest.raises(ApiError) as caught:
            call()
        assert (caught.value.code, caught.value.message) == (code, message)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        ("2015-10-06T13:22:17-08:00", dt.datetime(2015, 10, 6, 21, 22, 17, tzinfo=dt.UTC)),
        ("2015-10-06T13:22-0700", dt.datetime(2015, 10, 6, 20, 22, tzinfo=dt.UTC)),
        ("2024-03-01T10:00:00Z", dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC)),
        ("2024-03-01T10:00:00 01:00", dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)),
    ],
)
def test_since_datetime_accepts_the_documented_forms(text: str, expected: dt.datetime) -> None:
    """§5.2: bare dates, offsets with or without a colon, ``Z``, and an unencoded ``+``."""
    assert parse_datetime(text) == expected


def test_since_datetime_rejects_garbage_with_704() -> None:
    """§5.2: anything else is 704 Invalid date format."""
    with pytest.raises(ApiError) as caught:
        parse_datetime("yesterday")
    assert caught.value.code == "704"


def test_media_type_ignores_charset() -> None:
    """§1 Content-Type: clients add ``; charset=utf-8``."""
    assert media_type("Application/JSON; charset=utf-8") == "application/json"
    assert media_type(None) == ""


def test_booleans_are_case_insensitive() -> None:
    """§1: clients send Python's ``False``; anything else is refused with 1003."""
    params = ApiParams.from_query("isTriggerable=False&other=TRUE&bad=maybe")
    assert params.get_bool("isTriggerable", default=True) is False
    assert params.get_bool("other") is True
    with pytest.raises(ApiError) as caught:
        params.get_bool("bad")
    assert caught.value.code == "1003"


def test_digits_int_cannot_read_are_not_record_ids() -> None:
    """'¹' passes ``str.isdigit`` but ``int('¹')`` fails: it is no record id."""
    assert as_record_id("¹") is None
    assert as_record_id(" 42 ") == 42
