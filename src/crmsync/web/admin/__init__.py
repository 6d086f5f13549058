"""The admin web UI (``/admin/...``), the admin API (``/api/admin/v1/...``) and the health and
metrics endpoints, mounted on the crmsync application by :func:`mount_admin`.

Pages are server-rendered (Jinja2 templates in ``crmsync/web/templates/admin``, one stylesheet
in ``crmsync/web/static``, no script). Errors on admin pages are answered with an HTML page
saying what went wrong, never a stack trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from crmsync.errors import AccessError, ConfigurationError, InputError, RecordNotFoundError
from crmsync.settings import Settings
from crmsync.store.secret_box import SecretBox
from crmsync.web.admin import (
    health,
    pages_auth,
    pages_campaigns,
    pages_custom_entities,
    pages_fields,
    pages_manage,
    pages_people,
    pages_records,
    pages_setup,
    pages_sync,
)
from crmsync.web.admin.api import API_PREFIX, build_admin_api
from crmsync.web.admin.api_campaigns import add_campaign_routes
from crmsync.web.admin.api_custom_entities import add_custom_entity_routes
from crmsync.web.admin.api_setup import add_setup_routes
from crmsync.web.admin.context import (
    ADMIN,
    AdminContext,
    SignInRequired,
    make_templates,
    sign_in_redirect,
)
from crmsync.web.admin.health import RequestTimer, Telemetry
from crmsync.web.admin.probe import PROBE_TIMEOUT_SECONDS, DynamicsProbe, who_am_i
from crmsync.web.admin.security import SecurityHeaders, SignInLimiter
from crmsync.web.admin.sessions import CsrfTokens, SessionStore
from crmsync.web.admin.users import AdminUserStore

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ADMIN_PREFIXES = (ADMIN, "/api/admin")


def is_admin_path(path: str) -> bool:
    """Whether ``path`` belongs to the admin UI (answered in HTML)."""
    return path == ADMIN or path.startswith(f"{ADMIN}/")


async def admin_error_page(request: Request, exc: Exception) -> Response:
    """The admin UI's answer to an error: sign in, or a page saying what is wrong."""
    if isinstance(exc, SignInRequired):
        return sign_in_redirect(request)
    ctx = AdminContext.of(request)
    if isinstance(exc, AccessError):  # CSRF refused, role refused
        status, title, message = 403, "Not allowed", str(exc)
    elif isinstance(exc, RecordNotFoundError):
        status, title, message = 404, "Not found", str(exc)
    elif isinstance(exc, InputError):
        status, title, message = 400, "There is a problem", str(exc)
    elif isinstance(exc, ConfigurationError):  # says what to set; never holds a secret
        status, title, message = 503, "crmsync is not set up for this", str(exc)
    elif isinstance(exc, RequestValidationError):
        status, title, message = 400, "There is a problem", "The request was not understood."
    elif isinstance(exc, StarletteHTTPException) and exc.status_code in (404, 405):
        status = exc.status_code
        title = "Page not found" if status == 404 else "Not allowed"
        message = "There is no such page." if status == 404 else "That method is not allowed here."
    else:
        logger.error("admin UI: %s serving %s", type(exc).__name__, request.url.path)
        status, title, message = 500, "Something went wrong", "The server log has the details."
    return ctx.render(
        request,
        "admin/message.html",
        ctx.session(request),
        status_code=status,
        title=title,
        message=message,
    )


def mount_admin(
    app: FastAPI, engine: Engine, settings: Settings, *, clock: Callable[[], float] = time.time
) -> None:
    """Add the admin UI, the admin API, health, readiness and metrics to ``app``; ``clock``
    (seconds since the epoch) times sessions, lockouts and the sign-in rate limit."""

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    users = AdminUserStore(engine, now=now)
    context = AdminContext(
        engine=engine,
        users=users,
        sessions=SessionStore(engine, users, idle_seconds=settings.web.admin_idle_seconds, now=now),
        csrf=CsrfTokens(settings.web.session_secret.reveal()),
        limiter=SignInLimiter(clock=clock),
        templates=make_templates(),
        secrets=SecretBox.of(settings.database),
        dynamics=settings.dynamics,
    )
    app.state.admin = context
    app.state.dynamics_probe = DynamicsProbe(
        lambda: who_am_i(app.state.admin, PROBE_TIMEOUT_SECONDS), clock
    )
    telemetry = Telemetry(engine)
    app.state.telemetry = telemetry
    for router in (
        pages_auth.router,
        pages_sync.router,
        pages_people.router,
        pages_campaigns.router,
        pages_fields.router,
        pages_custom_entities.router,
        pages_setup.router,
        pages_manage.router,
        pages_records.router,
    ):
        app.include_router(router, prefix=ADMIN)
    app.include_router(health.router)
    api = build_admin_api(context)
    add_campaign_routes(api, context)
    add_custom_entity_routes(api, context)
    add_setup_routes(api)
    app.mount(API_PREFIX, api)
    app.mount(f"{ADMIN}/static", StaticFiles(directory=STATIC_DIR), name="admin-static")

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> Response:
        signed_in = context.session(request) is not None
        return RedirectResponse(f"{ADMIN}/" if signed_in else f"{ADMIN}/sign-in", status_code=303)

    @app.get(ADMIN, include_in_schema=False)
    async def admin_root() -> Response:
        return RedirectResponse(f"{ADMIN}/", status_code=303)

    app.add_middleware(SecurityHeaders, prefixes=ADMIN_PREFIXES)
    app.add_middleware(RequestTimer, telemetry=telemetry)
