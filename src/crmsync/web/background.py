"""The work ``crmsync serve`` does beside answering requests: the background sync loop and the
campaign runner, each in its own thread, started and stopped with the application (lifespan).

Every serve process runs the loop, but each cycle takes the database-wide lease
(:mod:`crmsync.sync.lease`): on one shared database exactly one process runs cycles at a time,
and when that process dies its lease expires and another one takes over. Without a configured
Dynamics org there is nothing to sync; the campaign runner still runs, and its Microsoft steps
wait for a cycle.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack

from sqlalchemy import Engine

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.errors import CrmsyncError, FatalError
from crmsync.marketing.campaigns.runner import CampaignRunner
from crmsync.settings import Settings
from crmsync.sync.campaign_push import campaign_runner, start_campaign_runner
from crmsync.sync.reports import CycleReport
from crmsync.sync.runner import SyncRunner

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 30.0


def dynamics_configured(settings: Settings) -> bool:
    """Whether settings name a Dynamics org to sync with."""
    return bool(settings.dynamics.url.strip())


class BackgroundWork:
    """The sync loop and the campaign runner of one serve process; :meth:`start` once,
    :meth:`stop` on shutdown (it lets the cycle in hand finish, which releases the lease)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._stop = threading.Event()
        self._resources = ExitStack()
        self._sync_thread: threading.Thread | None = None
        self._campaigns: CampaignRunner | None = None
        self.sync_runner: SyncRunner | None = None

    @property
    def syncing(self) -> bool:
        """Whether this process's sync loop is running."""
        return self._sync_thread is not None and self._sync_thread.is_alive()

    def start(self) -> None:
        """Start the campaign runner and, when Dynamics is configured, the sync loop."""
        if not dynamics_configured(self._settings):
            logger.info("no Dynamics org configured: campaigns run, the sync does not")
            self._campaigns = campaign_runner(self._engine)
            self._campaigns.start()
            return
        client: DynamicsClient = self._resources.enter_context(
            build_client(self._settings.dynamics)
        )
        self.sync_runner = SyncRunner(
            self._engine, client, self._settings.sync, smtp=self._settings.smtp
        )
        self._campaigns = start_campaign_runner(self._engine, client, self._settings.sync)
        self._sync_thread = threading.Thread(
            target=self._sync_loop, name="crmsync-sync", daemon=True
        )
        self._sync_thread.start()

    def _sync_loop(self) -> None:
        runner = self.sync_runner
        assert runner is not None
        pause = self._settings.sync.pause_seconds
        last_idle = ""

        def on_cycle(report: CycleReport) -> None:
            logger.info(
                "cycle %s: %d records synced, %d failed, %.2f s",
                report.status,
                report.records_synced,
                report.push.failed,
                report.duration_seconds,
            )

        def on_idle(message: str) -> None:
            nonlocal last_idle
            if message != last_idle:
                logger.info("sync waiting: %s", message)
            last_idle = message

        while not self._stop.is_set():
            try:
                runner.run(self._stop, on_cycle=on_cycle, on_idle=on_idle)
            except FatalError as exc:
                # The runner has raised a critical notification; an admin must act.
                logger.error("background sync stopped: %s", exc.message)
                return
            except CrmsyncError as exc:
                logger.warning("background sync: %s; trying again", exc.message)
            except Exception as exc:
                logger.error("background sync: unexpected %s; trying again", type(exc).__name__)
            self._stop.wait(pause)

    def stop(self) -> None:
        """Stop both threads and close the Dynamics client."""
        self._stop.set()
        if self._campaigns is not None:
            self._campaigns.stop()
        if self._sync_thread is not None:
            self._sync_thread.join(STOP_TIMEOUT_SECONDS)
            if self._sync_thread.is_alive():
                logger.warning("the sync cycle did not finish in time; its lease will expire")
        self._resources.close()
