"""The audit trail (B44): who changed what, and when.

:func:`record_audit` is the one writer of ``audit_log`` rows, whoever records the change: the
command line, the admin UI and admin API, the field-selection service, the sync switch. Call it
in the transaction of the change it records, so the trail never shows a change that was rolled
back. ``details`` never holds a secret (a password, a client secret, a token).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from crmsync.store.tables import audit_log, now_utc

__all__ = ["record_audit"]


def record_audit(
    conn: Connection,
    actor: str,
    action: str,
    details: Mapping[str, object],
    *,
    when: datetime | None = None,
) -> None:
    """Append one row to the audit trail in the caller's transaction.

    ``actor`` names who acted (an admin's e-mail, ``cli``); ``action`` is a short snake_case
    verb phrase (``sync_disabled``, ``field_mapped``); ``when`` defaults to now (UTC).
    """
    conn.execute(
        insert(audit_log).values(
            occurred_at=when if when is not None else now_utc(),
            actor=actor,
            action=action,
            details=dict(details),
        )
    )
