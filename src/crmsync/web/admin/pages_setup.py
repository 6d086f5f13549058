"""Setup: the Dynamics connection in effect (URL, tenant, auth mode, client id; secrets only
as "set" or "not set", never shown), **Validate**, which runs the B43 checklist
(:func:`crmsync.sync.validate.validate_setup`, what ``crmsync dynamics check`` runs) and
gives a concrete fix for every failing line, and changing the connection: the new values are
validated first and saved only when they connect (:mod:`crmsync.sync.connection`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from crmsync.dynamics.check import CONNECT, CONNECT_FIX, CheckItem
from crmsync.dynamics.factory import AUTH_MODES
from crmsync.errors import CrmsyncError, InputError
from crmsync.settings import DynamicsSettings
from crmsync.sync.connection import (
    EDITABLE,
    ConnectionChange,
    candidate,
    is_saved,
    save_connection,
)
from crmsync.sync.validate import validate_setup
from crmsync.web.admin.context import AdminContext
from crmsync.web.admin.sessions import Session

router = APIRouter()


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One checklist line as the page shows it: the check, its outcome and, when it failed,
    what to do."""

    name: str
    ok: bool
    finding: str
    fix: str


def fix_for(item: CheckItem) -> str:
    """What an administrator does to make a failing check pass (each check names its fix)."""
    if item.ok:
        return ""
    return item.fix or "See the finding; then validate again."


def connection_rows(settings: DynamicsSettings) -> list[tuple[str, str]]:
    """The connection as configured, secrets reduced to whether they are set."""
    rows = [
        ("Organization URL", settings.url or "Not set"),
        ("Tenant", settings.tenant or "Not set"),
        ("Sign-in authority", settings.authority),
        ("Authentication", settings.auth_mode.replace("_", " ")),
        ("Client id", settings.client_id or "Not set"),
        ("Client secret", "Set (never shown)" if settings.client_secret.reveal() else "Not set"),
    ]
    if settings.auth_mode == "password":
        rows.append(("User name", settings.username or "Not set"))
        rows.append(("Password", "Set (never shown)" if settings.password.reveal() else "Not set"))
    return rows


def run_checklist(ctx: AdminContext, settings: DynamicsSettings | None = None) -> list[CheckLine]:
    """The B43 checklist against ``settings`` or the connection in effect; settings too
    incomplete to build a client fail its first line."""
    try:
        with ctx.open_dynamics(settings) as client:
            items = validate_setup(client, ctx.engine).items
    except CrmsyncError as exc:
        items = (CheckItem(CONNECT, False, str(exc), CONNECT_FIX),)
    return [CheckLine(i.name, i.ok, i.detail, fix_for(i)) for i in items]


@dataclass(frozen=True, slots=True)
class ConnectionOutcome:
    """What became of a connection change: saved or not, why, and the checklist it passed
    through."""

    saved: bool
    message: str
    lines: list[CheckLine]
    changed: list[str]


def change_connection(ctx: AdminContext, change: ConnectionChange, actor: str) -> ConnectionOutcome:
    """Validate ``change`` against the org it names, and save it when it connects; the
    running sync uses it from its next cycle."""
    current, _ = ctx.connection_shown()  # an unreadable saved secret: a new one is needed
    lines = run_checklist(ctx, candidate(current, change))
    if not lines or not lines[0].ok:
        return ConnectionOutcome(
            False,
            "Not saved: the new connection could not connect; see the first check.",
            lines,
            [],
        )
    with ctx.engine.begin() as conn:
        changed = save_connection(conn, current, change, actor=actor, box=ctx.secrets)
    failed = sum(1 for line in lines if not line.ok)
    message = "Connection saved; the sync uses it from its next cycle."
    if failed:
        message += (
            f" {failed} check{'s' if failed != 1 else ''} still failed; each says what to do."
        )
    return ConnectionOutcome(True, message, lines, changed)


def _page(
    request: Request, ctx: AdminContext, session: Session, *, status_code: int = 200, **values: Any
) -> Response:
    current, secret_problem = ctx.connection_shown()
    defaults: dict[str, Any] = {
        "lines": None,
        "passed": 0,
        "form_error": None,
        "outcome": None,
        "form": {name: getattr(current, name) for name in EDITABLE},
    }
    defaults.update(values)
    lines = defaults["lines"]
    if lines:
        defaults["passed"] = sum(1 for line in lines if line.ok)
    return ctx.render(
        request,
        "admin/setup.html",
        session,
        status_code=status_code,
        connection=connection_rows(current),
        saved_here=is_saved(ctx.engine),
        secret_problem=secret_problem,
        auth_modes=AUTH_MODES,
        **defaults,
    )


@router.get("/setup")
async def setup_page(request: Request) -> Response:
    """The Dynamics connection, the Validate button and the connection form."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    return _page(request, ctx, session)


@router.post("/setup/validate")
async def validate(request: Request) -> Response:
    """Run the checklist now (it changes nothing, so viewers may run it too)."""
    ctx = AdminContext.of(request)
    session, _ = await ctx.change_form(request, admin_only=False)
    return _page(request, ctx, session, lines=run_checklist(ctx))


@router.post("/setup/connection")
async def save_connection_form(request: Request) -> Response:
    """Change the connection (admins only): validated against the new values first."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    entered = {name: str(form.get(name) or "") for name in (*EDITABLE, "client_secret")}
    shown = {name: entered[name] for name in EDITABLE}
    try:
        change = ConnectionChange.checked(**entered)
    except InputError as exc:
        return _page(request, ctx, session, status_code=400, form_error=str(exc), form=shown)
    outcome = change_connection(ctx, change, session.user.email)
    return _page(
        request,
        ctx,
        session,
        status_code=200 if outcome.saved else 400,
        lines=outcome.lines,
        outcome=outcome,
        form=shown,
    )
