"""What every admin page handler needs: the services, the signed-in user, forms checked for
their CSRF token, and rendering with the shared frame (navigation, unread count).

Navigation is one list, :data:`NAV`: a new area adds one entry here and one router. The
everyday pages sit on the top line; the records read one way from Dynamics and the settings
pages are grouped in two menus ("Records", "Admin") so that the line fits at 1280 px.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.errors import AccessError, ConfigurationError, RoleRefusedError
from crmsync.settings import DynamicsSettings
from crmsync.store.secret_box import SecretBox
from crmsync.sync.connection import connection_in_effect, connection_shown
from crmsync.web.admin.queries import unread_notifications
from crmsync.web.admin.security import SignInLimiter
from crmsync.web.admin.sessions import SESSION_COOKIE, CsrfTokens, Session, SessionStore
from crmsync.web.admin.users import AdminUserStore

ADMIN = "/admin"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True, slots=True)
class NavEntry:
    """One item of the admin navigation."""

    label: str
    path: str
    admin_only: bool = False

    def is_current(self, path: str) -> bool:
        """Whether the page at ``path`` belongs to this entry (its own page or one below)."""
        if path == self.path:
            return True
        return self.path != f"{ADMIN}/" and path.startswith(self.path)


@dataclass(frozen=True, slots=True)
class NavGroup:
    """Navigation entries behind one disclosure button (a ``<details>`` menu)."""

    label: str
    entries: tuple[NavEntry, ...]

    def is_current(self, path: str) -> bool:
        """Whether the page at ``path`` is one of this group's."""
        return any(entry.is_current(path) for entry in self.entries)


NAV: tuple[NavEntry | NavGroup, ...] = (
    NavEntry("Overview", f"{ADMIN}/"),
    NavEntry("Sync errors", f"{ADMIN}/errors"),
    NavEntry("People", f"{ADMIN}/people"),
    NavGroup(
        "Records",
        (
            NavEntry("Companies", f"{ADMIN}/companies"),
            NavEntry("Opportunities", f"{ADMIN}/opportunities"),
            NavEntry("Sales users", f"{ADMIN}/sales-users"),
        ),
    ),
    NavEntry("Campaigns", f"{ADMIN}/campaigns"),
    NavEntry("Notifications", f"{ADMIN}/notifications"),
    NavGroup(
        "Admin",
        (
            NavEntry("Fields", f"{ADMIN}/fields"),
            NavEntry("Custom entities", f"{ADMIN}/custom-entities"),
            NavEntry("Setup", f"{ADMIN}/setup"),
            NavEntry("Audit trail", f"{ADMIN}/audit"),
            NavEntry("Users", f"{ADMIN}/users", admin_only=True),
        ),
    ),
)


def navigation(can_change: bool) -> list[NavEntry | NavGroup]:
    """The navigation a user of this role sees (viewers do not see admin-only pages)."""
    shown: list[NavEntry | NavGroup] = []
    for item in NAV:
        if isinstance(item, NavGroup):
            entries = tuple(e for e in item.entries if can_change or not e.admin_only)
            if entries:
                shown.append(NavGroup(item.label, entries))
        elif can_change or not item.admin_only:
            shown.append(item)
    return shown


class SignInRequired(AccessError):
    """No live session: the page answers with a redirect to sign in."""


class CsrfRefused(AccessError):
    """A form came without the CSRF token of its session."""


def _when(value: object) -> str:
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _stamp(value: object) -> str:
    """A time stored as ISO text with its offset (``2026-05-03T12:04:05Z``,
    ``2026-05-03T14:04:05.250+02:00``) as people read it, in UTC as :func:`_when` writes it;
    other text (a date alone, a time without offset, anything else) as it is."""
    text = "" if value is None else str(value)
    if len(text) < 20 or text[10:11] != "T":
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        return text
    return _when(moment.astimezone(UTC))


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


