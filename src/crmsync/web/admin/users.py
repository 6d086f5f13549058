"""Admin users: created, signed in, locked out, re-roled and disabled; personal API tokens.

Passwords are hashed with argon2id (``argon2-cffi``'s :class:`~argon2.PasswordHasher`, its
current default parameters); a hash made with older parameters is upgraded at the next sign-in.
After ``MAX_FAILURES`` wrong passwords in a row the account is locked for ``LOCK_SECONDS``.
Every change is written to the audit trail in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, Engine, func, insert, select, update

from crmsync.errors import InvalidValueError, RecordNotFoundError, SignInRefusedError
from crmsync.store.audit import record_audit
from crmsync.store.tables import admin_api_tokens, admin_sessions, admin_users

ROLES = ("admin", "viewer")
MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "crmsync_"  # noqa: S105 - a label, not a secret
SIGN_IN_REFUSED = "Wrong e-mail address or password."

Now = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def token_digest(token: str) -> str:
    """SHA-256 of a random token (session cookie, API token): what the database keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalise_email(email: str) -> str:
    """Trim and lower-case an e-mail address; refuse one that is obviously not an address."""
    value = email.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or len(value) > 255 or any(c.isspace() for c in value):
        raise InvalidValueError("Enter an e-mail address like name@example.com.")
    return value


def check_role(role: str) -> str:
    """The role, if it is one of :data:`ROLES`."""
    if role not in ROLES:
        raise InvalidValueError(f"Role must be one of: {', '.join(ROLES)}.")
    return role


