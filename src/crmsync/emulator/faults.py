"""Fault injection, the admin API, and the control plane wrapped around ``/api/data/*``.

:func:`wrap_with_control` puts, in front of every ``/api/data/*`` request, in this order:

1. dropped connections (``drop_rate``): the response is started and the connection closed
   before its body, so the client sees the peer hang up mid-response;
2. added latency (``latency_ms``);
3. bearer authentication (spec §1): 401 with ``WWW-Authenticate`` and a JSON error body when
   the token is missing, malformed, expired, revoked or for another org; otherwise the user is
   put in ``scope["state"]["user"]`` (``request.state.user`` in the data plane) — or, with a
   ``CallerObjectId`` (Entra object id) / ``MSCRMCallerID`` (systemuserid) header from a user
   allowed to impersonate, the named user with the privileges both hold;
4. injected 5xx (``error_rate`` / ``error_status``) and 429 bursts (``throttle_burst``);
5. service protection per user (:mod:`.protection`, spec §8);
6. lost answers (``lost_answer_rate``): the request is carried out, a write applied, and
   then the connection is closed before the response body, so the client cannot tell
   whether it happened.

:func:`control_routes` gives the identity-provider routes (:mod:`.auth`) plus the admin API
under ``/_emulator/`` (``X-Emulator-Key: <admin_key>`` required except for ``health``):

* ``GET /_emulator/health``; ``GET /_emulator/stats``;
* ``GET /_emulator/faults``; ``PUT`` replaces the knobs (omitted ones reset to defaults);
  ``PATCH`` changes only the knobs given;
* ``POST /_emulator/expire-tokens``; ``POST /_emulator/expire-delta-tokens``;
* ``POST /_emulator/reset-limits`` (empties every user's service-protection window);
* ``/_emulator/privileges``: revoke or grant a user's table privileges (:mod:`.roles`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crmsync.dataverse_codes import (
    ACCESS_TOKEN_EXPIRED,
    INVALID_AUTH_TICKET,
    OBJECT_DOES_NOT_EXIST,
    PRIVILEGE_DENIED,
    THROTTLED_REQUESTS,
    UNEXPECTED,
)
from crmsync.emulator.auth import check_bearer, identity_routes
from crmsync.emulator.config import EmulatorConfig, EmulatorUser, FaultSettings
from crmsync.emulator.config_toml import faults_from_mapping
from crmsync.emulator.errors import EmulatorConfigError
from crmsync.emulator.jsontext import loads_strict
from crmsync.emulator.protection import Admission, Throttle
from crmsync.emulator.roles import privilege_routes
from crmsync.emulator.runtime import EmulatorRuntime

API_PREFIX = "/api/data/"
_NO_FAULTS = FaultSettings()
ADMIN_KEY_HEADER = "x-emulator-key"

# 401 bodies. The docs name AccessTokenExpired (0x8005F101) with this message for a missing or
# expired token; for a token that is not one of ours they are silent, InvalidAuthTicket is used.
_MISSING_OR_EXPIRED = (ACCESS_TOKEN_EXPIRED, "The requested resource requires authentication.")
_INVALID = (INVALID_AUTH_TICKET, "The authentication ticket is invalid.")
# Injected server errors. Dataverse's generic "unexpected error" code (spec §7); for 502/503/504
# real gateways may answer with HTML, but the Web API promises JSON errors, so JSON it is.
_SERVER_ERROR = (UNEXPECTED, "An unexpected error occurred.")


def _json_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")


async def _send_json(
    send: Send, status: int, body: bytes, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", b"application/json; odata.metadata=minimal"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"odata-version", b"4.0"),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop_connection(send: Send) -> None:
    # ASGI has no "close now" message: promise a body and return without sending it, which
    # makes the server close the connection mid-response (the client sees the peer hang up).
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
        }
    )


async def _discard(message: Message) -> None:
    """A ``send`` that throws the answer away (a lost answer: the work is done regardless)."""


def _take_burst(runtime: EmulatorRuntime) -> bool:
    with runtime.lock:
        remaining = runtime.faults.throttle_burst
        if remaining <= 0:
            return False
        runtime.faults = dataclasses.replace(runtime.faults, throttle_burst=remaining - 1)
        return True


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _base_url(scope: Scope) -> str:
    host = _header(scope, b"host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


CALLER_OBJECT_ID = "CallerObjectId"
MSCRM_CALLER_ID = "MSCRMCallerID"


def _impersonation_target(scope: Scope) -> tuple[str, str] | None:
    """(header, id) of the user a request asks to act as; ``CallerObjectId`` is preferred."""
    for name in (CALLER_OBJECT_ID, MSCRM_CALLER_ID):
        value = (_header(scope, name.lower().encode("ascii")) or "").strip()
        if value:
            return name, value
    return None


class ControlPlane:
    """ASGI middleware applying faults, authentication and service protection to the API."""

    def __init__(self, app: ASGIApp, config: EmulatorConfig, runtime: EmulatorRuntime) -> None:
        self.app = app
        self.config = config
        self.runtime = runtime
        self.protection = runtime.protection

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Apply the configured faults to a Web API request, then pass it on."""
        if scope["type"] != "http" or not str(scope["path"]).startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        runtime = self.runtime
        stats = runtime.stats
        with runtime.lock:
            stats.api_requests += 1
        faults: FaultSettings = runtime.faults
        if not faults.applies_to(str(scope.get("method", "GET")), str(scope["path"])):
            faults = _NO_FAULTS
        if faults.drop_rate > 0 and runtime.draw() < faults.drop_rate:
            self._count_fault("dropped_connection")
            await _drop_connection(send)
            return
        if faults.latency_ms > 0:
            self._count_fault("latency")
            await asyncio.sleep(faults.latency_ms / 1000.0)
        check = check_bearer(
            self.config, runtime, _header(scope, b"authorization"), origin=_base_url(scope)
        )
        if check.user is None:
            await self._unauthorized(scope, send, check.reason)
            return
        user = runtime.current_user(check.user)
        target = _impersonation_target(scope)
        if target is not None:
            acting = await self._impersonate(send, user, *target)
            if acting is None:
                return
            user = acting
        if faults.error_rate > 0 and runtime.draw() < faults.error_rate:
            self._count_fault(f"http_{faults.error_status}")
            await _send_json(send, faults.error_status, _json_body(*_SERVER_ERROR))
            return
        if faults.throttle_burst > 0 and _take_burst(runtime):
            self._count_fault("throttle_burst")
            retry_after = runtime.faults.throttle_retry_after_seconds
            config = self.config
            window = int(config.request_window_seconds)
            await self._throttled(
                send,
                Throttle(
                    THROTTLED_REQUESTS,
                    f"Number of requests exceeded the limit of {config.request_limit} over "
                    f"time window of {window} seconds.",
                    retry_after,
                    "fault_burst",
                ),
            )
            return
        # Limits count against the signed-in caller, also when it impersonates someone.
        caller_id = check.user.systemuserid
        outcome = self.protection.admit(caller_id)
        if isinstance(outcome, Throttle):
            await self._throttled(send, outcome)
            return
        if faults.lost_answer_rate > 0 and runtime.draw() < faults.lost_answer_rate:
            self._count_fault("lost_answer")
            await self._serve(scope, receive, _discard, user, outcome, caller_id)
            await _drop_connection(send)
            return
        await self._serve(scope, receive, send, user, outcome, caller_id)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        user: EmulatorUser,
        admission: Admission,
        user_id: str,
    ) -> None:
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["user"] = user
        extra = [
            (
                b"x-ms-ratelimit-burst-remaining-xrm-requests",
                str(admission.requests_remaining).encode("ascii"),
            ),
            (
                b"x-ms-ratelimit-time-remaining-xrm-requests",
                str(admission.time_remaining_ms).encode("ascii"),
            ),
        ]

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        runtime = self.runtime
        with runtime.lock:
            runtime.stats.requests_by_user[user_id] += 1
            runtime.stats.in_flight += 1
            runtime.stats.peak_in_flight = max(
                runtime.stats.peak_in_flight, runtime.stats.in_flight
            )
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_limits)
        finally:
            self.protection.release(user_id, (time.perf_counter() - started) * 1000.0)
            with runtime.lock:
                runtime.stats.in_flight -= 1

    async def _impersonate(
        self, send: Send, caller: EmulatorUser, header: str, target_id: str
    ) -> EmulatorUser | None:
        """The user the request acts as under impersonation (spec §9), or None once refused.

        ``CallerObjectId`` names the user by Entra object id, ``MSCRMCallerID`` by systemuserid.
        """
        if not caller.can_impersonate:
            await _send_json(
                send,
                403,
                _json_body(
                    PRIVILEGE_DENIED,
                    f"Principal user (Id={caller.systemuserid}, type=8) is missing "
                    "prvActOnBehalfOfAnotherUser privilege.",
                ),
            )
            return None
        if header == CALLER_OBJECT_ID:
            target = self.config.user_by_object_id(target_id)
        else:
            target = self.config.user_by_id(target_id)
        if target is None:
            # The docs do not give this error; the "does not exist" shape of spec §7 is used.
            await _send_json(
                send,
                404,
                _json_body(
                    OBJECT_DOES_NOT_EXIST, f"systemuser With Id = {target_id} Does Not Exist"
                ),
            )
            return None
        return caller.acting_for(self.runtime.current_user(target))

    def _count_fault(self, name: str) -> None:
        with self.runtime.lock:
            self.runtime.stats.faults_injected[name] += 1

    async def _unauthorized(self, scope: Scope, send: Send, reason: str) -> None:
        with self.runtime.lock:
            self.runtime.stats.unauthorized += 1
        base = _base_url(scope)
        challenge = (
            f"Bearer authorization_uri={base}/{self.config.tenant}/oauth2/authorize, "
            f"resource_id={base}/"
        )
        if reason != "missing":
            challenge += ', error="invalid_token"'
        code, message = _MISSING_OR_EXPIRED if reason in ("missing", "expired") else _INVALID
        await _send_json(
            send,
            401,
            _json_body(code, message),
            [(b"www-authenticate", challenge.encode("latin-1"))],
        )

    async def _throttled(self, send: Send, throttle: Throttle) -> None:
        with self.runtime.lock:
            self.runtime.stats.throttled[throttle.measure] += 1
        await _send_json(
            send,
            429,
            _json_body(throttle.code, throttle.message),
            [(b"retry-after", str(throttle.retry_after).encode("ascii"))],
        )


