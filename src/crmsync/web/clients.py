"""API clients and access tokens of the Marketo-compatible API (spec marketo-rest.md §2).

An API client is a ``client_id`` (a UUID, public) and a ``client_secret`` (random, shown once at
creation). The secret is stored only as a salted scrypt hash; access tokens are random and
stored only as their SHA-256, so a copy of the database yields neither.

Asking for a token again before the current one expires returns the same token with its
remaining lifetime, as Marketo does (§2.1). Because only hashes are stored, the plaintext of a
live token is remembered in this process's memory only; after a restart a new token is issued
(the old one stays valid until it expires).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crmsync.errors import AuthenticationError, InputError, RecordNotFoundError
from crmsync.settings import Secret
from crmsync.store import tables
from crmsync.store.audit import record_audit

Clock = Callable[[], float]

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_EXPIRED_TOKEN_RETENTION = dt.timedelta(days=1)
MAX_NAME_LENGTH = 255


@dataclass(frozen=True, slots=True)
class CreatedClient:
    """A newly created API client; the only moment its secret is known in clear."""

    client_id: str
    name: str
    client_secret: Secret


@dataclass(frozen=True, slots=True)
class ApiClientInfo:
    """An API client as listed (never with its secret)."""

    client_id: str
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        """True while the client has not been revoked."""
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token as returned by the identity endpoint."""

    access_token: Secret
    expires_in: int
    scope: str


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The outcome of checking a bearer token: the client, or why it was refused."""

    client_id: str | None
    expired: bool = False


def hash_secret(secret: str) -> str:
    """Return a salted scrypt hash of ``secret`` in a self-describing text form."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    encoded_salt = base64.b64encode(salt).decode("ascii")
    encoded_digest = base64.b64encode(digest).decode("ascii")
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encoded_salt}${encoded_digest}"


