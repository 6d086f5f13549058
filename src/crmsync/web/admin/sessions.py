"""Server-side sessions of the admin UI and the CSRF tokens bound to them.

The session cookie holds a random token; the database keeps only its SHA-256, the user and the
last time it was seen, so signing out (or disabling the user) ends it everywhere and a stolen
database reveals no usable cookie. A session unused for ``idle_seconds`` is over.

Notices shown after a redirect ("Sync is on.") travel signed the same way. CSRF tokens are the
session's random ``csrf_key`` signed with ``itsdangerous`` (keyed by
``[web] session_secret``, or a per-process random key when none is configured); a form is
accepted only with the token of the session that posts it. The sign-in form, posted before
any session exists, is bound the same way to a random pre-session cookie.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Engine, delete, insert, select, update

from crmsync.store.tables import admin_sessions
from crmsync.web.admin.users import AdminUser, AdminUserStore, token_digest

SESSION_COOKIE = "crmsync_session"
PRE_SESSION_COOKIE = "crmsync_signin"
_TOUCH_AFTER = timedelta(seconds=30)  # write last_seen_at at most this often


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: who, and the key its forms' CSRF tokens are made from."""

    user: AdminUser
    csrf_key: str
    cookie: str


class SessionStore:
    """Starts, finds (refreshing idle expiry) and ends sessions."""

    def __init__(
        self,
        engine: Engine,
        users: AdminUserStore,
        *,
        idle_seconds: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._users = users
        self._idle = timedelta(seconds=idle_seconds)
        self._now = now

    def start(self, user: AdminUser) -> Session:
        """A new session for ``user``; the cookie value is returned, never stored."""
        cookie = secrets.token_urlsafe(32)
        csrf_key = secrets.token_hex(16)
        stamp = self._now()
        with self._engine.begin() as conn:
            conn.execute(
                insert(admin_sessions).values(
                    token_hash=token_digest(cookie),
                    user_id=user.id,
                    csrf_key=csrf_key,
                    created_at=stamp,
                    last_seen_at=stamp,
                )
            )
        return Session(user, csrf_key, cookie)

    def find(self, cookie: str | None) -> Session | None:
        """The live session of ``cookie``; an idle-expired one is deleted and None returned."""
        if not cookie:
            return None
        digest = token_digest(cookie)
        now = self._now()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(admin_sessions).where(admin_sessions.c.token_hash == digest)
            ).first()
            if row is None:
                return None
            if now - row.last_seen_at > self._idle:
                conn.execute(delete(admin_sessions).where(admin_sessions.c.token_hash == digest))
                return None
            if now - row.last_seen_at > _TOUCH_AFTER:
                conn.execute(
                    update(admin_sessions)
                    .where(admin_sessions.c.token_hash == digest)
                    .values(last_seen_at=now)
                )
        user = self._users.get(int(row.user_id))
        if user is None or user.disabled_at is not None:
            return None
        return Session(user, str(row.csrf_key), cookie)

    def end(self, cookie: str | None) -> None:
        """Sign out: forget the session of ``cookie``."""
        if cookie:
            with self._engine.begin() as conn:
                conn.execute(
                    delete(admin_sessions).where(
                        admin_sessions.c.token_hash == token_digest(cookie)
                    )
                )


class CsrfTokens:
    """Makes and checks the CSRF tokens of forms (see the module docstring)."""

    def __init__(self, secret: str) -> None:
        key = secret or secrets.token_hex(32)
        self._serializer = URLSafeSerializer(key, salt="admin-csrf")
        self._notices = URLSafeSerializer(key, salt="admin-notice")

    def sign_notice(self, text: str) -> str:
        """``text`` signed for a redirect's query string, so that only this site's own
        messages are ever shown in its banner (no one can link to a page saying anything)."""
        return str(self._notices.dumps(text))

    def read_notice(self, signed: str | None) -> str | None:
        """The message of a signed notice; None when absent or not signed here."""
        if not signed:
            return None
        try:
            text = self._notices.loads(signed)
        except BadSignature:
            return None
        return text if isinstance(text, str) else None

    def token_for(self, key: str) -> str:
        """The token to put in a form of the session (or pre-session) with ``key``."""
        return str(self._serializer.dumps(key))

    def valid(self, token: object, key: str | None) -> bool:
        """Whether ``token`` was made for ``key``."""
        if not isinstance(token, str) or not token or not key:
            return False
        try:
            signed = self._serializer.loads(token)
        except BadSignature:
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed, key)
