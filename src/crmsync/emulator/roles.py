"""Privileges changed while the emulator runs: an administrator revoking or granting a table
privilege of a user, as one would by editing the user's security role in Dynamics.

The configuration says what each user holds at start; :class:`PrivilegeChanges` records the
changes made since through the admin API, and :meth:`PrivilegeChanges.current` gives a user as
it stands now. The control plane applies it to every request (the caller and an impersonated
user alike), and ``RetrieveUserPrivileges`` answers from it, so a revoked privilege is refused
with the documented 403 ``PrivilegeDenied`` and no longer listed, at once.

Admin API (``X-Emulator-Key`` required):

* ``GET /_emulator/privileges``: the changes in force, per user and table;
* ``PATCH /_emulator/privileges`` with ``{"user": "<systemuserid, UPN or client id>",
  "table": "lead", "revoke": ["write"], "grant": ["create"]}``; ``user`` left out means the
  first application user (the sync user of the default configuration). Answers the table's
  privileges as they now stand;
* ``DELETE /_emulator/privileges``: back to the configuration.

Where the docs are silent: a real org caches privileges for a short while; the emulator applies
a change to the next request.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crmsync.emulator.config import PRIVILEGES, EmulatorConfig, EmulatorUser
from crmsync.emulator.jsontext import loads_strict


class PrivilegeChanges:
    """Table privileges revoked or granted since start, per user (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # systemuserid (lower case) -> table -> the privileges held on it now
        self._held: dict[str, dict[str, frozenset[str]]] = {}

    def current(self, user: EmulatorUser) -> EmulatorUser:
        """``user`` with the changes made since start (the same object when there are none)."""
        with self._lock:
            changed = self._held.get(user.systemuserid.lower())
            if not changed:
                return user
            privileges = {**user.privileges, **changed}
        return dataclasses.replace(user, privileges=MappingProxyType(privileges))

    def change(
        self, user: EmulatorUser, table: str, *, revoke: frozenset[str], grant: frozenset[str]
    ) -> frozenset[str]:
        """Revoke and grant privileges of ``user`` on ``table``; return what it now holds."""
        now = self.current(user)
        held = frozenset(p for p in PRIVILEGES if now.can(table, p))
        updated = (held - revoke) | grant
        with self._lock:
            self._held.setdefault(user.systemuserid.lower(), {})[table] = updated
        return updated

    def snapshot(self) -> dict[str, dict[str, list[str]]]:
        """The changes in force: user id -> table -> privileges held now."""
        with self._lock:
            return {
                user: {table: sorted(held) for table, held in tables.items()}
                for user, tables in self._held.items()
            }

    def reset(self) -> None:
        """Forget every change: users hold what the configuration says."""
        with self._lock:
            self._held.clear()


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _find_user(config: EmulatorConfig, name: object) -> EmulatorUser | None:
    if name is None:
        return next((u for u in config.users if u.kind == "application"), None)
    if not isinstance(name, str):
        return None
    return config.user_by_id(name) or config.user_by_upn(name) or config.user_by_client_id(name)


def _privilege_list(body: dict[str, Any], key: str) -> frozenset[str] | str:
    """The privileges named under ``key``, or the error message when they are not valid."""
    raw = body.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        return f"{key} must be a list of privilege names"
    unknown = sorted(set(raw) - PRIVILEGES)
    if unknown:
        allowed = ", ".join(sorted(PRIVILEGES))
        return f"{key}: unknown privilege(s) {', '.join(unknown)} (allowed: {allowed})"
    return frozenset(raw)


Endpoint = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Endpoint], Endpoint]


def privilege_routes(
    config: EmulatorConfig, changes: PrivilegeChanges, guarded: Guard
) -> list[BaseRoute]:
    """``/_emulator/privileges``: see the module docstring."""

    async def show(request: Request) -> Response:
        return JSONResponse({"changes": changes.snapshot()})

    async def change(request: Request) -> Response:
        try:
            body = loads_strict(await request.body() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "InvalidJson", "The body must be a JSON object.")
        user = _find_user(config, body.get("user"))
        if user is None:
            return _error(400, "UnknownUser", "user names no configured user.")
        table = body.get("table")
        if not isinstance(table, str) or not table.strip():
            return _error(400, "InvalidPrivileges", 'table must name a table, e.g. "lead".')
        revoke, grant = _privilege_list(body, "revoke"), _privilege_list(body, "grant")
        if isinstance(revoke, str):
            return _error(400, "InvalidPrivileges", revoke)
        if isinstance(grant, str):
            return _error(400, "InvalidPrivileges", grant)
        held = changes.change(user, table.strip().lower(), revoke=revoke, grant=grant)
        return JSONResponse(
            {"user": user.systemuserid, "table": table.strip().lower(), "held": sorted(held)}
        )

    async def reset(request: Request) -> Response:
        changes.reset()
        return JSONResponse({"changes": {}})

    return [
        Route("/_emulator/privileges", guarded(show), methods=["GET"]),
        Route("/_emulator/privileges", guarded(change), methods=["PATCH", "POST"]),
        Route("/_emulator/privileges", guarded(reset), methods=["DELETE"]),
    ]
