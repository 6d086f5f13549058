"""The Dynamics connection in effect: the ``[dynamics]`` settings of the file and environment,
with what an admin saved on the Setup page (or through the admin API) laid over them.

The saved connection is one value of the store's key/value table (``dynamics_connection``):
organization URL, tenant, authentication mode, client id and, when one was entered, the client
secret, encrypted (:mod:`crmsync.store.secret_box`). A saved value wins over the file; a secret
left blank keeps the one in effect. The secret never leaves this module but inside
:class:`~crmsync.settings.Secret`, and the audit trail only says that it changed. A secret
saved in plain text by an older version is still read, and stored encrypted the first time it
is read.

:func:`connection_for` is the one resolution every command and the server use.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from crmsync.dynamics.factory import AUTH_MODES
from crmsync.errors import InvalidValueError, SecretKeyError
from crmsync.settings import DynamicsSettings, Secret, Settings
from crmsync.store.audit import record_audit
from crmsync.store.key_values import get_setting, set_setting
from crmsync.store.secret_box import SecretBox

logger = logging.getLogger(__name__)

CONNECTION_KEY = "dynamics_connection"
# the names under which the saved secret is stored (names, not secrets):
SEALED_SECRET = "client_secret_encrypted"  # noqa: S105  a Fernet token (store.secret_box)
PLAIN_SECRET = "client_secret"  # noqa: S105  how older versions stored it; read, then sealed
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


def _plain_secret(saved: dict[str, Any]) -> str:
    """A secret an older version saved unencrypted ("" when there is none)."""
    value = saved.get(PLAIN_SECRET)
    return value if isinstance(value, str) else ""


def _sealed_secret(saved: dict[str, Any]) -> str:
    value = saved.get(SEALED_SECRET)
    return value if isinstance(value, str) else ""


def apply_saved(base: DynamicsSettings, saved: dict[str, Any], box: SecretBox) -> DynamicsSettings:
    """``base`` with a saved connection laid over it; :class:`SecretKeyError` when its secret
    cannot be decrypted."""
    changes: dict[str, Any] = {
        name: str(saved[name]) for name in EDITABLE if isinstance(saved.get(name), str)
    }
    if _sealed_secret(saved):
        changes["client_secret"] = Secret(box.unseal(_sealed_secret(saved)))
    elif _plain_secret(saved):
        changes["client_secret"] = Secret(_plain_secret(saved))
    return dataclasses.replace(base, **changes)


def _seal_plain_secret(engine: Engine, box: SecretBox) -> None:
    """Store a secret saved in plain text by an older version encrypted instead."""
    with engine.begin() as conn:
        saved = _saved(conn)
        plain = _plain_secret(saved)
        if not plain or _sealed_secret(saved):
            return
        rest = {name: value for name, value in saved.items() if name != PLAIN_SECRET}
        set_setting(conn, CONNECTION_KEY, {**rest, SEALED_SECRET: box.seal(plain)})
    logger.info("the saved Dynamics client secret is now stored encrypted")


def connection_in_effect(
    engine: Engine, base: DynamicsSettings, box: SecretBox
) -> DynamicsSettings:
    """The connection to use now: ``base`` (file and environment) with the saved one over it;
    :class:`SecretKeyError` (saying what to do) when the saved secret cannot be decrypted."""
    with engine.connect() as conn:
        saved = _saved(conn)
    if _plain_secret(saved) and not _sealed_secret(saved):
        _seal_plain_secret(engine, box)
    return apply_saved(base, saved, box)


def connection_for(engine: Engine, settings: Settings) -> DynamicsSettings:
    """The connection every command and the server use: the file's and environment's
    ``[dynamics]`` with the one saved on the Setup page over it."""
    return connection_in_effect(engine, settings.dynamics, SecretBox.of(settings.database))


def connection_shown(
    engine: Engine, base: DynamicsSettings, box: SecretBox
) -> tuple[DynamicsSettings, str | None]:
    """The connection in effect for the Setup page, and why its saved secret cannot be used
    (with the secret then left blank, so that a new one can be entered), or ``None``."""
    try:
        return connection_in_effect(engine, base, box), None
    except SecretKeyError as exc:
        with engine.connect() as conn:
            saved = _saved(conn)
        unreadable = {name: value for name, value in saved.items() if name != SEALED_SECRET}
        shown = apply_saved(base, unreadable, box)
        return dataclasses.replace(shown, client_secret=Secret("")), exc.message


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
    conn: Connection,
    current: DynamicsSettings,
    change: ConnectionChange,
    *,
    actor: str,
    box: SecretBox,
) -> list[str]:
    """Store ``change`` in the caller's transaction, its secret encrypted, and audit it;
    returns the names of the settings it changed (``client_secret`` when a new secret was
    entered)."""
    saved = _saved(conn)
    stored: dict[str, Any] = {name: getattr(change, name) for name in EDITABLE}
    if change.client_secret:
        stored[SEALED_SECRET] = box.seal(change.client_secret.reveal())
    elif _sealed_secret(saved):
        stored[SEALED_SECRET] = _sealed_secret(saved)
    elif _plain_secret(saved):
        stored[SEALED_SECRET] = box.seal(_plain_secret(saved))
    changed = [name for name in EDITABLE if getattr(current, name) != getattr(change, name)]
    if change.client_secret and change.client_secret.reveal() != current.client_secret.reveal():
        changed.append("client_secret")
    set_setting(conn, CONNECTION_KEY, stored)
    details: dict[str, object] = {name: getattr(change, name) for name in EDITABLE}
    details["changed"] = changed
    details["client_secret"] = "changed" if "client_secret" in changed else "kept"
    record_audit(conn, actor, "dynamics_connection_changed", details)
    return changed