def check_password(password: str) -> str:
    """A new password, if it is long enough."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidValueError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    return password


def generate_password() -> str:
    """A random password for a new user (about 128 bits)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class AdminUser:
    """A person who may sign in to the admin UI and API."""

    id: int
    email: str
    role: str
    created_at: datetime
    disabled_at: datetime | None
    last_login_at: datetime | None
    locked_until: datetime | None

    @property
    def can_change(self) -> bool:
        """Admins change things; viewers only look."""
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A personal API token (its value is shown once, when created, never stored)."""

    id: int
    user_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


def _user(row: Any) -> AdminUser:
    return AdminUser(
        int(row.id),
        str(row.email),
        str(row.role),
        row.created_at,
        row.disabled_at,
        row.last_login_at,
        row.locked_until,
    )


class AdminUserStore:
    """Admin users, their sign-ins and API tokens in the database."""

    def __init__(self, engine: Engine, *, now: Now = _utc_now) -> None:
        self._engine = engine
        self._now = now
        self._hasher = PasswordHasher()  # argon2id with the library's current parameters

    # ---- users ---------------------------------------------------------------------------

    def create(self, email: str, password: str, role: str, *, actor: str) -> AdminUser:
        """Add a user; an address already in use is refused."""
        address = normalise_email(email)
        check_role(role)
        digest = self._hasher.hash(check_password(password))
        with self._engine.begin() as conn:
            taken = conn.execute(
                select(admin_users.c.id).where(admin_users.c.email == address)
            ).first()
            if taken is not None:
                raise InvalidValueError(f"There is already a user {address}.")
            conn.execute(
                insert(admin_users).values(
                    email=address,
                    password_hash=digest,
                    role=role,
                    created_at=self._now(),
                    failed_logins=0,
                )
            )
            record_audit(conn, actor, "admin_user_created", {"email": address, "role": role})
            row = conn.execute(select(admin_users).where(admin_users.c.email == address)).one()
        return _user(row)

    def get(self, user_id: int) -> AdminUser | None:
        """The user with ``user_id``, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(admin_users).where(admin_users.c.id == user_id)).first()
        return _user(row) if row is not None else None

    def by_email(self, email: str) -> AdminUser | None:
        """The user with ``email`` (any case), or None."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(admin_users).where(admin_users.c.email == email.strip().lower())
            ).first()
        return _user(row) if row is not None else None

    def all(self) -> list[AdminUser]:
        """Every user, by e-mail address."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(admin_users).order_by(admin_users.c.email)).all()
        return [_user(row) for row in rows]

    def count(self) -> int:
        """How many users exist (disabled ones included)."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(admin_users)).scalar_one())

    def _change(self, user_id: int, actor: str, action: str, **values: object) -> AdminUser:
        with self._engine.begin() as conn:
            row = conn.execute(select(admin_users).where(admin_users.c.id == user_id)).first()
            if row is None:
                raise RecordNotFoundError(f"No user {user_id}.")
            conn.execute(update(admin_users).where(admin_users.c.id == user_id).values(**values))
            details: dict[str, object] = {"email": row.email}
            details.update({k: v for k, v in values.items() if k == "role"})
            record_audit(conn, actor, action, details)
            if "disabled_at" in values:  # a disabled user is signed out everywhere
                conn.execute(admin_sessions.delete().where(admin_sessions.c.user_id == user_id))
                conn.execute(
                    update(admin_api_tokens)
                    .where(admin_api_tokens.c.user_id == user_id)
                    .where(admin_api_tokens.c.revoked_at.is_(None))
                    .values(revoked_at=self._now())
                )
        changed = self.get(user_id)
        assert changed is not None
        return changed

    def set_password(self, user_id: int, password: str, *, actor: str) -> AdminUser:
        """Give a user a new password (and unlock it), signing it out everywhere (audited)."""
        digest = self._hasher.hash(check_password(password))
        user = self._change(
            user_id,
            actor,
            "admin_user_password_set",
            password_hash=digest,
            failed_logins=0,
            locked_until=None,
        )
        with self._engine.begin() as conn:
            conn.execute(admin_sessions.delete().where(admin_sessions.c.user_id == user_id))
        return user

    def set_role(self, user_id: int, role: str, *, actor: str) -> AdminUser:
        """Make a user an admin or a viewer (audited)."""
        return self._change(user_id, actor, "admin_user_role_changed", role=check_role(role))

    def disable(self, user_id: int, *, actor: str) -> AdminUser:
        """Disable a user: signed out, tokens revoked, no more sign-ins (audited)."""
        return self._change(user_id, actor, "admin_user_disabled", disabled_at=self._now())

    def enable(self, user_id: int, *, actor: str) -> AdminUser:
        """Let a disabled user sign in again (audited)."""
        return self._change(user_id, actor, "admin_user_enabled", disabled_at=None, failed_logins=0)

    # ---- sign in -------------------------------------------------------------------------

    def authenticate(self, email: str, password: str) -> AdminUser:
        """The user whose password this is; counts failures and locks the account after
        :data:`MAX_FAILURES` in a row. Every refusal says the same thing, except a lock,
        which says how long to wait."""
        address = email.strip().lower()
        now = self._now()
        refusal: SignInRefusedError | None = None
        with self._engine.begin() as conn:  # failure counts commit before the refusal
            row = conn.execute(select(admin_users).where(admin_users.c.email == address)).first()
            if row is None:
                self._hasher.hash(password)  # spend the same time as for a known address
                raise SignInRefusedError(SIGN_IN_REFUSED)
            if row.locked_until is not None and row.locked_until > now:
                wait = (row.locked_until - now).total_seconds()
                raise SignInRefusedError(_locked_message(wait), retry_after=wait)
            if not self._verify(row.password_hash, password):
                refusal = self._count_failure(conn, row.id, int(row.failed_logins), address, now)
            elif row.disabled_at is not None:
                raise SignInRefusedError(SIGN_IN_REFUSED)
            else:
                values: dict[str, object] = {
                    "failed_logins": 0,
                    "locked_until": None,
                    "last_login_at": now,
                }
                if self._hasher.check_needs_rehash(row.password_hash):
                    values["password_hash"] = self._hasher.hash(password)
                conn.execute(update(admin_users).where(admin_users.c.id == row.id).values(**values))
                row = conn.execute(select(admin_users).where(admin_users.c.id == row.id)).one()
        if refusal is not None:
            raise refusal
        return _user(row)

    def _verify(self, digest: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(digest, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _count_failure(
        self, conn: Connection, user_id: int, failed: int, address: str, now: datetime
    ) -> SignInRefusedError:
        """Count one wrong password; lock the account at :data:`MAX_FAILURES`."""
        failures = failed + 1
        locked = now + timedelta(seconds=LOCK_SECONDS) if failures >= MAX_FAILURES else None
        conn.execute(
            update(admin_users)
            .where(admin_users.c.id == user_id)
            .values(failed_logins=0 if locked else failures, locked_until=locked)
        )
        if locked is None:
            return SignInRefusedError(SIGN_IN_REFUSED)
        record_audit(conn, address, "admin_user_locked", {"email": address})
        return SignInRefusedError(_locked_message(LOCK_SECONDS), retry_after=LOCK_SECONDS)

    # ---- personal API tokens -------------------------------------------------------------

    def create_token(self, user_id: int, name: str, *, actor: str) -> str:
        """A new bearer token for ``user_id``; the value is returned once and never stored."""
        label = name.strip()
        if not label or len(label) > 255:
            raise InvalidValueError("Give the token a name (up to 255 characters).")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._engine.begin() as conn:
            owner = conn.execute(
                select(admin_users.c.email).where(admin_users.c.id == user_id)
            ).first()
            if owner is None:
                raise RecordNotFoundError(f"No user {user_id}.")
            conn.execute(
                insert(admin_api_tokens).values(
                    user_id=user_id,
                    name=label,
                    token_hash=token_digest(token),
                    created_at=self._now(),
                )
            )
            record_audit(conn, actor, "api_token_created", {"email": owner.email, "name": label})
        return token

    def tokens(self, user_id: int) -> list[ApiToken]:
        """The user's tokens that are not revoked."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(admin_api_tokens)
                .where(admin_api_tokens.c.user_id == user_id)
                .where(admin_api_tokens.c.revoked_at.is_(None))
                .order_by(admin_api_tokens.c.id)
            ).all()
        return [
            ApiToken(int(r.id), int(r.user_id), r.name, r.created_at, r.last_used_at) for r in rows
        ]

    def user_of_token(self, token: str) -> AdminUser | None:
        """The enabled user a bearer token belongs to, or None."""
        with self._engine.begin() as conn:
            row = conn.execute(
                select(admin_api_tokens.c.id, admin_api_tokens.c.user_id).where(
                    admin_api_tokens.c.token_hash == token_digest(token),
                    admin_api_tokens.c.revoked_at.is_(None),
                )
            ).first()
            if row is None:
                return None
            conn.execute(
                update(admin_api_tokens)
                .where(admin_api_tokens.c.id == row.id)
                .values(last_used_at=self._now())
            )
        user = self.get(int(row.user_id))
        return user if user is not None and user.disabled_at is None else None


def _locked_message(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return (
        f"Too many wrong passwords: this account is locked. Try again in {minutes} "
        f"minute{'s' if minutes != 1 else ''}."
    )
