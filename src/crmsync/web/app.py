"""The crmsync web application: ``create_app(settings)`` builds it, nothing is global.

The Marketo-compatible API answers JSON everywhere, including unknown paths, wrong methods and
unexpected failures (spec marketo-rest.md §9.4: Marketo clients parse every body as JSON); the
admin UI under ``/admin`` answers HTML pages, and ``/`` leads to it. No reply ever carries a
stack trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from crmsync.errors import CrmsyncError
from crmsync.settings import Settings
from crmsync.store.db import open_database
from crmsync.web.admin import admin_error_page, is_admin_path, mount_admin
from crmsync.web.api_marketo import mount_marketo_api
from crmsync.web.background import BackgroundWork
from crmsync.web.clients import ApiClientStore, Clock
from crmsync.web.envelope import failure, json_response
from crmsync.web.limits import ApiLimits
from crmsync.web.services import MarketoServices

logger = logging.getLogger(__name__)

_API_PREFIXES = ("/rest", "/identity")


def _status_for(request: Request, status: int) -> int:
    # Marketo answers API errors with HTTP 200; other paths keep their HTTP status.
    return 200 if request.url.path.startswith(_API_PREFIXES) else status


async def _http_error(request: Request, exc: Exception) -> Response:
    if is_admin_path(request.url.path):
        return await admin_error_page(request, exc)
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    if status == 405:
        document = failure("605", "HTTP Method not supported")
    elif status == 404:
        document = failure("610", "Requested resource not found")
    else:
        document = failure("611", "System error")
    return json_response(document, status_code=_status_for(request, status))


async def _validation_error(request: Request, exc: Exception) -> Response:
    if is_admin_path(request.url.path):
        return await admin_error_page(request, exc)
    return json_response(failure("1003", "Invalid data"), status_code=_status_for(request, 422))


async def _crmsync_error(request: Request, exc: Exception) -> Response:
    # Raised on purpose: the admin UI says what is wrong; elsewhere it is a system error.
    if is_admin_path(request.url.path):
        return await admin_error_page(request, exc)
    return await _unhandled_error(request, exc)


async def _unhandled_error(request: Request, exc: Exception) -> Response:
    if is_admin_path(request.url.path):
        return await admin_error_page(request, exc)
    logger.error("unhandled %s serving %s %s", type(exc).__name__, request.method, request.url.path)
    return json_response(failure("611", "System error"), status_code=_status_for(request, 500))


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    background: bool = False,
) -> FastAPI:
    """Build the web application for ``settings``.

    ``engine`` reuses an already opened database (tests, the demo); otherwise the database at
    ``settings.database.url`` is opened, and an unmigrated one is refused with
    :class:`crmsync.errors.DatabaseNotMigratedError`. ``clock`` (seconds since the epoch) is
    the time source for token expiry and rate windows; tests pass a controllable one.
    """
    database = engine if engine is not None else open_database(settings.database.url)
    now: Clock = clock if clock is not None else time.time

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        work = BackgroundWork(database, settings) if background else None
        try:
            if work is not None:
                work.start()
            yield
        finally:
            if work is not None:
                work.stop()
            if engine is None:  # opened here, so closed here
                database.dispose()

    app = FastAPI(
        title="crmsync",
        description="Marketing database with a native two-way Microsoft Dynamics 365 sync.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    handlers: dict[Any, Any] = {
        StarletteHTTPException: _http_error,
        RequestValidationError: _validation_error,
        CrmsyncError: _crmsync_error,
        Exception: _unhandled_error,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)

    web = settings.web
    limits = ApiLimits(
        max_body_bytes=web.max_body_bytes,
        calls_per_window=web.calls_per_window,
        window_seconds=web.window_seconds,
        max_concurrent_calls=web.max_concurrent_calls,
        daily_calls=web.daily_calls,
        clock=now,
    )
    clients = ApiClientStore(database, token_lifetime_seconds=web.token_lifetime_seconds, clock=now)
    mount_marketo_api(app, services=MarketoServices.build(database), clients=clients, limits=limits)
    mount_admin(app, database, settings, clock=now)
    app.state.settings = settings
    app.state.engine = database
    return app
