"""Background work that steps aside while a sync cycle runs (the quick sync, B12).

A cycle runs under the database-wide lease (:mod:`crmsync.sync.lease`), so the lease row is
the mark that a cycle is running, in this process or any other. Work that competes with the
cycle for the database's write lock and the CPU, such as a quick sync in a process of its
own, calls :meth:`CycleYield.wait` between its write transactions: while the lease is held it
waits, polling, until the cycle is done.

The wait is bounded twice over. A mark left by a cycle that died is no mark: the lease reads
as free once its holder's process is gone from this host, or once it expired without renewal
(a holder on another host that vanished). And a live cycle that runs for a long time (an
initial sync) is waited for at most ``max_wait_seconds`` in a row; the work then does one
more transaction before it waits again, so it never starves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from crmsync.sync.lease import SyncLease

MAX_WAIT_SECONDS = 15.0
"""The longest a quick sync waits in a row for a running cycle before it writes again."""
POLL_SECONDS = 0.05
"""How often the lease is read while waiting (one small read each time)."""


class CycleYield:
    """Waits while a sync cycle holds the lease on ``engine``, at most ``max_wait_seconds``
    in a row; :attr:`waited_seconds` adds up the time spent waiting."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lease = SyncLease(engine)
        self._max_wait = max_wait_seconds
        self._poll = poll_seconds
        self._clock = clock
        self.waited_seconds = 0.0

    def cycle_running(self) -> bool:
        """Whether a live holder has the cycle lease now (a dead one's mark does not count)."""
        return self._lease.current_holder() is not None

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Wait until no cycle runs, ``max_wait_seconds`` are spent, or ``stop`` is set;
        ``True`` when it waited at all."""
        if self._max_wait <= 0 or not self.cycle_running():
            return False
        started = self._clock()
        deadline = started + self._max_wait
        pause = stop if stop is not None else threading.Event()
        while self._clock() < deadline:
            if pause.wait(self._poll):
                break
            if not self.cycle_running():
                break
        self.waited_seconds += self._clock() - started
        return True
