"""The Marketo-compatible REST API: identity endpoint and every ``/rest/v1`` resource.

The wire contract is spec marketo-rest.md. Resources live in ``api_marketo_*.py`` modules, one
per resource family, each exposing ``ROUTES``; this module reads requests off the wire,
enforces the transport limits and turns every outcome — including unexpected failures — into
a JSON reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from crmsync.errors import AuthenticationError
from crmsync.web import (
    api_marketo_activities,
    api_marketo_campaigns,
    api_marketo_custom_objects,
    api_marketo_leads,
    api_marketo_lists,
    api_marketo_objects,
)
from crmsync.web.clients import ApiClientStore
from crmsync.web.dispatch import Dispatcher, RawRequest, RouteTable
from crmsync.web.envelope import ApiError, error_response, failure, json_response
from crmsync.web.limits import MAX_URI_BYTES, ApiLimits, body_too_large, uri_too_long
from crmsync.web.params import FORM_MEDIA_TYPE, media_type
from crmsync.web.services import MarketoServices

logger = logging.getLogger(__name__)

_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def build_routes() -> RouteTable:
    """Return the table of every Marketo resource this server implements."""
    table = RouteTable()
    table.extend(api_marketo_leads.ROUTES)
    table.extend(api_marketo_activities.ROUTES)
    table.extend(api_marketo_lists.ROUTES)
    table.extend(api_marketo_objects.ROUTES)
    table.extend(api_marketo_custom_objects.ROUTES)
    table.extend(api_marketo_campaigns.ROUTES)
    return table


@dataclass(frozen=True, slots=True)
class MarketoApi:
    """The parts of a mounted Marketo API that callers and tests may reach (``app.state``)."""

    dispatcher: Dispatcher
    clients: ApiClientStore
    limits: ApiLimits
    services: MarketoServices


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise body_too_large()
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise body_too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _check_uri(request: Request) -> None:
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    if len(raw_path) + len(request.scope.get("query_string", b"")) > MAX_URI_BYTES:
        raise uri_too_long()


def _system_error() -> Response:
    return json_response(failure("611", "System error"))


def _rest_endpoint(api: MarketoApi) -> Callable[[Request], Any]:
    async def marketo_rest(request: Request) -> Response:
        try:
            _check_uri(request)
            body = await _read_body(request, api.limits.max_body_bytes)
            raw = RawRequest(
                method=request.method,
                path=request.url.path,
                query_string=request.scope.get("query_string", b"").decode("latin-1"),
                content_type=request.headers.get("content-type", ""),
                authorization=request.headers.get("authorization", ""),
                body=body,
            )
            with api.limits.concurrency.slot():
                document = await run_in_threadpool(api.dispatcher.serve, raw)
            return json_response(
                document, accept_encoding=request.headers.get("accept-encoding", "")
            )
        except ApiError as error:
            return error_response(error)
        except Exception:
            logger.exception("unhandled error serving %s %s", request.method, request.url.path)
            return _system_error()

    return marketo_rest


def _identity_endpoint(api: MarketoApi) -> Callable[[Request], Any]:
    async def identity_token(request: Request) -> Response:
        """``/identity/oauth/token``: client credentials in, OAuth token out (spec §2.1)."""
        try:
            body = await _read_body(request, api.limits.max_body_bytes)
        except ApiError as error:
            return error_response(error)
        pairs = parse_qsl(request.scope.get("query_string", b"").decode("latin-1"))
        if media_type(request.headers.get("content-type")) == FORM_MEDIA_TYPE and body:
            pairs += parse_qsl(body.decode("utf-8", errors="replace"))
        values: dict[str, str] = {}
        for key, value in pairs:
            values.setdefault(key, value)
        grant_type = values.get("grant_type", "")
        if grant_type != "client_credentials":
            return json_response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
                status_code=400,
            )
        client_id = values.get("client_id", "")
        client_secret = values.get("client_secret", "")
        if not client_id or not client_secret:
            return json_response(
                {"error": "invalid_client", "error_description": "Bad client credentials"},
                status_code=401,
            )
        try:
            issued = await run_in_threadpool(api.clients.issue_token, client_id, client_secret)
        except AuthenticationError as exc:
            return json_response(
                {"error": "invalid_client", "error_description": exc.message}, status_code=401
            )
        except Exception:
            logger.exception("unhandled error issuing an access token")
            return json_response(
                {"error": "server_error", "error_description": "System error"}, status_code=500
            )
        return json_response(
            {
                "access_token": issued.access_token.reveal(),
                "token_type": "bearer",
                "expires_in": issued.expires_in,
                "scope": issued.scope,
            }
        )

    return identity_token


def mount_marketo_api(
    app: FastAPI,
    *,
    services: MarketoServices,
    clients: ApiClientStore,
    limits: ApiLimits,
) -> MarketoApi:
    """Add the identity endpoint and the ``/rest`` resources to ``app``."""
    dispatcher = Dispatcher(
        routes=build_routes(), clients=clients, limits=limits, services=services
    )
    api = MarketoApi(dispatcher=dispatcher, clients=clients, limits=limits, services=services)
    app.router.add_route(
        "/identity/oauth/token",
        _identity_endpoint(api),
        methods=["GET", "POST"],
        include_in_schema=False,
    )
    app.router.add_route(
        "/rest/{path:path}", _rest_endpoint(api), methods=_ALL_METHODS, include_in_schema=False
    )
    app.state.marketo = api
    return api
