"""The work ``crmsync serve`` does beside answering requests: the background sync loop and the
campaign runner, each in its own thread, started and stopped with the application (lifespan).

Every serve process runs the loop, but each cycle takes the database-wide lease
(:mod:`crmsync.sync.lease`): on one shared database exactly one process runs cycles at a time,
and when that process dies its lease expires and another one takes over. The connection is the
one in effect (:mod:`crmsync.sync.connection`): when an admin changes it on the Setup page, the
next cycle uses the new one; a sync stopped by a fatal error starts again once it changes.
Without a configured Dynamics org there is nothing to sync; the campaign runner still runs,
and its Microsoft steps wait for a cycle.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack

from sqlalchemy import Engine

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.errors import CrmsyncError, FatalError, SecretKeyError
from crmsync.marketing.campaigns.runner import CampaignRunner
from crmsync.settings import DynamicsSettings, Settings
from crmsync.sync.campaign_push import campaign_runner, start_campaign_runner
from crmsync.sync.connection import connection_for
from crmsync.sync.reports import CycleReport
from crmsync.sync.runner import SyncRunner

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 30.0


def dynamics_configured(settings: DynamicsSettings) -> bool:
    """Whether the connection names a Dynamics org to sync with."""
    return bool(settings.url.strip())


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
        self._connected: DynamicsSettings | None = None

    @property
    def syncing(self) -> bool:
        """Whether this process's sync loop is running."""
        return self._sync_thread is not None and self._sync_thread.is_alive()

    def start(self) -> None:
        """Start the campaign runner and the sync loop, which syncs while a Dynamics org is
        configured (in the file, or saved on the Setup page)."""
        try:
            settings: DynamicsSettings | None = connection_for(self._engine, self._settings)
        except SecretKeyError as exc:  # the pages still serve, and say it on Setup
            logger.error("the sync waits: %s", exc.message)
            settings = None
        if settings is not None and dynamics_configured(settings):
            client = self._connect(settings)
            self._campaigns = start_campaign_runner(self._engine, client, self._settings.sync)
        else:
            logger.info("no Dynamics org configured: campaigns run, the sync waits for one")
            self._campaigns = campaign_runner(self._engine)
        self._campaigns.start()
        self._sync_thread = threading.Thread(
            target=self._sync_loop, name="crmsync-sync", daemon=True
        )
        self._sync_thread.start()

    def _connect(self, settings: DynamicsSettings) -> DynamicsClient:
        """A client of ``settings``, used by the sync from its next cycle. Every client made is
        closed on stop (the campaign runner may still hold the first one)."""
        client: DynamicsClient = self._resources.enter_context(build_client(settings))
        if self.sync_runner is None:
            self.sync_runner = SyncRunner(
                self._engine, client, self._settings.sync, smtp=self._settings.smtp
            )
        else:
            self.sync_runner.use_client(client)
        self._connected = settings
        return client

    def _follow_connection(self) -> None:
        """Between cycles: switch to the connection in effect when an admin changed it."""
        settings = connection_for(self._engine, self._settings)
        if settings != self._connected and dynamics_configured(settings):
            logger.info("the Dynamics connection changed: the next cycle uses the new one")
            self._connect(settings)

    def _sync_loop(self) -> None:
        pause = self._settings.sync.pause_seconds
        last_idle = ""
        last_fatal = ""  # said once, not at every pause while it lasts
        stopped_on: DynamicsSettings | None = None

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
                self._follow_connection()
                runner = self.sync_runner
                if runner is None or self._connected == stopped_on:
                    self._stop.wait(pause)  # no org yet, or stopped until the connection changes
                    continue
                stopped_on = None
                last_fatal = ""
                runner.run(
                    self._stop,
                    on_cycle=on_cycle,
                    on_idle=on_idle,
                    before_cycle=self._follow_connection,
                )
            except FatalError as exc:
                # The runner has raised a critical notification; an admin must act.
                if exc.message != last_fatal:
                    logger.error(
                        "background sync stopped: %s; it starts again when the connection changes",
                        exc.message,
                    )
                last_fatal = exc.message
                stopped_on = self._connected
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
