"""Hostile or malformed input gets Dataverse's 400 error shape, never a 500 or a hang.

Microsoft Learn, "Web API error handling" (https://learn.microsoft.com/power-apps/developer/
data-platform/webapi/compose-http-requests-handle-errors#parse-errors-from-the-response): a
request the service cannot accept is a 4xx with ``{"error": {"code", "message"}}``. JSON with
``NaN`` or a lone surrogate is not JSON (RFC 8259 §6, §8.2); ``$top`` is an Edm.Int64 (OData
URL Conventions §5.1.1.14.2 / Dataverse "Limit the number of rows").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from data_plane_support import API, Emulator, running_emulator

from crmsync.cli.emulator import connection_details
from crmsync.emulator.config import default_config
from crmsync.emulator.secret import Secret


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _assert_400(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"].startswith("0x") and error["message"]
    return error


def _raw(emu: Emulator, method: str, path: str, body: bytes) -> Any:
    return emu.client.request(method, f"{API}/{path}", content=body, headers=emu.headers())


def test_thousands_of_nested_parentheses_in_filter(emu: Emulator) -> None:
    """A $filter nested 5,000 parentheses deep: 400, not a RecursionError 500."""
    deep = "(" * 5000 + "lastname eq 'x'" + ")" * 5000
    _assert_400(emu.request("GET", f"leads?$filter={deep}"))


def test_thousands_of_nots_in_filter(emu: Emulator) -> None:
    """5,000 ``not`` in a row: 400."""
    _assert_400(emu.request("GET", "leads?$filter=" + "not " * 5000 + "lastname eq 'x'"))


def test_a_long_chain_of_or_conditions_still_works(emu: Emulator) -> None:
    """Hundreds of ``or`` terms (an id list) are not nesting: they are answered."""
    lead = emu.create("leads", {"lastname": "Listed"})
    terms = " or ".join(["lastname eq 'nobody'"] * 1500 + [f"leadid eq {lead}"])
    response = emu.request("GET", f"leads?$select=lastname&$filter={terms}")
    assert response.status_code == 200, response.text
    assert [row["lastname"] for row in response.json()["value"]] == ["Listed"]


@pytest.mark.parametrize("top", ["9223372036854775808", "99999999999999999999999", "-1", "1e3"])
def test_top_outside_int64_or_not_a_number(emu: Emulator, top: str) -> None:
    """$top beyond 64 bits (or negative, or not an integer): 400 naming the value."""
    error = _assert_400(emu.request("GET", f"leads?$top={top}"))
    assert top in error["message"]


def test_top_at_the_int64_limit_is_fine(emu: Emulator) -> None:
    """The largest Int64 is a valid $top."""
    emu.create("leads", {"lastname": "One"})
    response = emu.request("GET", "leads?$select=lastname&$top=9223372036854775807")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"firstname": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"firstname": "\\ud800"}',
        b'{"lastname": "x", "revenue": NaN}',
        b'{"lastname": "x", "revenue": Infinity}',
    ],
    ids=["deeply-nested", "lone-surrogate", "nan", "infinity"],
)
def test_bad_json_bodies_are_refused(emu: Emulator, body: bytes) -> None:
    """PATCH (upsert) and POST with these bodies: 400 payload error; nothing is written."""
    lead = emu.create("leads", {"lastname": "Before"})
    _assert_400(_raw(emu, "PATCH", f"leads({lead})", body))
    _assert_400(_raw(emu, "POST", "leads", body))
    assert emu.request("GET", f"leads({lead})/lastname").json()["value"] == "Before"
    assert len(emu.request("GET", "leads").json()["value"]) == 1


def test_nan_no_longer_stores_null(emu: Emulator) -> None:
    """{"revenue": NaN} used to be stored as null; now the old value stays."""
    lead = emu.create("leads", {"lastname": "Rich", "revenue": 500})
    _assert_400(_raw(emu, "PATCH", f"leads({lead})", b'{"revenue": NaN}'))
    assert emu.request("GET", f"leads({lead})/revenue").json()["value"] == 500


@pytest.mark.parametrize(
    "path", ["AddMemberList", "leads/Microsoft.Dynamics.CRM.CreateMultiple", "EntityDefinitions"]
)
def test_deep_json_in_actions_and_metadata(emu: Emulator, path: str) -> None:
    """Actions, bulk messages and metadata writes parse the same strict way."""
    _assert_400(_raw(emu, "POST", path, b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"))


@pytest.mark.parametrize(
    "expand",
    [
        "leads?$expand=parentaccountid($select=name",
        "leads?$expand=parentaccountid($select=name))",
        "EntityDefinitions(LogicalName='lead')?$expand=Attributes($select=LogicalName",
    ],
)
def test_unbalanced_expand(emu: Emulator, expand: str) -> None:
    """Unbalanced parentheses in $expand: 400 (it was silently answered)."""
    _assert_400(emu.request("GET", expand))


def _admin(emu: Emulator, body: bytes) -> Any:
    key = emu.config.admin_key.reveal()
    return emu.client.patch(
        "https://contoso.crm.dynamics.com/_emulator/faults",
        content=body,
        headers={"X-Emulator-Key": key},
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"latency_ms": 1e12}',
        b'{"latency_ms": -1}',
        b'{"latency_ms": NaN}',
        b'{"throttle_retry_after_seconds": 100000000}',
        b'{"throttle_burst": 10000000000}',
    ],
)
def test_out_of_range_fault_knobs_are_refused(emu: Emulator, body: bytes) -> None:
    """A latency of 1e12 ms would hang every request: 400 naming the knob; nothing changes."""
    response = _admin(emu, body)
    assert response.status_code == 400, response.text
    knobs = emu.client.get(
        "https://contoso.crm.dynamics.com/_emulator/faults",
        headers={"X-Emulator-Key": emu.config.admin_key.reveal()},
    ).json()
    assert knobs["latency_ms"] == 0 and knobs["throttle_burst"] == 0
    assert knobs["throttle_retry_after_seconds"] == 5
    assert emu.request("GET", "WhoAmI").status_code == 200


def test_a_sensible_latency_is_still_accepted(emu: Emulator) -> None:
    """Two seconds of latency is a normal test setting."""
    response = _admin(emu, b'{"latency_ms": 2000}')
    assert response.status_code == 200, response.text
    assert response.json()["latency_ms"] == 2000


def test_details_print_builtin_secrets_only() -> None:
    """`crmsync emulator --json` shows the built-in test credentials but never the secrets a
    configuration file set: they come back as null."""
    builtin = connection_details(default_config(), "http://127.0.0.1:1", ":memory:", None, {})
    assert builtin["client_secret"] == "crmsync-emulator-secret"
    assert builtin["admin_key"] == "emulator-admin-key"
    assert builtin["users"][0]["password"] == "alex-password-1"
    config = default_config()
    own = {user.systemuserid: Secret(f"own-secret-{n}") for n, user in enumerate(config.users)}
    custom = dataclasses.replace(config, secrets=own, admin_key=Secret("our-admin-key-123"))
    details = connection_details(custom, "http://127.0.0.1:1", ":memory:", None, {})
    assert details["client_secret"] is None and details["admin_key"] is None
    assert [user["password"] for user in details["users"]] == [None, None]
    assert "own-secret" not in repr(details) and "our-admin-key" not in repr(details)
