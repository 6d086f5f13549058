"""Mutable state of one running emulator, kept in one explicit object (``app.state.runtime``).

:class:`EmulatorRuntime` holds what changes while the emulator runs: the current fault knobs,
the token and delta-token epochs (bumping one invalidates every token issued before), request
counters, the per-user service-protection windows, and the seeded random generator that makes
fault injection reproducible. Its clock is injectable so tests can move time forward.

Contract with the data plane:

* ``runtime.clock()`` is "now" (aware UTC) for ``createdon``/``modifiedon`` and delta-token age.
* A delta token must carry ``runtime.delta_epoch`` when issued; a token whose epoch differs
  from the current one is expired (``POST /_emulator/expire-delta-tokens`` bumps it).
* Access tokens carry ``runtime.token_epoch`` the same way (checked in :mod:`.auth`).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crmsync.emulator.config import EmulatorConfig, EmulatorUser, FaultSettings
from crmsync.emulator.protection import ServiceProtection
from crmsync.emulator.roles import PrivilegeChanges

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real time, aware UTC."""
    return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (for tests): ``clock()`` and ``advance(...)``."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")

    def __call__(self) -> datetime:
        """The current emulated time."""
        return self._now

    def advance(
        self, *, seconds: float = 0.0, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0
    ) -> datetime:
        """Move the clock forward and return the new time."""
        self._now += timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
        return self._now


@dataclass(slots=True)
class EmulatorStats:
    """Counters shown by ``GET /_emulator/stats``."""

    started: datetime
    api_requests: int = 0
    tokens_issued: int = 0
    token_failures: int = 0
    unauthorized: int = 0
    throttled: Counter[str] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    requests_by_user: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    peak_in_flight: int = 0

    def as_dict(self, now: datetime) -> dict[str, Any]:
        """JSON-ready snapshot."""
        return {
            "started": self.started.isoformat(),
            "uptime_seconds": round((now - self.started).total_seconds(), 3),
            "api_requests": self.api_requests,
            "tokens_issued": self.tokens_issued,
            "token_failures": self.token_failures,
            "unauthorized": self.unauthorized,
            "throttled": dict(self.throttled),
            "faults_injected": dict(self.faults_injected),
            "requests_by_user": dict(self.requests_by_user),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
        }


def token_keys(config: EmulatorConfig) -> tuple[bytes, dict[str, bytes]]:
    """The base token key and one key per user, derived from the configuration's secrets.

    The base key is an HMAC under the admin key; each user's key adds the user's own secret
    (client secret or password), so changing that secret invalidates that user's tokens and no
    one else's, and changing the admin key invalidates every token. Public values (seed, tenant,
    ids) alone never suffice to sign a token.
    """
    base = hmac.new(
        config.admin_key.reveal().encode("utf-8"),
        f"crmsync-emulator-token/{config.tenant.lower()}".encode(),
        hashlib.sha256,
    ).digest()
    per_user: dict[str, bytes] = {}
    for user in config.users:
        secret = config.secret_for(user).reveal().encode("utf-8")
        material = b"user\x00" + user.systemuserid.lower().encode("ascii") + b"\x00" + secret
        key = hmac.new(base, material, hashlib.sha256).digest()
        per_user[user.entra_object_id.lower()] = key
    return base, per_user


class EmulatorRuntime:
    """The mutable state of one emulator app; create one per app and pass it explicitly."""

    def __init__(self, config: EmulatorConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self._clock: Clock = clock or system_clock
        self.delta_epoch = 0
        self.token_epoch = 0
        self.faults: FaultSettings = config.faults
        self.rng = random.Random(config.seed)
        # Fault draws have their own generator, so issuing tokens never shifts which requests
        # fail: the same sequence of API calls meets the same faults for a given seed.
        self.fault_rng = random.Random(f"faults/{config.seed}")
        self.stats = EmulatorStats(started=self._clock())
        self.protection = ServiceProtection(config, self.clock)
        # Table privileges revoked or granted through the admin API since start.
        self.privilege_changes = PrivilegeChanges()
        # Guards counters touched from the event loop and from worker threads alike.
        self.lock = threading.Lock()
        # Keys for signing tokens, derived from the configuration's secrets (see
        # :func:`token_keys`): tokens survive a restart of the same configuration, but
        # nobody without the secrets can sign one.
        self.token_key, self._user_token_keys = token_keys(config)
        # Access tokens whose signature was checked: token -> (oid, exp, epoch, aud). Bounded.
        self.verified_tokens: dict[str, tuple[str, int, int, str]] = {}

    def current_user(self, user: EmulatorUser) -> EmulatorUser:
        """``user`` with the privileges it holds now (see :mod:`crmsync.emulator.roles`)."""
        return self.privilege_changes.current(user)

    def signing_key(self, subject: str) -> bytes:
        """The key signing the tokens whose ``oid`` (Entra object id) is ``subject``."""
        return self._user_token_keys.get(subject.lower(), self.token_key)

    def clock(self) -> datetime:
        """Now, aware UTC (injectable for tests)."""
        return self._clock()

    def timestamp(self) -> float:
        """Now as POSIX seconds, from the same clock."""
        return self._clock().timestamp()

    def expire_tokens(self) -> int:
        """Invalidate every access token issued so far; returns the new epoch."""
        with self.lock:
            self.token_epoch += 1
            return self.token_epoch

    def expire_delta_tokens(self) -> int:
        """Invalidate every change-tracking delta token issued so far; returns the new epoch."""
        with self.lock:
            self.delta_epoch += 1
            return self.delta_epoch

    def set_faults(self, faults: FaultSettings) -> None:
        """Replace the current fault knobs (validated)."""
        with self.lock:
            self.faults = faults.validated()

    def draw(self) -> float:
        """A number in [0, 1) from the fault generator (reproducible sequence)."""
        with self.lock:
            return self.fault_rng.random()
