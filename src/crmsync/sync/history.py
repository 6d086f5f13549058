"""What the engine records for people to look at: sync-history rows (cycles, collisions,
initial syncs; B40) and in-app notifications (B16, B41).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from crmsync.store.tables import notifications, now_utc, sync_history


def insert_history(conn: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    """Append sync-history rows (cycles, collisions, initial syncs)."""
    if rows:
        conn.execute(insert(sync_history), [dict(row) for row in rows])


def notify(
    conn: Connection, *, severity: str, kind: str, title: str, message: str, dedupe_key: str
) -> None:
    """Raise an in-app notification unless one with ``dedupe_key`` exists (B16, B41)."""
    exists = conn.execute(
        select(func.count())
        .select_from(notifications)
        .where(notifications.c.dedupe_key == dedupe_key)
    ).scalar_one()
    if exists:
        return
    conn.execute(
        insert(notifications).values(
            created_at=now_utc(),
            severity=severity,
            kind=kind,
            title=title,
            message=message,
            dedupe_key=dedupe_key,
        )
    )
