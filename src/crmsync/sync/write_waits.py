"""Writes to Dynamics that wait for a whole entity because the sync user lost a privilege they
need (B41 "permission lost", B43).

When Dynamics refuses a write with a privilege error (``PrivilegeDenied`` and its kin in
:data:`crmsync.dataverse_codes.PRIVILEGE_CODES`), every other write of that kind to that table
would fail the same way: it is a setup problem, not a bad record. The pusher then stops writing
that entity: its outbox entries stay queued (nothing lost, no failing record for this cause),
the wait is stored in ``write_waits`` naming the privilege, and one critical notification says
how to fix it. Reads from Dynamics go on.

At the start of each later push, :func:`check_waits` asks Dynamics once for the sync user's
privileges (``RetrieveUserPrivileges``): when the missing ones are held again (at any depth:
Dynamics lists privileges inherited from a team at Basic depth whatever their real one), the
wait ends, an info notification says so, and the queued writes go in that push.
This module is the only writer of ``write_waits``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection, Row

from crmsync.dataverse_codes import PRIVILEGE_CODES, normalised
from crmsync.errors import CrmsyncError
from crmsync.store.tables import notifications, now_utc, write_waits
from crmsync.sync.history import notify

if TYPE_CHECKING:  # the status reads waits without loading the Dynamics client
    from crmsync.dynamics.client import DynamicsClient

PERMISSION_LOST = "permission_lost"
"""The reason of a wait: the sync user lacks a table privilege the writes need."""

PERMISSION_RESTORED = "permission_restored"

_MISSING_PRIVILEGE = re.compile(r"missing (prv[A-Za-z0-9_]+) privilege")


@dataclass(frozen=True, slots=True)
class WriteWait:
    """Writes of one entity held back, why, and since when."""

    entity: str
    reason: str
    privileges: tuple[str, ...]
    error_code: str | None
    message: str
    since: datetime
    checked_at: datetime

    @property
    def summary(self) -> str:
        """One line for status displays: ``permission lost: prvWriteLead missing``."""
        names = " and ".join(self.privileges)
        return f"permission lost: {names} missing"

    @property
    def fix(self) -> str:
        """What an administrator does so that the writes go again."""
        names = ", ".join(self.privileges)
        return (
            f"Grant {names} at Organization depth to the sync user's security role in Dynamics "
            f"(Settings → Security → Security Roles, the {self.entity} table's Create and "
            "Write); the next cycle notices and sends the waiting changes."
        )


def is_privilege_refusal(code: str | None) -> bool:
    """Whether a Dataverse error code says the acting user lacks a table privilege."""
    return code is not None and normalised(code) in PRIVILEGE_CODES


def missing_privileges(message: str | None, schema_name: str) -> tuple[str, ...]:
    """The privilege Dynamics named as missing (``...is missing prvWriteLead privilege...``);
    when the message names none, both write privileges of the table."""
    found = _MISSING_PRIVILEGE.search(message or "")
    if found is not None:
        return (found.group(1),)
    return (f"prvCreate{schema_name}", f"prvWrite{schema_name}")


def _wait_of(row: Row[Any, Any, Any, Any, Any, Any, Any]) -> WriteWait:
    entity, reason, privileges, code, message, since, checked = row
    return WriteWait(
        str(entity),
        str(reason),
        tuple(str(privileges).split()),
        None if code is None else str(code),
        str(message),
        since,
        checked,
    )


def _unread(conn: Connection, kind: str, entity: str) -> bool:
    """Whether a notification of ``kind`` about ``entity`` is still unread."""
    found = conn.execute(
        select(notifications.c.id)
        .where(
            notifications.c.kind == kind,
            notifications.c.dedupe_key.like(f"{kind}:{entity}:%"),
            notifications.c.read_at.is_(None),
        )
        .limit(1)
    ).first()
    return found is not None


def read_waits(conn: Connection) -> dict[str, WriteWait]:
    """Every entity whose writes wait, by entity."""
    rows = conn.execute(
        select(
            write_waits.c.entity,
            write_waits.c.reason,
            write_waits.c.privileges,
            write_waits.c.error_code,
            write_waits.c.message,
            write_waits.c.since,
            write_waits.c.checked_at,
        ).order_by(write_waits.c.entity)
    ).all()
    return {str(row[0]): _wait_of(row) for row in rows}


def start_wait(
    conn: Connection,
    entity: str,
    privileges: tuple[str, ...],
    code: str | None,
    message: str,
) -> bool:
    """Hold back ``entity``'s writes (in the caller's transaction); raise the one critical
    notification when the wait is new, unless the last one about the entity is still unread (a
    privilege that comes and goes raises no stream of alarms). A privilege not yet named joins
    an existing wait. Returns whether the wait is new."""
    now = now_utc()
    existing = read_waits(conn).get(entity)
    if existing is not None:
        added = tuple(p for p in privileges if p not in existing.privileges)
        if added:
            conn.execute(
                update(write_waits)
                .where(write_waits.c.entity == entity)
                .values(privileges=" ".join((*existing.privileges, *added)))
            )
        return False
    conn.execute(
        insert(write_waits).values(
            entity=entity,
            reason=PERMISSION_LOST,
            privileges=" ".join(privileges),
            error_code=code,
            message=message,
            since=now,
            checked_at=now,
        )
    )
    wait = WriteWait(entity, PERMISSION_LOST, privileges, code, message, now, now)
    if _unread(conn, PERMISSION_LOST, entity):
        return True  # the admins have not read the last one yet: no second alarm
    notify(
        conn,
        severity="critical",
        kind=PERMISSION_LOST,
        title=f"Permission lost: changes to {entity} records wait",
        message=(
            f"Dynamics refused to let the sync user write {entity} records: "
            f"{' and '.join(privileges)} missing ({code or 'no code'}: {message}). crmsync "
            f"stopped writing {entity} records; their changes wait in the outbox and nothing "
            f"is lost, and reads from Dynamics go on. {wait.fix}"
        ),
        dedupe_key=f"{PERMISSION_LOST}:{entity}:{now.isoformat()}",
    )
    return True


def end_wait(conn: Connection, wait: WriteWait) -> None:
    """The privileges are back: let ``wait.entity``'s writes go, and say so."""
    conn.execute(delete(write_waits).where(write_waits.c.entity == wait.entity))
    if _unread(conn, PERMISSION_RESTORED, wait.entity):
        return
    notify(
        conn,
        severity="info",
        kind=PERMISSION_RESTORED,
        title=f"Permission back: changes to {wait.entity} records go again",
        message=(
            f"The sync user holds {' and '.join(wait.privileges)} again; the {wait.entity} "
            "changes that waited are being sent to Dynamics."
        ),
        dedupe_key=f"{PERMISSION_RESTORED}:{wait.entity}:{wait.since.isoformat()}",
    )


def check_waits(engine: Engine, client: DynamicsClient) -> dict[str, WriteWait]:
    """Ask Dynamics once whether the privileges the waiting entities lack are held again;
    end the waits whose privileges are back. Returns the waits still in force (no request
    at all when nothing waits). When Dynamics cannot say, everything keeps waiting."""
    with engine.connect() as conn:
        waits = read_waits(conn)
    if not waits:
        return {}
    try:
        held = client.user_privileges()
    except CrmsyncError:
        return waits
    # Any depth counts: privileges inherited from a team's roles are listed at Basic depth
    # whatever their real depth, and a write that is still refused starts the wait again.
    back = [wait for wait in waits.values() if all(held.has(p) for p in wait.privileges)]
    with engine.begin() as conn:
        for wait in back:
            end_wait(conn, wait)
        conn.execute(
            update(write_waits)
            .where(write_waits.c.entity.in_(list(waits)))
            .values(checked_at=now_utc())
        )
    return {entity: wait for entity, wait in waits.items() if wait not in back}
