"""Fault injection knobs and the admin API of the emulator (issue 3 'Faults', spec §12)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import httpx
import pytest
from control_plane_support import ORG, SLOW, WHOAMI, bearer, build_app, emulator, full_emulator

from crmsync.emulator.config import FaultSettings, default_config
from crmsync.emulator.runtime import EmulatorRuntime


def admin(config: Any) -> dict[str, str]:
    return {"X-Emulator-Key": config.admin_key.reveal()}


def test_error_rate_one_answers_every_request_with_the_chosen_5xx() -> None:
    """5xx knob: error_rate 1 → every API call fails with error_status and a JSON error body."""
    config = dataclasses.replace(
        default_config(), faults=FaultSettings(error_rate=1.0, error_status=502)
    )
    with emulator(config) as (api, config, _):
        response = api.get(WHOAMI, headers=bearer(api.token(config)))
        assert response.status_code == 502
        assert response.json() == {
            "error": {"code": "0x80040216", "message": "An unexpected error occurred."}
        }


def _statuses(seed: int, count: int, extra_tokens: int = 0) -> list[int]:
    config = dataclasses.replace(default_config(), seed=seed, faults=FaultSettings(error_rate=0.5))
    with emulator(config) as (api, config, _):
        headers = bearer(api.token(config))
        statuses = []
        for index in range(count):
            if index < extra_tokens:
                api.token(config)  # sign-ins in between do not move the fault pattern
            statuses.append(api.get(WHOAMI, headers=headers).status_code)
        return statuses


def test_error_rate_is_deterministic_under_the_seed() -> None:
    """Same seed → the same requests fail; another seed → another pattern; about half fail."""
    first = _statuses(7, 40)
    assert first == _statuses(7, 40, extra_tokens=5)
    assert first != _statuses(8, 40)
    assert 8 <= first.count(503) <= 32
    assert set(first) == {200, 503}


def test_latency_is_added_before_handling() -> None:
    """Latency knob: each API call takes at least latency_ms longer."""
    with emulator() as (api, config, _):
        headers = bearer(api.token(config))
        assert api.patch("/_emulator/faults", json={"latency_ms": 150}, headers=admin(config))
        started = time.perf_counter()
        assert api.get(WHOAMI, headers=headers).status_code == 200
        assert time.perf_counter() - started >= 0.15


def test_throttle_burst_refuses_the_next_n_requests() -> None:
    """429 bursts: the next N calls get 429 + Retry-After + 0x80072322, then calls pass."""
    with emulator() as (api, config, _):
        headers = bearer(api.token(config))
        set_to = api.put(
            "/_emulator/faults",
            json={"throttle_burst": 2, "throttle_retry_after_seconds": 7},
            headers=admin(config),
        )
        assert set_to.json()["throttle_burst"] == 2
        for _ in range(2):
            refused = api.get(WHOAMI, headers=headers)
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "7"
            assert refused.json()["error"]["code"] == "0x80072322"
        assert api.get(WHOAMI, headers=headers).status_code == 200
        assert api.get("/_emulator/faults", headers=admin(config)).json()["throttle_burst"] == 0


def test_drop_rate_closes_the_connection_without_a_complete_response() -> None:
    """Dropped connections: the response is started but its body never arrives."""
    config = dataclasses.replace(default_config(), faults=FaultSettings(drop_rate=1.0))
    runtime = EmulatorRuntime(config)
    app = build_app(config, runtime)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": WHOAMI,
        "raw_path": WHOAMI.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 443),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert dict(sent[0]["headers"])[b"content-length"] != b"0"
    assert runtime.stats.faults_injected["dropped_connection"] == 1


def test_a_lost_answer_applies_the_write_and_drops_the_response() -> None:
    """Lost answers: the PATCH is carried out, but the client never gets the answer; reading
    the record afterwards shows the write happened."""
    with full_emulator() as (api, config, runtime):
        headers = bearer(api.token(config))
        made = api.post("/api/data/v9.2/leads", json={"lastname": "Lost"}, headers=headers)
        assert made.status_code == 204
        lead_id = made.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        knobs = {"lost_answer_rate": 1.0, "methods": ["PATCH"]}
        assert api.patch("/_emulator/faults", json=knobs, headers=admin(config)).is_success
        # In process the transport refuses a response whose body never completes (over a
        # socket the client sees the peer hang up); either way no answer arrives.
        with pytest.raises((httpx.HTTPError, AssertionError)):
            api.patch(
                f"/api/data/v9.2/leads({lead_id})", json={"jobtitle": "Applied"}, headers=headers
            )
        assert runtime.stats.faults_injected["lost_answer"] == 1
        read = api.get(f"/api/data/v9.2/leads({lead_id})?$select=jobtitle", headers=headers)
        assert read.json()["jobtitle"] == "Applied"


def test_faults_only_touch_the_web_api() -> None:
    """Knobs apply to /api/data/* only: the token endpoint and admin API stay reachable."""
    config = dataclasses.replace(default_config(), faults=FaultSettings(error_rate=1.0))
    with emulator(config) as (api, config, _):
        api.token(config)
        assert api.get("/_emulator/health").json()["status"] == "ok"


def test_admin_api_needs_the_key() -> None:
    """The admin API is protected by the configured key."""
    with emulator() as (api, _config, _):
        assert api.get("/_emulator/faults").status_code == 401
        wrong = api.put("/_emulator/faults", json={}, headers={"X-Emulator-Key": "wrong-key"})
        assert wrong.status_code == 401
        assert api.post("/_emulator/expire-tokens").status_code == 401
        assert api.get("/_emulator/stats").status_code == 401


def test_put_replaces_and_patch_merges_knobs() -> None:
    """PUT sets the whole knob set (omitted → default); PATCH changes only what it names."""
    with emulator() as (api, config, _):
        key = admin(config)
        api.put("/_emulator/faults", json={"latency_ms": 5, "error_rate": 0.1}, headers=key)
        merged = api.patch("/_emulator/faults", json={"error_status": 500}, headers=key).json()
        assert (merged["latency_ms"], merged["error_rate"], merged["error_status"]) == (
            5.0,
            0.1,
            500,
        )
        replaced = api.put("/_emulator/faults", json={"drop_rate": 0.25}, headers=key).json()
        assert replaced == {**FaultSettings().as_dict(), "drop_rate": 0.25}


def test_bad_knobs_are_refused_and_change_nothing() -> None:
    """Bad input gets a clear 400 and the previous knobs stay."""
    with emulator() as (api, config, _):
        key = admin(config)
        api.put("/_emulator/faults", json={"latency_ms": 3}, headers=key)
        for body, fragment in (
            ({"error_rate": 2}, "between 0 and 1"),
            ({"error_status": 418}, "error_status"),
            ({"bogus": 1}, "bogus"),
            ({"latency_ms": "slow"}, "latency_ms"),
        ):
            response = api.put("/_emulator/faults", json=body, headers=key)
            assert response.status_code == 400
            assert fragment in response.json()["error"]["message"]
        not_json = api.put("/_emulator/faults", content=b"{nope", headers=key)
        assert not_json.status_code == 400
        assert api.get("/_emulator/faults", headers=key).json()["latency_ms"] == 3.0


def test_expire_delta_tokens_bumps_the_epoch_the_data_plane_checks() -> None:
    """'Expire all delta tokens' moves runtime.delta_epoch; stats report counters."""
    with emulator() as (api, config, runtime):
        headers = bearer(api.token(config))
        api.get(WHOAMI, headers=headers)
        assert api.post("/_emulator/expire-delta-tokens", headers=admin(config)).json() == {
            "delta_epoch": 1
        }
        assert runtime.delta_epoch == 1
        stats = api.get("/_emulator/stats", headers=admin(config)).json()
        assert stats["delta_epoch"] == 1
        assert stats["api_requests"] == 1
        assert stats["tokens_issued"] == 1
        app_user_id = config.users[0].systemuserid
        assert stats["requests_by_user"] == {app_user_id: 1}
        assert stats["service_protection"][app_user_id]["requests_in_window"] == 1


def test_expired_delta_tokens_are_refused_by_the_web_api() -> None:
    """'Expire all delta tokens' on the whole emulator: the saved deltaLink now gets the
    documented 400 0x80044352 ExpiredVersionStamp (spec §4), a new tracking read works."""
    with full_emulator() as (api, config, _):
        headers = bearer(api.token(config))
        first = api.get(
            "/api/data/v9.2/leads?$select=lastname",
            headers={**headers, "Prefer": "odata.track-changes"},
        )
        delta_link = first.json()["@odata.deltaLink"].split(ORG, 1)[1]
        assert api.get(delta_link, headers=headers).status_code == 200
        api.post("/_emulator/expire-delta-tokens", headers=admin(config))
        expired = api.get(delta_link, headers=headers)
        assert expired.status_code == 400
        assert expired.json()["error"]["code"] == "0x80044352"
        again = api.get(
            "/api/data/v9.2/leads?$select=lastname",
            headers={**headers, "Prefer": "odata.track-changes"},
        )
        assert again.status_code == 200 and "@odata.deltaLink" in again.json()


def test_faults_can_target_methods_and_paths() -> None:
    """Scoped knobs: only writes, or only one path, meet the faults; the rest pass."""
    with emulator() as (api, config, _):
        headers = bearer(api.token(config))
        key = admin(config)
        scoped = api.put(
            "/_emulator/faults", json={"error_rate": 1, "methods": ["post"]}, headers=key
        ).json()
        assert scoped["methods"] == ["POST"]
        assert api.get(WHOAMI, headers=headers).status_code == 200
        assert api.post(WHOAMI, headers=headers, json={}).status_code == 503
        api.put(
            "/_emulator/faults", json={"throttle_burst": 1, "path_contains": "slow"}, headers=key
        )
        assert api.get(WHOAMI, headers=headers).status_code == 200
        assert api.get(SLOW, headers=headers).status_code == 429
        assert api.get(SLOW, headers=headers).status_code == 200
        bad = api.put("/_emulator/faults", json={"methods": ["FETCH"]}, headers=key)
        assert bad.status_code == 400 and "FETCH" in bad.json()["error"]["message"]
