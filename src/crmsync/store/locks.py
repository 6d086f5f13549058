"""Transaction locks: how a read-decide-write transaction keeps other writers out.

SQLite has one writer at a time; :func:`take_write_lock` makes a transaction that writes
one from its first statement. PostgreSQL locks what a transaction reads instead: rows
(``FOR UPDATE``) or, for keys that have no row yet, :func:`lock_keys`.
"""

from __future__ import annotations

from sqlalchemy import false, text, update
from sqlalchemy.engine import Connection

from crmsync.store.tables import sync_lease


def take_write_lock(conn: Connection) -> None:
    """On SQLite, make the caller's transaction the database's writer now, before it reads.

    A SQLite transaction otherwise reads without a lock and queues for the write lock only at
    its first write, so a read-decide-write sequence (read a person, compare, update) could
    act on values another writer has just replaced. A no-op ``UPDATE`` takes the lock up
    front; other writers then wait (the busy timeout) until this transaction ends. On
    PostgreSQL this does nothing: callers lock the rows they read (``FOR UPDATE``) or their
    keys (:func:`lock_keys`).
    """
    if conn.dialect.name == "sqlite":
        conn.execute(update(sync_lease).where(false()).values(holder=sync_lease.c.holder))


def lock_keys(conn: Connection, namespace: str, keys: set[object]) -> None:
    """PostgreSQL: serialise transactions that look up the same keys (so two concurrent upserts
    of one new e-mail create one person), locking in hash order so that they never deadlock.

    The locks are transaction-level: held until the caller's transaction ends. ``namespace``
    keeps kinds of keys apart (``person:email``, ``object:company``).
    """
    conn.execute(
        text(
            "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h "
            "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS ordered"
        ),
        {"keys": [f"{namespace}:{key}" for key in keys]},
    )
