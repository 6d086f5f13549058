"""One sync cycle at a time per database, even across processes: a lease row with an expiry.

The lease is a row of ``sync_lease``. Taking it is one conditional ``UPDATE`` (free, expired, or
already ours) or, when no row exists yet, an ``INSERT`` that the primary key makes exclusive;
so two processes can never both hold it.

A holder is named ``host:pid:suffix``. While it works, a heartbeat thread renews the lease
every third of ``seconds`` (30 s by default), so a holder that vanished on another host frees
it within ``seconds``. On the holder's own host nobody waits even that long: a lease whose
process no longer exists there is taken over at once. Releasing never hangs on a busy
database: it waits a few seconds at most, and if it still cannot, the lease frees itself as
just described.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from crmsync.errors import LeaseHeldError
from crmsync.store.db import SQLITE_BUSY_TIMEOUT_MS
from crmsync.store.tables import now_utc, sync_lease

log = logging.getLogger(__name__)

CYCLE_LEASE = "sync_cycle"
RELEASE_WAIT_MS = 3000
"""How long releasing the lease waits for a busy database before leaving it to expire."""


def new_holder_id() -> str:
    """A name for this process's claim: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds the lease: the process (host and pid, when the name says) and until when."""

    holder: str
    host: str | None
    pid: int | None
    acquired_at: datetime | None
    expires_at: datetime

    def describe(self) -> str:
        """``host pid 1234 since 12:00:01 UTC (until 12:00:31 UTC)``, for people."""
        who = f"{self.host} pid {self.pid}" if self.host and self.pid else self.holder
        since = f" since {self.acquired_at:%H:%M:%S} UTC" if self.acquired_at else ""
        return f"{who}{since} (until {self.expires_at:%H:%M:%S} UTC unless renewed)"


def parse_holder(holder: str) -> tuple[str | None, int | None]:
    """The host and pid in a holder name made by :func:`new_holder_id` (``None`` otherwise)."""
    parts = holder.split(":")
    if len(parts) < 3 or not parts[-2].isdigit():
        return None, None
    host = ":".join(parts[:-2])
    return host or None, int(parts[-2])


def process_gone_here(holder: str) -> bool:
    """True when ``holder`` names a process on this host that no longer exists."""
    host, pid = parse_holder(holder)
    if host != socket.gethostname() or pid is None or pid <= 0:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists but belongs to someone else
        return False
    return False


