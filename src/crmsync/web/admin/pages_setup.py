"""Setup: the Dynamics connection as configured (URL, tenant, auth mode, client id; secrets
only as "set" or "not set", never shown), and **Validate**, which runs the B43 checklist
(:func:`crmsync.sync.validate.validate_setup`, what ``crmsync dynamics check`` runs) and
gives a concrete fix for every failing line."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from crmsync.dynamics.check import CONNECT, CONNECT_FIX, CheckItem
from crmsync.errors import CrmsyncError
from crmsync.settings import DynamicsSettings
from crmsync.sync.validate import validate_setup
from crmsync.web.admin.context import AdminContext

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


def run_checklist(ctx: AdminContext) -> list[CheckLine]:
    """The B43 checklist against the configured org; settings too incomplete to build a
    client fail its first line."""
    try:
        with ctx.open_dynamics() as client:
            items = validate_setup(client, ctx.engine).items
    except CrmsyncError as exc:
        items = (CheckItem(CONNECT, False, str(exc), CONNECT_FIX),)
    return [CheckLine(i.name, i.ok, i.detail, fix_for(i)) for i in items]


@router.get("/setup")
async def setup_page(request: Request) -> Response:
    """The Dynamics connection and the Validate button."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    return ctx.render(
        request,
        "admin/setup.html",
        session,
        connection=connection_rows(ctx.dynamics),
        lines=None,
    )


@router.post("/setup/validate")
async def validate(request: Request) -> Response:
    """Run the checklist now (it changes nothing, so viewers may run it too)."""
    ctx = AdminContext.of(request)
    session, _ = await ctx.change_form(request, admin_only=False)
    lines = run_checklist(ctx)
    return ctx.render(
        request,
        "admin/setup.html",
        session,
        connection=connection_rows(ctx.dynamics),
        lines=lines,
        passed=sum(1 for line in lines if line.ok),
    )
