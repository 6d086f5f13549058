"""Running the sync: one cycle now, or cycle–pause–repeat while enabled (B15, B21, B44).

Quick sync jobs (B12) run in the pauses between cycles, a page at a time, for at most the
pause: cycles keep their rhythm and live changes keep flowing while a quick sync runs.

Every cycle holds the database-wide lease (:mod:`crmsync.sync.lease`), so two processes never
run cycles at the same time. While sync is disabled the loop exchanges nothing, and nothing is
lost: marketing changes wait in the outbox and Dynamics changes in change tracking (B21).
Transient trouble (Dynamics unreachable, throttled beyond the client's retries, the lease held
elsewhere) is reported and the loop carries on after the pause; a fatal error stops it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from crmsync.dynamics.client import DynamicsClient
from crmsync.errors import FatalError, RetryLaterError, SyncInterruptedError
from crmsync.settings import SmtpSettings, SyncSettings
from crmsync.store.audit import record_audit
from crmsync.store.key_values import get_sync_enabled, set_sync_enabled
from crmsync.store.tables import now_utc
from crmsync.sync.cycle import DEFAULT_ENTITIES, SyncCycle
from crmsync.sync.history import notify
from crmsync.sync.lease import SyncLease
from crmsync.sync.mailer import deliver, raise_failure_digest
from crmsync.sync.quick_sync import QuickSync
from crmsync.sync.reports import CycleReport, Progress


def set_enabled(engine: Engine, enabled: bool, *, actor: str = "cli") -> None:
    """Enable or disable the background sync, recorded in the audit trail (B44)."""
    with engine.begin() as conn:
        set_sync_enabled(conn, enabled)
        action = "sync_enabled" if enabled else "sync_disabled"
        record_audit(conn, actor, action, {"enabled": enabled})


def is_enabled(engine: Engine) -> bool:
    """Whether the background sync is enabled."""
    with engine.connect() as conn:
        return get_sync_enabled(conn)


class SyncRunner:
    """Runs cycles for one database under the lease; ``settings`` give pause and lease time.

    When ``interrupt`` is set (Ctrl-C), the cycle stops after the page or push round in hand
    with :class:`SyncInterruptedError`, and the lease is released on the way out.
    """

    def __init__(
        self,
        engine: Engine,
        client: DynamicsClient,
        settings: SyncSettings,
        *,
        progress: Callable[[Progress], None] | None = None,
        entities: tuple[str, ...] = DEFAULT_ENTITIES,
        smtp: SmtpSettings | None = None,
        interrupt: threading.Event | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._smtp = smtp  # e-mail notifications from the background sync (B41)
        self._interrupt = interrupt
        self._entities = entities
        self._progress = progress
        self.lease = SyncLease(engine, seconds=settings.lease_seconds)
        self.cycle = self._cycle_of(client)
        self.quick_sync = QuickSync(engine, client)

    def _cycle_of(self, client: DynamicsClient) -> SyncCycle:
        return SyncCycle(
            self._engine,
            client,
            entities=self._entities,
            progress=self._progress,
            renew=self._between_steps,
            duplicate_detection=self._settings.duplicate_detection,
        )

    def use_client(self, client: DynamicsClient) -> None:
        """Run the next cycles and quick syncs with ``client`` (a changed connection); call
        between cycles."""
        self.cycle = self._cycle_of(client)
        self.quick_sync = QuickSync(self._engine, client)

    def _between_steps(self) -> None:
        """Called by the cycle after each committed page and push round: stop there when
        interrupted, else renew the lease (which also notices a takeover)."""
        if self._interrupt is not None and self._interrupt.is_set():
            raise SyncInterruptedError(
                "interrupted: the work in hand was finished and committed; "
                "the next run continues from there"
            )
        self.lease.renew()

    def once(self) -> CycleReport:
        """Run one whole cycle now (B15), then fill the fields waiting for a quick sync (B12);
        raises :class:`LeaseHeldError` if a cycle is running."""
        report = self._cycle()
        self._quick_sync(None, self._interrupt)
        return report

    def _cycle(self) -> CycleReport:
        with self.lease.held():
            return self.cycle.run()

    def _quick_sync(self, budget_seconds: float | None, stop: threading.Event | None) -> None:
        """B12: quick sync pages beside the cycles, for at most ``budget_seconds`` (at least
        one page when a job waits). Dynamics being unavailable only postpones them."""
        with contextlib.suppress(RetryLaterError):  # the job keeps its position for next turn
            self.quick_sync.run(budget_seconds=budget_seconds, stop=stop)

    def _stopped(self, exc: FatalError) -> None:
        """B41: a fatal error stops the background sync; say so where admins look."""
        with self._engine.begin() as conn:
            notify(
                conn,
                severity="critical",
                kind="sync_stopped",
                title="Dynamics sync stopped",
                message=f"The background sync stopped: {exc.message}",
                dedupe_key=f"sync_stopped:{now_utc():%Y-%m-%dT%H}:{type(exc).__name__}",
            )

    def run(
        self,
        stop: threading.Event,
        *,
        max_cycles: int | None = None,
        on_cycle: Callable[[CycleReport], None] | None = None,
        on_idle: Callable[[str], None] | None = None,
        before_cycle: Callable[[], None] | None = None,
    ) -> int:
        """Cycle, pause, repeat until ``stop`` is set (or ``max_cycles`` ran); returns cycles run.

        While disabled it only waits (B21); transient failures are reported to ``on_idle`` and
        retried after the pause. ``before_cycle`` runs at the start of every turn (the serve
        process uses it to pick up a changed Dynamics connection).
        """
        cycles = 0
        while not stop.is_set():
            if before_cycle is not None:
                before_cycle()
            if not is_enabled(self._engine):
                if on_idle is not None:
                    on_idle("sync is disabled; waiting (crmsync sync enable)")
            else:
                try:
                    report = self._cycle()
                except FatalError as exc:
                    self._stopped(exc)
                    self._notify_by_mail()
                    raise
                except RetryLaterError as exc:
                    if on_idle is not None:
                        on_idle(exc.message)
                else:
                    cycles += 1
                    if on_cycle is not None:
                        on_cycle(report)
            self._notify_by_mail()
            if max_cycles is not None and cycles >= max_cycles:
                break
            self._pause(stop)
        return cycles

    def _pause(self, stop: threading.Event) -> None:
        """The pause between cycles: quick sync pages while it lasts (B12), then wait out
        the rest. Cycles keep their rhythm; a quick sync only uses the time between them."""
        pause = self._settings.pause_seconds
        started = time.monotonic()
        if is_enabled(self._engine):
            self._quick_sync(pause, stop)
        stop.wait(max(pause - (time.monotonic() - started), 0.0))

    def _notify_by_mail(self) -> None:
        """B41: today's failure digest when records are failing (in-app), then, when SMTP is
        configured, e-mail whatever was raised since the last delivery."""
        with self._engine.begin() as conn:
            raise_failure_digest(conn)
        if self._smtp is not None:
            deliver(self._engine, self._smtp)