class SyncLease:
    """The database-wide cycle lease held by ``holder`` for ``seconds`` at a time."""

    def __init__(
        self,
        engine: Engine,
        *,
        seconds: float = 30.0,
        holder: str | None = None,
        name: str = CYCLE_LEASE,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._engine = engine
        self._seconds = seconds
        self.holder = holder or new_holder_id()
        self._name = name
        self._clock = clock
        self._lost = threading.Event()

    @property
    def seconds(self) -> float:
        """How long the lease lasts unless renewed."""
        return self._seconds

    def try_acquire(self) -> bool:
        """Take (or renew) the lease; ``False`` when another live holder has it.

        A holder whose process is gone from this host counts as dead, whatever its expiry.
        """
        now = self._clock()
        expires = now + timedelta(seconds=self._seconds)
        with self._engine.begin() as conn:
            if self._take(conn, now, expires):
                return True
            row = conn.execute(
                select(sync_lease.c.holder).where(sync_lease.c.name == self._name)
            ).first()
            if row is not None:
                dead = str(row[0])
                if not process_gone_here(dead):
                    return False
                return self._take(conn, now, expires, dead_holder=dead)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(sync_lease).values(
                        name=self._name, holder=self.holder, acquired_at=now, expires_at=expires
                    )
                )
        except IntegrityError:
            return False
        self._lost.clear()
        return True

    def _take(
        self,
        conn: Connection,
        now: datetime,
        expires: datetime,
        *,
        dead_holder: str | None = None,
    ) -> bool:
        condition = (
            sync_lease.c.holder == dead_holder
            if dead_holder is not None
            else or_(sync_lease.c.expires_at <= now, sync_lease.c.holder == self.holder)
        )
        taken = conn.execute(
            update(sync_lease)
            .where(sync_lease.c.name == self._name, condition)
            .values(holder=self.holder, acquired_at=now, expires_at=expires)
        ).rowcount
        if taken:
            self._lost.clear()
        return bool(taken)

    def renew(self) -> None:
        """Extend the lease; raises :class:`LeaseHeldError` if it was lost meanwhile."""
        if self._lost.is_set():
            raise LeaseHeldError("the sync lease was taken over by another process")
        now = self._clock()
        with self._engine.begin() as conn:
            kept = conn.execute(
                update(sync_lease)
                .where(sync_lease.c.name == self._name, sync_lease.c.holder == self.holder)
                .values(expires_at=now + timedelta(seconds=self._seconds))
            ).rowcount
        if not kept:
            self._lost.set()
            raise LeaseHeldError("the sync lease was taken over by another process")

    def release(self) -> bool:
        """Give the lease up (only if still ours); ``False`` when the database was too busy
        to do it within a few seconds (the lease then frees itself, see the module doc)."""
        try:
            with self._engine.connect() as conn:
                try:
                    _short_lock_wait(conn)
                    conn.execute(
                        delete(sync_lease).where(
                            sync_lease.c.name == self._name, sync_lease.c.holder == self.holder
                        )
                    )
                    conn.commit()
                finally:
                    conn.rollback()  # nothing left to undo after a commit
                    _restore_lock_wait(conn)
        except SQLAlchemyError as exc:
            log.warning(
                "could not release the sync lease now (%s); it frees itself once this "
                "process has exited",
                getattr(exc, "orig", None) or type(exc).__name__,
            )
            return False
        return True

    def current_holder(self) -> LeaseHolder | None:
        """Who holds the lease and until when, or ``None`` when it is free (or its holder is
        a process gone from this host)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(
                    sync_lease.c.holder, sync_lease.c.acquired_at, sync_lease.c.expires_at
                ).where(sync_lease.c.name == self._name)
            ).first()
        if row is None or row[2] <= self._clock() or process_gone_here(str(row[0])):
            return None
        host, pid = parse_holder(str(row[0]))
        return LeaseHolder(str(row[0]), host, pid, row[1], row[2])

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Renew the lease every third of its length from a background thread for a block.

        A renewal that fails (a busy database) is tried again at the next beat; one that
        finds the lease taken over stops the beats, and the next :meth:`renew` of the
        holder's own work raises :class:`LeaseHeldError`.
        """
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self._seconds / 3):
                try:
                    self.renew()
                except LeaseHeldError:
                    return
                except SQLAlchemyError as exc:
                    log.warning("sync lease heartbeat failed (%s); retrying", type(exc).__name__)

        thread = threading.Thread(target=beat, name="crmsync-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    @contextmanager
    def held(self) -> Iterator[SyncLease]:
        """Hold the lease for a block, renewed by a heartbeat, released at the end however
        the block ends; raises :class:`LeaseHeldError` when another process has it."""
        if not self.try_acquire():
            current = self.current_holder()
            who = f" by {current.describe()}" if current else ""
            raise LeaseHeldError(f"another sync cycle is running on this database{who}")
        try:
            with self.heartbeat():
                yield self
        finally:
            self.release()


def _short_lock_wait(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.execute(text(f"PRAGMA busy_timeout = {RELEASE_WAIT_MS}"))
    elif conn.dialect.name == "postgresql":
        conn.execute(text(f"SET LOCAL lock_timeout = '{RELEASE_WAIT_MS}ms'"))


def _restore_lock_wait(conn: Connection) -> None:
    """Put the SQLite busy timeout back (PostgreSQL's lock timeout ended with its transaction)."""
    if conn.dialect.name == "sqlite":
        conn.execute(text(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"))
