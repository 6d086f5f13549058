"""Sign in and sign out.

The sign-in form is bound to a random pre-session cookie by its CSRF token; attempts are
limited per client address (:class:`~crmsync.web.admin.security.SignInLimiter`) and accounts
lock after repeated wrong passwords (:class:`~crmsync.web.admin.users.AdminUserStore`). A
wrong e-mail and a wrong password get the same message.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from crmsync.errors import SignInRefusedError
from crmsync.web.admin.context import ADMIN, AdminContext, redirect
from crmsync.web.admin.sessions import PRE_SESSION_COOKIE, SESSION_COOKIE

router = APIRouter()


def _safe_next(target: object) -> str:
    """Only a path on this site (never ``//host`` or a full URL) may be returned to."""
    if isinstance(target, str) and target.startswith(f"{ADMIN}/") and "//" not in target:
        return target
    return f"{ADMIN}/"


def _sign_in_page(
    request: Request, *, error: str | None = None, email: str = "", status_code: int = 200
) -> Response:
    ctx = AdminContext.of(request)
    key = request.cookies.get(PRE_SESSION_COOKIE) or secrets.token_hex(16)
    response = ctx.render(
        request,
        "admin/sign_in.html",
        None,
        status_code=status_code,
        sign_in_token=ctx.csrf.token_for(key),
        error=error,
        email=email,
        next=_safe_next(request.query_params.get("next")),
    )
    response.set_cookie(
        PRE_SESSION_COOKIE,
        key,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path=ADMIN,
    )
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    """The sign-in page (signed-in users go to the overview)."""
    if AdminContext.of(request).session(request) is not None:
        return redirect(f"{ADMIN}/")
    return _sign_in_page(request)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Check the form's token, the rate limit and the password; start a session."""
    ctx = AdminContext.of(request)
    form = await request.form()
    email = str(form.get("email") or "")
    if not ctx.csrf.valid(form.get("csrf_token"), request.cookies.get(PRE_SESSION_COOKIE)):
        return _sign_in_page(
            request,
            error="The sign-in form expired. Please try again.",
            email=email,
            status_code=403,
        )
    client = request.client.host if request.client else "unknown"
    wait = ctx.limiter.wait_seconds(client)
    if wait:
        response = _sign_in_page(
            request,
            error=f"Too many sign-in attempts. Try again in {wait} seconds.",
            email=email,
            status_code=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        user = ctx.users.authenticate(email, str(form.get("password") or ""))
    except SignInRefusedError as exc:
        return _sign_in_page(request, error=exc.message, email=email, status_code=401)
    session = ctx.sessions.start(user)
    response = redirect(_safe_next(form.get("next")))
    response.set_cookie(
        SESSION_COOKIE,
        session.cookie,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(PRE_SESSION_COOKIE, path=ADMIN)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session (the form carries its CSRF token) and go back to sign in."""
    ctx = AdminContext.of(request)
    await ctx.change_form(request, admin_only=False)
    ctx.sessions.end(request.cookies.get(SESSION_COOKIE))
    response = ctx.redirect(f"{ADMIN}/sign-in", notice="You are signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
