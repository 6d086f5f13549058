"""Hostile request bodies: deeply nested JSON is answered 609 without a server-side traceback,
and a tunnelled (``_method=GET``) body is read only once the caller is authenticated."""

from __future__ import annotations

import logging

import pytest
from marketo_harness import MarketoHarness

ISMEMBER = "/rest/v1/lists/1/leads/ismember.json"


def _deep(levels: int) -> bytes:
    return b'{"input":' + b"[" * levels + b"]" * levels + b"}"


def _no_traceback_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []
    assert "Traceback" not in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("levels", [100_000, 900, 40])
def test_deeply_nested_json_is_invalid_json_and_logs_no_traceback(
    marketo: MarketoHarness, caplog: pytest.LogCaptureFixture, levels: int
) -> None:
    caplog.set_level(logging.DEBUG)
    reply = marketo.http.post(
        "/rest/v1/leads.json",
        content=_deep(levels),
        headers={**marketo.auth, "Content-Type": "application/json"},
    )
    assert reply.status_code == 200
    assert reply.json()["errors"] == [{"code": "609", "message": "Invalid JSON"}]
    _no_traceback_logged(caplog)


def test_tunnelled_body_of_an_unauthenticated_caller_is_never_parsed(
    marketo: MarketoHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reply = marketo.http.post(
        ISMEMBER,
        params={"_method": "GET"},
        content=_deep(100_000),
        headers={"Content-Type": "application/json"},
    )
    assert reply.json()["errors"] == [{"code": "601", "message": "Access token invalid"}]
    _no_traceback_logged(caplog)


def test_tunnelled_deep_body_of_an_authenticated_caller_is_609(
    marketo: MarketoHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reply = marketo.http.post(
        ISMEMBER,
        params={"_method": "GET"},
        content=_deep(100_000),
        headers={**marketo.auth, "Content-Type": "application/json"},
    )
    assert reply.json()["errors"] == [{"code": "609", "message": "Invalid JSON"}]
    _no_traceback_logged(caplog)


def test_tunnelled_json_body_still_works(marketo: MarketoHarness) -> None:
    created = marketo.post_json("/rest/v1/leads.json", {"input": [{"email": "m@example.com"}]})
    lead_id = created["result"][0]["id"]
    list_id = marketo.http.post(
        "/rest/asset/v1/staticLists.json", data={"name": "Tunnel"}, headers=marketo.auth
    ).json()["result"][0]["id"]
    marketo.post_json(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": lead_id}]})
    reply = marketo.post_json(
        f"/rest/v1/lists/{list_id}/leads/ismember.json",
        {"input": [{"id": lead_id}]},
        params={"_method": "GET"},
    )
    assert reply["result"] == [{"id": lead_id, "status": "memberof"}]


def test_deeply_nested_folder_parameter_is_1003(
    marketo: MarketoHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reply = marketo.http.post(
        "/rest/asset/v1/staticLists.json",
        data={"name": "Deep", "folder": "[" * 100_000 + "]" * 100_000},
        headers=marketo.auth,
    )
    assert reply.json()["errors"][0]["code"] == "1003"
    _no_traceback_logged(caplog)
