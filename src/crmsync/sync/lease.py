"""One sync cycle at a time per database, even across processes: a lease row with an expiry.

The lease is a row of ``sync_lease``. Taking it is one conditional ``UPDATE`` (free, expired, or
already ours) or, when no row exists yet, an ``INSERT`` that the primary key makes exclusive;
so two processes can never both hold it. A holder renews it while it works; a holder that
crashed simply stops renewing and its lease expires after ``lease_seconds``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from crmsync.errors import LeaseHeldError
from crmsync.store.tables import now_utc, sync_lease

CYCLE_LEASE = "sync_cycle"


def new_holder_id() -> str:
    """A name for this process's claim: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SyncLease:
    """The database-wide cycle lease held by ``holder`` for ``seconds`` at a time."""

    def __init__(
        self,
        engine: Engine,
        *,
        seconds: float = 300.0,
        holder: str | None = None,
        name: str = CYCLE_LEASE,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._engine = engine
        self._seconds = seconds
        self.holder = holder or new_holder_id()
        self._name = name
        self._clock = clock

    def try_acquire(self) -> bool:
        """Take (or renew) the lease; ``False`` when another live holder has it."""
        now = self._clock()
        expires = now + timedelta(seconds=self._seconds)
        with self._engine.begin() as conn:
            taken = conn.execute(
                update(sync_lease)
                .where(
                    sync_lease.c.name == self._name,
                    or_(sync_lease.c.expires_at <= now, sync_lease.c.holder == self.holder),
                )
                .values(holder=self.holder, acquired_at=now, expires_at=expires)
            ).rowcount
            if taken:
                return True
            exists = conn.execute(
                select(sync_lease.c.name).where(sync_lease.c.name == self._name)
            ).first()
            if exists is not None:
                return False
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(sync_lease).values(
                        name=self._name, holder=self.holder, acquired_at=now, expires_at=expires
                    )
                )
        except IntegrityError:
            return False
        return True

    def renew(self) -> None:
        """Extend the lease; raises :class:`LeaseHeldError` if it was lost meanwhile."""
        now = self._clock()
        with self._engine.begin() as conn:
            kept = conn.execute(
                update(sync_lease)
                .where(sync_lease.c.name == self._name, sync_lease.c.holder == self.holder)
                .values(expires_at=now + timedelta(seconds=self._seconds))
            ).rowcount
        if not kept:
            raise LeaseHeldError("the sync lease was taken over by another process")

    def release(self) -> None:
        """Give the lease up (only if still ours)."""
        with self._engine.begin() as conn:
            conn.execute(
                delete(sync_lease).where(
                    sync_lease.c.name == self._name, sync_lease.c.holder == self.holder
                )
            )

    def current_holder(self) -> tuple[str, datetime] | None:
        """Who holds the lease and until when, or ``None`` when it is free."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(sync_lease.c.holder, sync_lease.c.expires_at).where(
                    sync_lease.c.name == self._name
                )
            ).first()
        if row is None or row[1] <= self._clock():
            return None
        return str(row[0]), row[1]

    @contextmanager
    def held(self) -> Iterator[SyncLease]:
        """Hold the lease for a block; raises :class:`LeaseHeldError` when it is taken."""
        if not self.try_acquire():
            holder = self.current_holder()
            who = f" by {holder[0]} until {holder[1]:%H:%M:%S} UTC" if holder else ""
            raise LeaseHeldError(f"another sync cycle is running on this database{who}")
        try:
            yield self
        finally:
            self.release()
