"""Service protection limits of the emulator, per user (spec §8)."""

from __future__ import annotations

import asyncio
import dataclasses

from control_plane_support import ORG, SLOW, WHOAMI, Api, bearer, build_app, emulator

from crmsync.emulator.config import default_config
from crmsync.emulator.protection import Admission, ServiceProtection, Throttle
from crmsync.emulator.runtime import EmulatorRuntime, ManualClock


def test_request_limit_per_user_gives_429_with_retry_after_and_code() -> None:
    """§8: N requests per window per user; the next gets 429 0x80072322 and Retry-After."""
    config = dataclasses.replace(default_config(), request_limit=3, request_window_seconds=60)
    clock = ManualClock()
    with emulator(config, clock) as (api, config, _):
        headers = bearer(api.token(config))
        for remaining in (2, 1, 0):
            ok = api.get(WHOAMI, headers=headers)
            assert ok.status_code == 200
            assert ok.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == str(remaining)
        clock.advance(seconds=20)
        refused = api.get(WHOAMI, headers=headers)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "40"
        assert refused.json() == {
            "error": {
                "code": "0x80072322",
                "message": "Number of requests exceeded the limit of 3 over time window of "
                "60 seconds.",
            }
        }
        clock.advance(seconds=40)
        assert api.get(WHOAMI, headers=headers).status_code == 200


def test_limits_are_per_user() -> None:
    """§8: 'limits are applied to all users in the same way' — each user has its own window."""
    config = dataclasses.replace(default_config(), request_limit=1)
    with emulator(config, ManualClock()) as (api, config, _):
        app_headers = bearer(api.token(config))
        alex = bearer(api.user_token(config, "alex.morgan@contoso.example", "alex-password-1"))
        assert api.get(WHOAMI, headers=app_headers).status_code == 200
        assert api.get(WHOAMI, headers=app_headers).status_code == 429
        assert api.get(WHOAMI, headers=alex).status_code == 200


def test_concurrency_limit_refuses_immediately() -> None:
    """§8: more than `concurrency_limit` requests in flight → 429 0x80072326 at once."""
    config = dataclasses.replace(default_config(), concurrency_limit=2)
    app_user = config.users[0]

    async def scenario() -> list[int]:
        runtime = EmulatorRuntime(config)
        release = asyncio.Event()
        api = Api(build_app(config, runtime, release), asyncio.get_running_loop())
        token = await api.http.post(
            f"/{config.tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": app_user.client_id or "",
                "client_secret": config.secret_for(app_user).reveal(),
                "scope": f"{ORG}/.default",
            },
        )
        headers = bearer(token.json()["access_token"])
        waiting = [asyncio.create_task(api.http.get(SLOW, headers=headers)) for _ in range(2)]
        while runtime.protection.in_flight(app_user.systemuserid) < 2:
            await asyncio.sleep(0.001)
        third = await api.http.get(SLOW, headers=headers)
        assert third.headers["retry-after"] == "1"
        assert third.json()["error"] == {
            "code": "0x80072326",
            "message": "Number of concurrent requests exceeded the limit of 2.",
        }
        release.set()
        statuses = [third.status_code, *[(await task).status_code for task in waiting]]
        after = await api.http.get(WHOAMI, headers=headers)
        await api.http.aclose()
        return [*statuses, after.status_code]

    assert asyncio.run(scenario()) == [429, 200, 200, 200]


def test_combined_execution_time_limit() -> None:
    """§8: combined execution time over the window → 429 0x80072321 until it slides past."""
    config = dataclasses.replace(
        default_config(), execution_time_limit_ms=1000, request_window_seconds=300
    )
    clock = ManualClock()
    protection = ServiceProtection(config, clock)
    assert isinstance(protection.admit("u1"), Admission)
    protection.release("u1", 700)
    clock.advance(seconds=100)
    assert isinstance(protection.admit("u1"), Admission)
    protection.release("u1", 400)
    refused = protection.admit("u1")
    assert isinstance(refused, Throttle)
    assert refused.code == "0x80072321"
    assert "exceeded limit of 1,000 milliseconds over time window of 300 seconds" in refused.message
    # Dropping the first 700 ms (charged at t=0) brings the total under the limit at t=300.
    assert refused.retry_after == 200
    clock.advance(seconds=200)
    assert isinstance(protection.admit("u1"), Admission)


def test_refused_requests_do_not_fill_the_window() -> None:
    """A 429 is not counted, so a client that waits Retry-After gets through."""
    config = dataclasses.replace(default_config(), request_limit=2, request_window_seconds=10)
    clock = ManualClock()
    protection = ServiceProtection(config, clock)
    assert isinstance(protection.admit("u"), Admission)  # t = 0
    protection.release("u", 1)
    clock.advance(seconds=5)
    assert isinstance(protection.admit("u"), Admission)  # t = 5
    protection.release("u", 1)
    for _ in range(5):
        refused = protection.admit("u")
        assert isinstance(refused, Throttle) and refused.retry_after == 5
    clock.advance(seconds=5)
    assert isinstance(protection.admit("u"), Admission)


def test_admin_reset_empties_the_windows() -> None:
    """POST /_emulator/reset-limits lets a throttled user straight back in."""
    config = dataclasses.replace(default_config(), request_limit=1)
    with emulator(config, ManualClock()) as (api, config, _):
        headers = bearer(api.token(config))
        assert api.get(WHOAMI, headers=headers).status_code == 200
        assert api.get(WHOAMI, headers=headers).status_code == 429
        reset = api.post(
            "/_emulator/reset-limits", headers={"X-Emulator-Key": config.admin_key.reveal()}
        )
        assert reset.status_code == 200
        assert api.get(WHOAMI, headers=headers).status_code == 200
