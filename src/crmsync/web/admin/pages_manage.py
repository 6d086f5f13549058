"""Notifications (B41), the audit trail, and the users page (admins only): add a user, change
a role, disable or enable, and personal API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from crmsync.errors import InvalidValueError, RoleRefusedError
from crmsync.store.audit import record_audit
from crmsync.web.admin.context import ADMIN, AdminContext
from crmsync.web.admin.pages_people import optional_id
from crmsync.web.admin.queries import (
    PAGE_SIZE,
    list_audit,
    list_notifications,
    mark_notifications_read,
)
from crmsync.web.admin.users import ROLES, generate_password

router = APIRouter()


@router.get("/notifications")
async def notifications_page(request: Request) -> Response:
    """Notifications, newest first, unread ones marked."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    before = optional_id(request.query_params.get("before"), "before")
    with ctx.engine.connect() as conn:
        rows = list_notifications(conn, before=before)
    return ctx.render(
        request,
        "admin/notifications.html",
        session,
        rows=rows,
        next_before=rows[-1]["id"] if len(rows) == PAGE_SIZE else None,
    )


@router.post("/notifications/read")
async def mark_read(request: Request) -> Response:
    """Mark one notification (``notification_id``) or all as read (audited)."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    target = (
        None
        if form.get("all") == "true"
        else optional_id(str(form.get("notification_id") or ""), "The notification id")
    )
    if target is None and form.get("all") != "true":
        raise InvalidValueError("Choose the notification to mark as read.")
    with ctx.engine.begin() as conn:
        marked = mark_notifications_read(conn, target)
        record_audit(
            conn,
            session.user.email,
            "notifications_read",
            {"notification": "all" if target is None else target, "marked": marked},
        )
    return ctx.redirect(f"{ADMIN}/notifications", notice=f"Marked {marked} as read.")


@router.get("/audit")
async def audit_page(request: Request) -> Response:
    """Who changed what, and when, newest first."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    before = optional_id(request.query_params.get("before"), "before")
    with ctx.engine.connect() as conn:
        rows = list_audit(conn, before=before)
    return ctx.render(
        request,
        "admin/audit.html",
        session,
        rows=rows,
        next_before=rows[-1]["id"] if len(rows) == PAGE_SIZE else None,
    )


def _users_page(request: Request, ctx: AdminContext, **values: Any) -> Response:
    session = ctx.signed_in(request)
    if not session.user.can_change:
        raise RoleRefusedError("Only admins manage users.")
    return ctx.render(
        request,
        "admin/users.html",
        session,
        users=ctx.users.all(),
        tokens=ctx.users.tokens(session.user.id),
        roles=ROLES,
        **values,
    )


@router.get("/users")
async def users_page(request: Request) -> Response:
    """Users with their roles; forms to add, re-role, disable, and create API tokens."""
    ctx = AdminContext.of(request)
    return _users_page(request, ctx)


@router.post("/users")
async def add_user(request: Request) -> Response:
    """Add a user with a generated password, shown once on the answer page."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    password = generate_password()
    user = ctx.users.create(
        str(form.get("email") or ""),
        password,
        str(form.get("role") or ""),
        actor=session.user.email,
    )
    return _users_page(request, ctx, secret_label=f"Password of {user.email}", secret=password)


@router.post("/users/{user_id}")
async def change_user(request: Request, user_id: str) -> Response:
    """Change a user's role, or disable / enable the user (not oneself)."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    target = optional_id(user_id, "The user id")
    assert target is not None
    if target == session.user.id:
        raise InvalidValueError("You cannot change your own role or disable yourself.")
    action = form.get("action")
    if action == "role":
        user = ctx.users.set_role(target, str(form.get("role") or ""), actor=session.user.email)
        notice = f"{user.email} is now {user.role}."
    elif action == "disable":
        user = ctx.users.disable(target, actor=session.user.email)
        notice = f"{user.email} is disabled and signed out."
    elif action == "enable":
        user = ctx.users.enable(target, actor=session.user.email)
        notice = f"{user.email} can sign in again."
    else:
        raise InvalidValueError("Choose what to change.")
    return ctx.redirect(f"{ADMIN}/users", notice=notice)


@router.post("/tokens")
async def create_token(request: Request) -> Response:
    """A personal API token for the signed-in admin, shown once."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    token = ctx.users.create_token(
        session.user.id, str(form.get("name") or ""), actor=session.user.email
    )
    label = "Your new API token"
    return _users_page(request, ctx, secret_label=label, secret=token)
