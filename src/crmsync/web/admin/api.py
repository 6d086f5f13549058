"""The admin API, ``/api/admin/v1/...``: what the admin pages do, as JSON, for scripts.

Callers send ``Authorization: Bearer <personal API token>`` (created on the Users page or by
``crmsync admin token``). Viewers' tokens read; changes need an admin's. The OpenAPI document
is at ``/api/admin/v1/openapi.json``. Errors are ``{"error": {"code", "message"}}`` with the
HTTP status saying what kind.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crmsync.errors import (
    AccessError,
    ConfigurationError,
    CrmsyncError,
    InputError,
    RecordNotFoundError,
    RoleRefusedError,
)
from crmsync.store.audit import record_audit
from crmsync.sync.admin_retry import retry_errors
from crmsync.sync.runner import set_enabled
from crmsync.web.admin.context import AdminContext
from crmsync.web.admin.pages_sync import error_rows, overview_values
from crmsync.web.admin.queries import (
    list_audit,
    list_notifications,
    person_activities,
    person_detail,
    search_people,
)
from crmsync.web.admin.users import AdminUser

logger = logging.getLogger(__name__)
API_PREFIX = "/api/admin/v1"
MAX_ID = 2**53 - 1  # the largest integer every JSON parser keeps exact


class ApiError(BaseModel):
    """An error: a short code and a message saying what is wrong."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer."""

    error: ApiError


class BacklogOut(BaseModel):
    """Marketing changes waiting to be sent, for one entity."""

    entity: str
    pending_creates: int
    pending_updates: int
    pending_deletes: int
    oldest_pending: datetime | None


class WritesWaitingOut(BaseModel):
    """Writes of one entity held back until an administrator acts (e.g. a lost privilege)."""

    entity: str
    reason: str
    summary: str
    fix: str
    since: datetime


class StatusOut(BaseModel):
    """The overview's figures (B40)."""

    enabled: bool
    last_cycle_started: datetime | None
    last_cycle_duration_seconds: float | None
    last_cycle_outcome: str | None
    backlog: list[BacklogOut]
    records_synced_last_hour: int
    dynamics_requests_last_5_minutes: int
    dynamics_request_limit_per_5_minutes: int
    open_errors: int
    unread_critical_notifications: int
    writes_waiting: list[WritesWaitingOut]


class SyncSwitch(BaseModel):
    """Switch the background sync on or off."""

    enabled: bool


class SyncErrorOut(BaseModel):
    """A failing record: what failed, how, and whose record it is."""

    id: int
    entity: str
    direction: str
    operation: str
    person_id: int | None
    name: str
    email: str
    crm_id: str | None
    error_code: str | None
    message: str
    attempts: int
    first_seen: datetime
    last_seen: datetime


class RetryIds(BaseModel):
    """Retry these errors."""

    model_config = ConfigDict(extra="forbid")
    error_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=1000)


class RetryAll(BaseModel):
    """Retry every open error."""

    model_config = ConfigDict(extra="forbid")
    all: Literal[True]


class RetryOut(BaseModel):
    """How many failing records were queued for the next cycle."""

    queued: int


class PersonOut(BaseModel):
    """A person in a search result."""

    id: int
    firstName: str | None
    lastName: str | None
    email: str | None
    company: str | None
    crmType: str | None
    crmIsDeleted: bool | None
    createdAt: str | None


class ActivityOut(BaseModel):
    """One entry of a person's activity log."""

    id: int
    type_id: int
    type_name: str
    activity_date: str
    primary_value: str | None
    attributes: dict[str, Any]


class PersonDetailOut(BaseModel):
    """A person with every field, its company's fields and its activity log."""

    fields: dict[str, Any]
    company: dict[str, Any]
    open_errors: int
    activities: list[ActivityOut]


class NotificationOut(BaseModel):
    """A notification for the admins."""

    id: int
    created_at: datetime
    severity: str
    kind: str
    title: str
    message: str
    read_at: datetime | None


class AuditOut(BaseModel):
    """One entry of the audit trail: who did what, when."""

    id: int
    occurred_at: datetime
    actor: str
    action: str
    details: dict[str, Any] | None


class UserOut(BaseModel):
    """An admin-UI user (never its password hash)."""

    id: int
    email: str
    role: str
    disabled: bool