@dataclass(frozen=True, slots=True)
class AdminContext:
    """The admin UI's services, built once by :func:`crmsync.web.admin.mount_admin`."""

    engine: Engine
    users: AdminUserStore
    sessions: SessionStore
    csrf: CsrfTokens
    limiter: SignInLimiter
    templates: Jinja2Templates
    # encrypts the client secret saved on the Setup page (crmsync.store.secret_box)
    secrets: SecretBox
    # the [dynamics] settings of the file and environment; a connection saved on the Setup
    # page is laid over them (crmsync.sync.connection)
    dynamics: DynamicsSettings = field(default_factory=DynamicsSettings)
    # a fixed client factory, used instead of the connection in effect; tests swap it in
    dynamics_client: Callable[[], DynamicsClient] | None = None
    # builds a client of a given connection (the Setup page validates new values with it)
    client_for: Callable[[DynamicsSettings], DynamicsClient] = build_client

    def connection(self) -> DynamicsSettings:
        """The Dynamics connection in effect: the file's, with a saved one over it."""
        return connection_in_effect(self.engine, self.dynamics, self.secrets)

    def connection_shown(self) -> tuple[DynamicsSettings, str | None]:
        """The connection for the Setup page, and why its saved secret cannot be used (it is
        then left blank), or ``None``."""
        return connection_shown(self.engine, self.dynamics, self.secrets)

    def org_url(self) -> str:
        """The org's address, for "Open in Dynamics" links ("" when none is configured)."""
        return self.connection_shown()[0].url.strip().rstrip("/")

    def open_dynamics(self, settings: DynamicsSettings | None = None) -> DynamicsClient:
        """A client of ``settings`` or of the connection in effect (close it after use), or
        :class:`ConfigurationError` saying none is configured."""
        if settings is None and self.dynamics_client is not None:
            return self.dynamics_client()
        wanted = settings if settings is not None else self.connection()
        if not wanted.url.strip():
            raise ConfigurationError(
                "No Dynamics org is configured: enter its URL, tenant and client id on the "
                "Setup page, or set [dynamics] url in the configuration file."
            )
        return self.client_for(wanted)

    @staticmethod
    def of(request: Request) -> AdminContext:
        """The context stored on the application."""
        context: AdminContext = request.app.state.admin
        return context

    def session(self, request: Request) -> Session | None:
        """The live session of this request's cookie, if any."""
        return self.sessions.find(request.cookies.get(SESSION_COOKIE))

    def signed_in(self, request: Request) -> Session:
        """The live session, or :class:`SignInRequired`."""
        session = self.session(request)
        if session is None:
            raise SignInRequired("Sign in to continue.")
        return session

    async def change_form(
        self, request: Request, *, admin_only: bool = True
    ) -> tuple[Session, FormData]:
        """A posted form of a signed-in user with its CSRF token checked; viewers are
        refused when the form changes something (``admin_only``)."""
        session = self.signed_in(request)
        form = await request.form()
        if not self.csrf.valid(form.get("csrf_token"), session.csrf_key):
            raise CsrfRefused("This form has expired or did not come from this site.")
        if admin_only and not session.user.can_change:
            raise RoleRefusedError("Your role (viewer) can look but not change anything.")
        return session, form

    def redirect(self, path: str, *, notice: str) -> RedirectResponse:
        """303 See Other to ``path`` with ``notice`` (signed) for its banner."""
        signed = quote(self.csrf.sign_notice(notice))
        return redirect(f"{path}{'&' if '?' in path else '?'}notice={signed}")

    def render(
        self,
        request: Request,
        template: str,
        session: Session | None,
        *,
        status_code: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        """Render ``template`` inside the frame."""
        unread = 0
        if session is not None:
            with self.engine.connect() as conn:
                unread = unread_notifications(conn)
        nav = navigation(session.user.can_change) if session is not None else []
        context = {
            "notice": self.csrf.read_notice(request.query_params.get("notice")),
            "request": request,
            "session": session,
            "user": session.user if session else None,
            "csrf_token": self.csrf.token_for(session.csrf_key) if session else "",
            "nav": nav,
            "current_path": request.url.path,
            "unread": unread,
            "when": _when,
            "number": _number,
            "stamp": _stamp,
            **values,
        }
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)


def redirect(path: str) -> RedirectResponse:
    """303 See Other to ``path`` (after a form)."""
    return RedirectResponse(path, status_code=303)


def sign_in_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here afterwards."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{ADMIN}/sign-in?next={quote(back)}", status_code=303)


def make_templates() -> Jinja2Templates:
    """The admin templates (auto-escaped HTML)."""
    return Jinja2Templates(directory=str(TEMPLATES_DIR))
