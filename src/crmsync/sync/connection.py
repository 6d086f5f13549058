"""The Dynamics connection in effect: the ``[dynamics]`` settings of the file and environment,
with what an admin saved on the Setup page (or through the admin API) laid over them.

The saved connection is one value of the store's key/value table (``dynamics_connection``):
organization URL, tenant, authentication mode, client id and, when one was entered, the client
secret. A saved value wins over the file; a secret left blank keeps the one in effect. The
secret never leaves this module but inside :class:`~crmsync.settings.Secret`, and the audit
trail only says that it changed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from crmsync.dynamics.factory import AUTH_MODES
from crmsync.errors import InvalidValueError
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.audit import record_audit
from crmsync.store.key_values import get_setting, set_setting

CONNECTION_KEY = "dynamics_connection"
EDITABLE = ("url", "tenant", "auth_mode", "client_id")
MAX_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class ConnectionChange:
    """What an admin enters: the connection's editable settings, and a new client secret or
    an empty one to keep the secret in effect."""

    url: str
    tenant: str
    auth_mode: str
    client_id: str
    client_secret: Secret

    @classmethod
    def checked(
        cls, url: str, tenant: str, auth_mode: str, client_id: str, client_secret: str = ""
    ) -> ConnectionChange:
        """A change with every value checked; :class:`InvalidValueError` says what is wrong."""
        values = {"url": url, "tenant": tenant, "auth_mode": auth_mode, "client_id": client_id}
        cleaned = {name: value.strip() for name, value in values.items()}
        for name, value in (*cleaned.items(), ("client_secret", client_secret)):
            if len(value) > MAX_LENGTH or any(ch in value for ch in "\r\n\x00"):
                label = name.replace("_", " ")
                raise InvalidValueError(f"The {label} is too long or holds a line break.")
        address = cleaned["url"]
        if not address.startswith(("https://", "http://")) or len(address) < 10:
            raise InvalidValueError(
                "The organization URL must be a web address such as "
                "https://contoso.crm.dynamics.com."
            )
        if cleaned["auth_mode"] not in AUTH_MODES:
            raise InvalidValueError(f"The authentication must be one of {', '.join(AUTH_MODES)}.")
        if not cleaned["client_id"]:
            raise InvalidValueError("Enter the client id of the app registration.")
        return cls(**cleaned, client_secret=Secret(client_secret))


def _saved(conn: Connection) -> dict[str, Any]:
    value = get_setting(conn, CONNECTION_KEY)
    return value if isinstance(value, dict) else {}


def apply_saved(base: DynamicsSettings, saved: dict[str, Any]) -> DynamicsSettings:
    """``base`` with a saved connection laid over it."""
    changes: dict[str, Any] = {
        name: str(saved[name]) for name in EDITABLE if isinstance(saved.get(name), str)
    }
    if isinstance(saved.get("client_secret"), str) and saved["client_secret"]:
        changes["client_secret"] = Secret(saved["client_secret"])
    return dataclasses.replace(base, **changes)


def connection_in_effect(engine: Engine, base: DynamicsSettings) -> DynamicsSettings:
    """The connection to use now: ``base`` (file and environment) with the saved one over it."""
    with engine.connect() as conn:
        return apply_saved(base, _saved(conn))


def is_saved(engine: Engine) -> bool:
    """Whether an admin has saved a connection that overrides the file."""
    with engine.connect() as conn:
        return bool(_saved(conn))


def candidate(current: DynamicsSettings, change: ConnectionChange) -> DynamicsSettings:
    """The connection ``change`` would put in effect (a blank secret keeps the current one)."""
    replaced: dict[str, Any] = {name: getattr(change, name) for name in EDITABLE}
    if change.client_secret:
        replaced["client_secret"] = change.client_secret
    return dataclasses.replace(current, **replaced)


def save_connection(
    conn: Connection, current: DynamicsSettings, change: ConnectionChange, *, actor: str
) -> list[str]:
    """Store ``change`` in the caller's transaction and audit it; returns the names of the
    settings it changed (``client_secret`` when a new secret was entered)."""
    saved = _saved(conn)
    stored: dict[str, Any] = {name: getattr(change, name) for name in EDITABLE}
    if change.client_secret:
        stored["client_secret"] = change.client_secret.reveal()
    elif isinstance(saved.get("client_secret"), str):
        stored["client_secret"] = saved["client_secret"]
    changed = [name for name in EDITABLE if getattr(current, name) != getattr(change, name)]
    if change.client_secret and change.client_secret.reveal() != current.client_secret.reveal():
        changed.append("client_secret")
    set_setting(conn, CONNECTION_KEY, stored)
    details: dict[str, object] = {name: getattr(change, name) for name in EDITABLE}
    details["changed"] = changed
    details["client_secret"] = "changed" if "client_secret" in changed else "kept"
    record_audit(conn, actor, "dynamics_connection_changed", details)
    return changed
