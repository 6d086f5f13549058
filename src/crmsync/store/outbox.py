"""The sync outbox (``sync_outbox``): the one place an outbox entry is written, read and
removed.

An entry says "this person changed here; send it to Dynamics" (B18). It is written in the
same transaction as the change it stands for, by :func:`enqueue`: the REST API's person
writes, the engine when a merge leaves marketing values for Dynamics, an admin's retry, and
*Sync Person to Microsoft*. The push phase reads entries (:func:`read_outbox`) and removes
exactly those it handled (:func:`delete_outbox`), so an entry queued meanwhile stays queued.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from crmsync.store.id_match import id_conditions
from crmsync.store.tables import now_utc, sync_outbox

OPERATIONS = frozenset({"create", "update", "delete"})
"""What an entry asks the push to do with the person's Dynamics record."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One captured marketing-side change waiting to be sent (B18)."""

    id: int
    person_id: int
    operation: str
    changed_fields: tuple[str, ...]
    created_at: datetime
    source: str


def enqueue(
    conn: Connection,
    person_ids: Iterable[int],
    *,
    operation: str,
    source: str,
    changed_fields: Mapping[int, Sequence[str]] | None = None,
) -> None:
    """Queue ``person_ids`` (each once, in order) for sending, in the caller's transaction.

    ``operation`` is ``create``, ``update`` or ``delete``; ``source`` names who changed the
    person (shown in the backlog); ``changed_fields`` lists, per person, the fields the change
    touched (none: the push compares every mapped field with its baseline).
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown outbox operation {operation!r}")
    fields = changed_fields or {}
    stamp = now_utc()
    rows = [
        {
            "person_id": person_id,
            "operation": operation,
            "changed_fields": list(fields.get(person_id, ())),
            "created_at": stamp,
            "source": source,
        }
        for person_id in dict.fromkeys(person_ids)
    ]
    if rows:
        conn.execute(insert(sync_outbox), rows)


def read_outbox(
    conn: Connection,
    *,
    after_id: int = 0,
    limit: int = 5000,
    person_ids: Sequence[int] | None = None,
) -> list[OutboxEntry]:
    """Up to ``limit`` outbox entries with ids above ``after_id``, oldest first; with
    ``person_ids`` (at most a few thousand), only those persons' entries."""
    query = select(sync_outbox).where(sync_outbox.c.id > after_id)
    if person_ids is not None:
        query = query.where(sync_outbox.c.person_id.in_(list(person_ids)))
    rows = conn.execute(query.order_by(sync_outbox.c.id).limit(limit)).mappings()
    return [
        OutboxEntry(
            int(row["id"]),
            int(row["person_id"]),
            str(row["operation"]),
            tuple(row["changed_fields"] or ()),
            row["created_at"],
            str(row["source"]),
        )
        for row in rows
    ]


def queued_changes(
    conn: Connection, person_ids: Sequence[int], *, after_id: int
) -> dict[int, set[str] | None]:
    """Per person among ``person_ids`` with entries above ``after_id`` (queued after what
    the push has read so far), the fields those entries name; ``None`` when one of them is
    not an update or names none (every field may have changed)."""
    found: dict[int, set[str] | None] = {}
    for matching in id_conditions(conn, sync_outbox.c.person_id, list(person_ids)):
        rows = conn.execute(
            select(
                sync_outbox.c.person_id, sync_outbox.c.operation, sync_outbox.c.changed_fields
            ).where(sync_outbox.c.id > after_id, matching)
        )
        for person_id, operation, fields in rows:
            key = int(person_id)
            known = found.get(key, set())
            if known is None or operation != "update" or not fields:
                found[key] = None
            else:
                found[key] = known | set(fields)
    return found


def outbox_size(conn: Connection) -> int:
    """How many outbox entries wait to be sent (the push's progress total, B40)."""
    return int(conn.execute(select(func.count()).select_from(sync_outbox)).scalar_one())


def delete_outbox(conn: Connection, ids: Sequence[int]) -> None:
    """Remove exactly the outbox entries that were read and handled (a newer one stays)."""
    for matching in id_conditions(conn, sync_outbox.c.id, sorted(set(ids))):
        conn.execute(delete(sync_outbox).where(matching))