def verify_secret(secret: str, stored: str) -> bool:
    """Return True when ``secret`` matches a hash made by :func:`hash_secret`."""
    try:
        scheme, n, r, p, encoded_salt, encoded_digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(encoded_digest)
        digest = hashlib.scrypt(
            secret.encode("utf-8"),
            salt=base64.b64decode(encoded_salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def hash_token(token: str) -> str:
    """Return the stored form of an access token (hex SHA-256; tokens are random)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@dataclass(slots=True)
class _LiveToken:
    token: str
    expires_at: float


class ApiClientStore:
    """Creates, lists and revokes API clients; issues and checks their access tokens."""

    def __init__(
        self, engine: Engine, *, token_lifetime_seconds: int = 3600, clock: Clock = time.time
    ) -> None:
        self.engine = engine
        self.token_lifetime_seconds = token_lifetime_seconds
        self.clock = clock
        self._live: dict[str, _LiveToken] = {}
        self._lock = threading.Lock()

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), tz=dt.UTC)

    def _audit(self, conn: sa.Connection, actor: str, action: str, details: dict[str, str]) -> None:
        record_audit(conn, actor, action, details, when=self._now())

    def create(self, name: str, *, actor: str = "cli") -> CreatedClient:
        """Create a client named ``name`` and return its id and (only now) its secret.

        The creation is recorded in the audit trail (id and name, never the secret).
        """
        cleaned = name.strip()
        if not cleaned:
            raise InputError("an API client needs a name")
        if len(cleaned) > MAX_NAME_LENGTH:
            raise InputError(f"an API client name has at most {MAX_NAME_LENGTH} characters")
        client_id = str(uuid.uuid4())
        client_secret = secrets.token_urlsafe(24)
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(tables.api_clients).values(
                    client_id=client_id,
                    name=cleaned,
                    secret_hash=hash_secret(client_secret),
                    created_at=self._now(),
                    revoked_at=None,
                )
            )
            details = {"client_id": client_id, "name": cleaned}
            self._audit(conn, actor, "api_client_created", details)
        return CreatedClient(client_id=client_id, name=cleaned, client_secret=Secret(client_secret))

    def list(self) -> list[ApiClientInfo]:
        """Return every client, oldest first."""
        table = tables.api_clients
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    table.c.client_id, table.c.name, table.c.created_at, table.c.revoked_at
                ).order_by(table.c.id)
            ).all()
        return [
            ApiClientInfo(
                client_id=row.client_id,
                name=row.name,
                created_at=_utc(row.created_at),
                revoked_at=None if row.revoked_at is None else _utc(row.revoked_at),
            )
            for row in rows
        ]

    def revoke(self, client_id: str, *, actor: str = "cli") -> None:
        """Revoke a client: its secret and every token it holds stop working at once.

        The revocation is recorded in the audit trail.
        """
        with self.engine.begin() as conn:
            updated = conn.execute(
                sa.update(tables.api_clients)
                .where(tables.api_clients.c.client_id == client_id)
                .where(tables.api_clients.c.revoked_at.is_(None))
                .values(revoked_at=self._now())
            ).rowcount
            if not updated:
                exists = conn.execute(
                    sa.select(tables.api_clients.c.id).where(
                        tables.api_clients.c.client_id == client_id
                    )
                ).first()
                if exists is None:
                    raise RecordNotFoundError(f"no API client {client_id}", entity="api_client")
            conn.execute(
                sa.delete(tables.api_access_tokens).where(
                    tables.api_access_tokens.c.client_id == client_id
                )
            )
            if updated:
                self._audit(conn, actor, "api_client_revoked", {"client_id": client_id})
        with self._lock:
            self._live.pop(client_id, None)

    def issue_token(self, client_id: str, client_secret: str) -> IssuedToken:
        """Return an access token for valid credentials; AuthenticationError otherwise.

        A token still valid for this client is returned again with its remaining lifetime.
        """
        table = tables.api_clients
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(table.c.name, table.c.secret_hash, table.c.revoked_at).where(
                    table.c.client_id == client_id
                )
            ).first()
        if row is None or row.revoked_at is not None:
            raise AuthenticationError("No client with requested id")
        if not verify_secret(client_secret, row.secret_hash):
            raise AuthenticationError("Bad client credentials")
        scope = f"{row.name}@crmsync"
        now = self.clock()
        with self._lock:
            live = self._live.get(client_id)
            if live is not None and live.expires_at - now >= 1:
                return IssuedToken(Secret(live.token), int(live.expires_at - now), scope)
            token = f"{uuid.uuid4()}:cs"
            expires_at = now + self.token_lifetime_seconds
            self._live[client_id] = _LiveToken(token, expires_at)
        expiry = dt.datetime.fromtimestamp(expires_at, tz=dt.UTC)
        prune_before = dt.datetime.fromtimestamp(now, tz=dt.UTC) - _EXPIRED_TOKEN_RETENTION
        tokens = tables.api_access_tokens
        with self.engine.begin() as conn:
            conn.execute(sa.delete(tokens).where(tokens.c.expires_at < prune_before))
            conn.execute(
                sa.insert(tokens).values(
                    token_hash=hash_token(token), client_id=client_id, expires_at=expiry
                )
            )
        return IssuedToken(Secret(token), self.token_lifetime_seconds, scope)

    def check_token(self, token: str) -> TokenCheck:
        """Look a bearer token up: its client, whether it expired, or unknown (client None)."""
        tokens = tables.api_access_tokens
        clients = tables.api_clients
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(tokens.c.client_id, tokens.c.expires_at)
                .join(clients, clients.c.client_id == tokens.c.client_id)
                .where(tokens.c.token_hash == hash_token(token))
                .where(clients.c.revoked_at.is_(None))
            ).first()
        if row is None:
            return TokenCheck(client_id=None)
        expired = _utc(row.expires_at).timestamp() <= self.clock()
        return TokenCheck(client_id=row.client_id, expired=expired)
