"""Real time for Sync Person to Microsoft (B32, B48): push a queued create now.

``sync person`` alone queues the create and waits for the next cycle (up to the cycle pause).
A campaign's step instead calls :class:`ImmediatePush`, which sends the persons' outbox
entries through the engine's own push path (:class:`~crmsync.sync.push.OutboxPusher`)
**under the sync lease**,
so it never runs beside a cycle's push, and every create still carries the id stored first
(B33). When a cycle holds the lease, it waits briefly for that cycle to send the person (or to
finish and free the lease); when sync is disabled it sends nothing (B21): the create waits in
the outbox as any other change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine, select

from crmsync.dynamics.client import DynamicsClient
from crmsync.marketing.campaigns.pushes import PushFunction
from crmsync.marketing.campaigns.runner import CampaignRunner
from crmsync.settings import SyncSettings
from crmsync.store.inserts import CHUNK
from crmsync.store.key_values import get_sync_enabled
from crmsync.store.tables import sync_outbox
from crmsync.sync.campaign_first import SyncFirst
from crmsync.sync.campaign_steps import CHUNK_STEPS, all_steps
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.lease import SyncLease
from crmsync.sync.push import OutboxPusher, PushCounts


class ImmediatePush:
    """Sends queued person creates to Dynamics right away, under the sync lease."""

    def __init__(
        self,
        engine: Engine,
        client: DynamicsClient,
        *,
        duplicate_detection: bool = False,
        wait_seconds: float = 10.0,
        lease_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._client = client
        self._duplicate_detection = duplicate_detection
        self._wait_seconds = wait_seconds
        # its own holder: the cycle lease of this process is not ours to share
        self._lease = SyncLease(engine, seconds=lease_seconds)
        self._mappings = SyncCycle(engine, client)  # only for its mappings (schemas cached)
        self._clock = clock
        self.last: PushCounts | None = None

    def _queued(self, person_ids: Sequence[int]) -> bool:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(sync_outbox.c.id).where(sync_outbox.c.person_id.in_(list(person_ids)))
            ).first()
        return found is not None

    def __call__(self, person_ids: Sequence[int]) -> None:
        """Push the persons' entries now (only theirs: a batch campaign's group of persons
        then goes out in exactly the ``$batch`` requests it needs; other changes wait for
        the cycle); return when they were sent (here or by a cycle), or after
        ``wait_seconds`` (the next cycle then sends them)."""
        with self._engine.connect() as conn:
            if not get_sync_enabled(conn):
                return
        deadline = self._clock() + self._wait_seconds
        while True:
            if self._lease.try_acquire():
                try:
                    self.last = OutboxPusher(
                        self._engine,
                        self._client,
                        self._mappings.mappings(),
                        duplicate_detection=self._duplicate_detection,
                        renew=self._lease.renew,
                    ).push(person_ids if len(person_ids) <= CHUNK else None)
                finally:
                    self._lease.release()
                return
            if not self._queued(person_ids) or self._clock() > deadline:
                return
            time.sleep(0.02)


def start_campaign_runner(
    engine: Engine, client: DynamicsClient, settings: SyncSettings
) -> CampaignRunner:
    """A campaign runner whose Sync Person to Microsoft steps reach Dynamics at once, already
    running in a background thread; call ``stop()`` on it when the process stops."""
    push = ImmediatePush(
        engine,
        client,
        duplicate_detection=settings.duplicate_detection,
        lease_seconds=settings.lease_seconds,
    )
    runner = campaign_runner(engine, push=push, client=client)
    runner.start()
    return runner


def campaign_runner(
    engine: Engine,
    *,
    push: PushFunction | None = None,
    claim_seconds: float = 60.0,
    client: DynamicsClient | None = None,
) -> CampaignRunner:
    """A campaign runner with every flow step, Microsoft steps included (``push``: see
    :class:`ImmediatePush`; without it creates wait for the next cycle). With ``client`` it
    also runs the steps that write to Dynamics themselves (Change Owner, Create Task, Add to
    / Remove from Microsoft Campaign), syncing a person first where they need a record."""
    return CampaignRunner(
        engine,
        push=push,
        steps=all_steps(client),
        chunk_steps=CHUNK_STEPS,
        prepare=SyncFirst(engine, push) if client is not None else None,
        claim_seconds=claim_seconds,
    )
