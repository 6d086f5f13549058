"""Every crmsync error has one documented Marketo answer, given in one place (like httpx's
test that every transport error maps to one public exception)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from marketo_harness import MarketoHarness

from crmsync import errors
from crmsync.errors import CrmsyncError
from crmsync.web.api_marketo import MarketoApi
from crmsync.web.dispatch import ApiCall
from crmsync.web.error_answers import (
    ANSWERS,
    MARKETO_CODES,
    SYSTEM_ERROR_CODE,
    answer_for,
    api_error_for,
)

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ERROR_CLASSES = sorted(
    (
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, CrmsyncError) and cls.__module__ == errors.__name__
    ),
    key=lambda cls: cls.__name__,
)


def _doc_section(title: str) -> str:
    text = API_DOC.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start : end if end != -1 else len(text)]


def _documented_codes() -> set[str]:
    """The codes of the "Errors you may see" table (``| 601 / 602 | ... |`` rows too)."""
    codes: set[str] = set()
    for line in _doc_section("## Errors you may see").splitlines():
        cells = line.split("|")
        if len(cells) > 2:
            codes.update(re.findall(r"\b\d{3,4}\b", cells[1]))
    return codes


def _documented_answers() -> dict[str, str]:
    """Error class name -> the code given for it in "How crmsync's own errors are answered"."""
    answers: dict[str, str] = {}
    for line in _doc_section("### How crmsync's own errors are answered").splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) < 4 or not cells[1].startswith("`"):
            continue
        code = re.search(r"`(\d{3,4})`", cells[2])
        assert code is not None, line
        for name in re.findall(r"`(\w+)`", cells[1]):
            answers[name] = code.group(1)
    return answers


def test_the_walk_finds_the_whole_tree() -> None:
    """Guard the walk itself: it sees the base, the groups and the leaves."""
    names = {cls.__name__ for cls in ERROR_CLASSES}
    assert {"CrmsyncError", "InputError", "ThrottledError", "RecordNotFoundError"} <= names
    assert len(names) >= 17


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_crmsync_error_maps_to_a_documented_answer(
    error_class: type[CrmsyncError],
) -> None:
    """Each class of ``crmsync.errors`` has its row in docs/api.md and gets that answer."""
    documented = _documented_answers()
    assert error_class.__name__ in documented, f"{error_class.__name__} missing in docs/api.md"
    answer = api_error_for(error_class("what went wrong"))
    assert answer.code == documented[error_class.__name__]
    assert answer.code in _documented_codes()
    assert answer.http_status == 200  # Marketo errors travel with HTTP 200 (§1.1)
    if answer.code == SYSTEM_ERROR_CODE:
        assert answer.message == "System error"  # no details of server-side failures
    else:
        assert answer.message == "what went wrong"


def test_every_code_the_api_may_answer_is_documented() -> None:
    """The table's codes and every code an error may bring of its own are in docs/api.md."""
    assert _documented_codes() >= MARKETO_CODES
    assert {answer.code for _, answer in ANSWERS} <= MARKETO_CODES
    assert ANSWERS[-1][0] is CrmsyncError  # the last row catches every other error


def test_an_error_keeps_its_own_marketo_code_but_never_a_foreign_one() -> None:
    """A blank name is 701; a Dataverse code is not a Marketo code and never reaches clients."""
    assert api_error_for(errors.InvalidValueError("name cannot be blank", code="701")).code == "701"
    assert api_error_for(errors.UnknownFieldError("Field 'x' not found")).code == "1006"
    dataverse = errors.ValidationFailedError("too long", code="0x80044331")
    assert api_error_for(dataverse).code == "1003"
    lease = errors.LeaseHeldError("held by pid 7", code="1003")
    assert api_error_for(lease).code == SYSTEM_ERROR_CODE
    assert answer_for(lease).unexpected


def test_a_handler_never_catches_crmsync_errors_the_dispatcher_answers_them(
    marketo: MarketoHarness,
) -> None:
    """An input error raised below a handler is its Marketo error; a fatal one is 611, with
    nothing of its message sent and the call not counted against the rate."""
    api: MarketoApi = marketo.app.state.marketo

    def bad_input(_call: ApiCall) -> dict[str, object]:
        raise errors.InvalidValueError("Invalid nextPageToken 'zz'")

    def broken(_call: ApiCall) -> dict[str, object]:
        raise errors.DatabaseNotMigratedError("schema at revision 0007: run crmsync db upgrade")

    api.dispatcher.routes.add("GET", "/rest/v1/test/bad-input.json", bad_input)
    api.dispatcher.routes.add("GET", "/rest/v1/test/broken.json", broken)

    reply = marketo.get("/rest/v1/test/bad-input.json")
    assert reply["errors"] == [{"code": "1003", "message": "Invalid nextPageToken 'zz'"}]
    counted = api.limits.rate.calls_in_window(marketo.client_id)

    raw = marketo.http.get("/rest/v1/test/broken.json", headers=marketo.auth)
    assert raw.status_code == 200
    assert raw.json()["errors"] == [{"code": "611", "message": "System error"}]
    assert "0007" not in raw.text and "upgrade" not in raw.text
    assert api.limits.rate.calls_in_window(marketo.client_id) == counted
