"""Change-tracking cursors (``delta_cursors``): where the next read of each entity starts.

A stored link is either a finished read's delta link (the next cycle reads changes, B17) or
the next page of an unfinished initial read (resumed after a crash, B16). Links are stored
relative to the Web API root (:func:`~crmsync.dynamics.links.portable_link`), so a new host
name for the same org is followed by the next cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from crmsync.dynamics.links import portable_link
from crmsync.store.tables import delta_cursors, now_utc

DELTA_PHASE = "delta"
"""A stored link that is a finished read's delta link (the next cycle reads changes, B17)."""

INITIAL_PHASE = "initial"
"""A stored link that is the next page of an unfinished initial read (resumed, B16)."""


@dataclass(frozen=True, slots=True)
class StoredCursor:
    """Where the next read of an entity starts: ``link`` and which read it continues."""

    link: str
    phase: str  # DELTA_PHASE | INITIAL_PHASE

    @property
    def initial_done(self) -> bool:
        """Whether the entity's initial read has finished (a delta link is stored)."""
        return self.phase == DELTA_PHASE


def read_cursor(conn: Connection, entity: str) -> StoredCursor | None:
    """The stored link of ``entity`` (Web API root relative) with its phase, or ``None``
    before its first page."""
    row = conn.execute(
        select(delta_cursors.c.delta_link, delta_cursors.c.phase).where(
            delta_cursors.c.entity == entity
        )
    ).first()
    if row is None or row[0] is None:
        return None
    return StoredCursor(portable_link(str(row[0])), str(row[1]))


def get_cursor(conn: Connection, entity: str) -> str | None:
    """The stored delta link of ``entity``, or ``None`` before its initial sync finished."""
    cursor = read_cursor(conn, entity)
    return cursor.link if cursor is not None and cursor.initial_done else None


def set_cursor(
    conn: Connection, entity: str, delta_link: str | None, *, phase: str = DELTA_PHASE
) -> None:
    """Store (or clear, with ``None``) the link of ``entity``: a delta link, or with
    ``phase=INITIAL_PHASE`` the next page of its unfinished initial read (B16). Links are
    stored relative to the Web API root (:func:`portable_link`)."""
    if phase not in (DELTA_PHASE, INITIAL_PHASE):
        raise ValueError(f"unknown cursor phase {phase!r}")
    if delta_link is not None:
        delta_link = portable_link(delta_link)
    stamp = now_utc()
    changed = conn.execute(
        update(delta_cursors)
        .where(delta_cursors.c.entity == entity)
        .values(delta_link=delta_link, phase=phase, updated_at=stamp)
    ).rowcount
    if not changed:
        conn.execute(
            insert(delta_cursors).values(
                entity=entity, delta_link=delta_link, phase=phase, updated_at=stamp
            )
        )