def wrap_with_control(app: ASGIApp, config: EmulatorConfig, runtime: EmulatorRuntime) -> ASGIApp:
    """Wrap the data-plane app with faults, authentication and service protection."""
    return ControlPlane(app, config, runtime)


def _admin_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


Endpoint = Callable[[Request], Awaitable[Response]]


def admin_routes(config: EmulatorConfig, runtime: EmulatorRuntime) -> list[BaseRoute]:
    """The ``/_emulator/`` admin API (fault knobs, token expiry, statistics)."""
    expected_key = config.admin_key.reveal().encode("utf-8")

    def guarded(handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            given = request.headers.get(ADMIN_KEY_HEADER, "").encode("utf-8")
            if not expected_key or not hmac.compare_digest(given, expected_key):
                return _admin_error(
                    401, "AdminKeyRequired", f"Send the emulator admin key in {ADMIN_KEY_HEADER}."
                )
            return await handler(request)

        return endpoint

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "tenant": config.tenant})

    async def get_faults(request: Request) -> Response:
        return JSONResponse(runtime.faults.as_dict())

    async def change_faults(request: Request) -> Response:
        try:
            body = loads_strict(await request.body() or b"{}")
        except ValueError:
            return _admin_error(400, "InvalidJson", "The body must be a JSON object.")
        if not isinstance(body, dict):
            return _admin_error(400, "InvalidJson", "The body must be a JSON object.")
        base = runtime.faults if request.method == "PATCH" else FaultSettings()
        try:
            runtime.set_faults(faults_from_mapping(body, base))
        except EmulatorConfigError as exc:
            return _admin_error(400, "InvalidFaults", exc.message)
        return JSONResponse(runtime.faults.as_dict())

    async def expire_tokens(request: Request) -> Response:
        return JSONResponse({"token_epoch": runtime.expire_tokens()})

    async def expire_delta_tokens(request: Request) -> Response:
        return JSONResponse({"delta_epoch": runtime.expire_delta_tokens()})

    async def reset_limits(request: Request) -> Response:
        runtime.protection.reset()
        return JSONResponse({"service_protection": runtime.protection.snapshot()})

    async def stats(request: Request) -> Response:
        with runtime.lock:
            body = runtime.stats.as_dict(runtime.clock())
        body["token_epoch"] = runtime.token_epoch
        body["delta_epoch"] = runtime.delta_epoch
        body["faults"] = runtime.faults.as_dict()
        body["service_protection"] = runtime.protection.snapshot()
        return JSONResponse(body)

    return [
        Route("/_emulator/health", health),
        Route("/_emulator/stats", guarded(stats)),
        Route("/_emulator/faults", guarded(get_faults), methods=["GET"]),
        Route("/_emulator/faults", guarded(change_faults), methods=["PUT", "PATCH"]),
        Route("/_emulator/expire-tokens", guarded(expire_tokens), methods=["POST"]),
        Route("/_emulator/expire-delta-tokens", guarded(expire_delta_tokens), methods=["POST"]),
        Route("/_emulator/reset-limits", guarded(reset_limits), methods=["POST"]),
        *privilege_routes(config, runtime.privilege_changes, guarded),
    ]


def control_routes(config: EmulatorConfig, runtime: EmulatorRuntime) -> list[BaseRoute]:
    """Every control-plane route: identity provider (token, discovery) and the admin API."""
    return [*admin_routes(config, runtime), *identity_routes(config, runtime)]