def caller(request: Request) -> AdminUser:
    """The user of the request's bearer token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AccessError("Send 'Authorization: Bearer <API token>'.")
    user = AdminContext.of(request).users.user_of_token(token.strip())
    if user is None:
        raise AccessError("The API token is unknown, revoked, or its user is disabled.")
    return user


def changer(user: Annotated[AdminUser, Depends(caller)]) -> AdminUser:
    """The caller, if its role may change things."""
    if not user.can_change:
        raise RoleRefusedError("A viewer's token can read but not change anything.")
    return user


Caller = Annotated[AdminUser, Depends(caller)]
Changer = Annotated[AdminUser, Depends(changer)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422)
}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _crmsync_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RoleRefusedError):
        return _error(403, "forbidden", str(exc))
    if isinstance(exc, AccessError):
        return _error(401, "unauthorized", str(exc))
    if isinstance(exc, RecordNotFoundError):
        return _error(404, "not_found", str(exc))
    if isinstance(exc, InputError):
        return _error(400, "invalid", str(exc))
    if isinstance(exc, ConfigurationError):  # says what to set; never holds a secret
        return _error(503, "not_configured", str(exc))
    logger.error("admin API: %s serving %s", type(exc).__name__, request.url.path)
    return _error(500, "internal", "Something went wrong; the server log has the details.")


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    return _error(status, "not_found" if status == 404 else "http_error", "No such resource.")


async def _validation_error(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in errors[:5])
    return _error(422, "invalid", f"Invalid request: {where or 'bad input'}.")


def build_admin_api(context: AdminContext) -> FastAPI:
    """The admin API application, mounted at :data:`API_PREFIX`."""
    api = FastAPI(
        title="crmsync admin API",
        version="1",
        description="Sync status, errors, people, fields, the Dynamics connection, "
        "notifications and audit trail of crmsync.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        responses=_ERRORS,
    )
    api.state.admin = context
    api.add_exception_handler(CrmsyncError, _crmsync_error)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(Exception, _crmsync_error)
    _routes(api, context)
    return api


def _routes(api: FastAPI, ctx: AdminContext) -> None:
    @api.get("/status", response_model=StatusOut)
    def get_status(user: Caller) -> dict[str, Any]:
        """Sync on/off, last cycle and its outcome, backlog, throughput, API use (B40)."""
        values = overview_values(ctx)
        status, cycle = values["status"], values["cycle"]
        return {
            "enabled": status.enabled,
            "last_cycle_started": cycle.started_at if cycle else None,
            "last_cycle_duration_seconds": cycle.duration_seconds if cycle else None,
            "last_cycle_outcome": cycle.outcome if cycle else None,
            "backlog": [
                {
                    "entity": b.entity,
                    "pending_creates": b.pending_creates,
                    "pending_updates": b.pending_updates,
                    "pending_deletes": b.pending_deletes,
                    "oldest_pending": b.oldest_pending,
                }
                for b in status.backlog
            ],
            "records_synced_last_hour": status.records_synced_last_hour,
            "dynamics_requests_last_5_minutes": values["requests_5min"],
            "dynamics_request_limit_per_5_minutes": values["request_limit"],
            "open_errors": status.open_errors,
            "unread_critical_notifications": values["unread_critical"],
            "writes_waiting": [
                {
                    "entity": w.entity,
                    "reason": w.reason,
                    "summary": w.summary,
                    "fix": w.fix,
                    "since": w.since,
                }
                for w in status.writes_waiting
            ],
        }

    @api.put("/sync", response_model=SyncSwitch)
    def switch_sync(body: SyncSwitch, user: Changer) -> dict[str, bool]:
        """Enable or disable the background sync (B44, audited)."""
        set_enabled(ctx.engine, body.enabled, actor=user.email)
        return {"enabled": body.enabled}

    @api.get("/errors", response_model=list[SyncErrorOut])
    def list_errors(
        user: Caller,
        entity: Annotated[str | None, Query(max_length=128)] = None,
        q: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
        offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    ) -> list[dict[str, Any]]:
        """Open sync errors, newest first, with the person's name and e-mail (B39); page
        them with ``limit`` and ``offset``."""
        return error_rows(ctx, entity, q, limit=limit, offset=offset)

    @api.post("/errors/retry", response_model=RetryOut)
    def retry(body: RetryIds | RetryAll, user: Changer) -> dict[str, int]:
        """Queue the given errors (or all) for the next cycle (B38, audited)."""
        ids = body.error_ids if isinstance(body, RetryIds) else None
        with ctx.engine.begin() as conn:
            queued = retry_errors(conn, ids)
            record_audit(
                conn,
                user.email,
                "sync_errors_retried",
                {"errors": "all" if ids is None else ids, "queued": queued, "via": "api"},
            )
        return {"queued": queued}

    @api.get("/people", response_model=list[PersonOut])
    def people(
        user: Caller,
        q: Annotated[str, Query(max_length=200)] = "",
        before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> list[dict[str, Any]]:
        """A page of persons matching ``q`` (name, e-mail, company, id, Dynamics id)."""
        with ctx.engine.connect() as conn:
            return search_people(conn, q, before=before)

    @api.get("/people/{person_id}", response_model=PersonDetailOut)
    def person(
        person_id: Annotated[int, Path(ge=1, le=MAX_ID)],
        user: Caller,
        before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> dict[str, Any]:
        """Every field of a person, its company's fields and a page of its activity log."""
        with ctx.engine.connect() as conn:
            detail = person_detail(conn, person_id)
            if detail is None:
                raise RecordNotFoundError(f"There is no person {person_id}.")
            log = person_activities(conn, person_id, before=before)
        return {
            "fields": {name: value for name, _, value in detail.fields},
            "company": {name: value for name, _, value in detail.company_fields},
            "open_errors": len(detail.open_errors),
            "activities": log,
        }

    @api.get("/notifications", response_model=list[NotificationOut])
    def notifications(
        user: Caller, before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
    ) -> list[dict[str, Any]]:
        """A page of notifications, newest first (B41)."""
        with ctx.engine.connect() as conn:
            return list_notifications(conn, before=before)

    @api.get("/audit", response_model=list[AuditOut])
    def audit_trail(
        user: Caller, before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
    ) -> list[dict[str, Any]]:
        """A page of the audit trail, newest first."""
        with ctx.engine.connect() as conn:
            return list_audit(conn, before=before)

    @api.get("/users", response_model=list[UserOut])
    def users(user: Changer) -> list[dict[str, Any]]:
        """Admin users and their roles (admins only)."""
        return [
            {"id": u.id, "email": u.email, "role": u.role, "disabled": u.disabled_at is not None}
            for u in ctx.users.all()
        ]
