"""Who crmsync is in Dynamics, remembered for ``crmsync sync status`` and the admin pages.

A cycle that learnt the sync user's identity (``WhoAmI``, asked when secured columns are
read) stores it with its name as people know it (``Alex Morgan (alex@contoso.com)``, one read
of ``systemusers`` the first time); a quiet cycle asks nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from crmsync.store.key_values import get_setting, set_setting

if TYPE_CHECKING:  # ``crmsync sync status`` reads the name without loading the client
    from crmsync.dynamics.client import DynamicsClient

SYNC_USER_KEY = "sync_user"
"""The ``sync_settings`` key holding ``{"id": <systemuserid>, "name": <label>}``."""


def remember_sync_user(engine: Engine, client: DynamicsClient) -> None:
    """Store the sync user's id and name if this process learnt a new identity."""
    identity = client.identity
    if identity is None or not identity.user_id:
        return
    with engine.connect() as conn:
        stored = get_setting(conn, SYNC_USER_KEY)
    if isinstance(stored, dict) and stored.get("id") == identity.user_id:
        return
    name = client.user_label(identity.user_id)
    with engine.begin() as conn:
        set_setting(conn, SYNC_USER_KEY, {"id": identity.user_id, "name": name})


def sync_user_name(conn: Connection) -> str | None:
    """The sync user's name as last seen by a cycle, or ``None`` before any."""
    stored = get_setting(conn, SYNC_USER_KEY)
    if isinstance(stored, dict) and stored.get("name"):
        return str(stored["name"])
    return None
