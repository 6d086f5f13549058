"""Sending the Dynamics creates that *Sync Person to Microsoft* queued, for the runner.

In a **trigger** campaign the create is sent at once, person by person (real time, B32). In a
**batch** campaign the persons' creates are gathered and sent together, in as few ``$batch``
requests as the client's batch size allows, every :data:`BATCH_PUSH_SIZE` persons and when
the runner has no more events in hand. Those gathered pushes run in one background thread,
one at a time, so the runner takes the next chunk of persons through the flow while the
previous chunk's creates are with Dynamics; :meth:`PendingPushes.flush` waits for them.
Either way, once Dynamics answered, a refused create
turns the step's result into ``failed`` with Dynamics' code and message (the activity log and
the sync errors already have it). A crash before a gathered push loses nothing: the creates
wait in the outbox and the next sync cycle sends them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import Engine, select, update

from crmsync.errors import CrmsyncError
from crmsync.marketing.campaigns.events import ClaimedEvent
from crmsync.store.tables import campaign_results, persons, sync_errors

log = logging.getLogger(__name__)

PushFunction = Callable[[Sequence[int]], None]
"""Sends the queued Dynamics creates of these persons now (see
:class:`crmsync.sync.campaign_push.ImmediatePush`)."""

BATCH_PUSH_SIZE = 1000


class PendingPushes:
    """The creates waiting to be sent, with the step results they answer."""

    def __init__(self, engine: Engine, push: PushFunction | None) -> None:
        self._engine = engine
        self._push = push
        self._pending: list[tuple[ClaimedEvent, int]] = []
        self._background: threading.Thread | None = None

    def add(self, event: ClaimedEvent, index: int, *, now: bool) -> None:
        """The step ``index`` of ``event`` queued a create: send it now, or with others (in
        the background once :data:`BATCH_PUSH_SIZE` are gathered)."""
        if self._push is None:
            return
        self._pending.append((event, index))
        if now:
            self.flush()
        elif len(self._pending) >= BATCH_PUSH_SIZE:
            self._wait_background()
            pending, self._pending = self._pending, []
            self._background = threading.Thread(
                target=self._send_logged,
                args=(pending,),
                name="crmsync-campaign-push",
                daemon=True,
            )
            self._background.start()

    def flush(self) -> None:
        """Send every gathered create and wait for the sends in the background; then the
        refusals are in the step results."""
        self._wait_background()
        if self._push is None or not self._pending:
            return
        pending, self._pending = self._pending, []
        self._send(pending)

    def _wait_background(self) -> None:
        if self._background is not None:
            background, self._background = self._background, None
            background.join()

    def _send_logged(self, pending: list[tuple[ClaimedEvent, int]]) -> None:
        try:
            self._send(pending)
        except Exception:  # in the background thread: the creates wait for the next cycle
            log.exception(
                "campaign push of %s person(s) failed; the next cycle sends it", len(pending)
            )

    def _send(self, pending: list[tuple[ClaimedEvent, int]]) -> None:
        if self._push is None:
            return
        try:
            self._push([event.person_id for event, _ in pending])
        except CrmsyncError as exc:
            log.warning("campaign push of %s person(s) deferred: %s", len(pending), exc)
            return
        with self._engine.begin() as conn:
            ids = [event.person_id for event, _ in pending]
            unsynced = {
                int(r[0])
                for r in conn.execute(
                    select(persons.c.id).where(
                        persons.c.id.in_(ids),
                        (persons.c.crmType.is_(None)) | (persons.c.crmType == ""),
                    )
                )
            }
            for event, index in pending:
                if event.person_id not in unsynced:
                    continue
                error = conn.execute(
                    select(sync_errors.c.error_code, sync_errors.c.message)
                    .where(
                        sync_errors.c.local_kind == "person",
                        sync_errors.c.local_id == event.person_id,
                        sync_errors.c.direction == "to_crm",
                        sync_errors.c.resolved_at.is_(None),
                    )
                    .order_by(sync_errors.c.id.desc())
                ).first()
                if error is None:
                    continue
                conn.execute(
                    update(campaign_results)
                    .where(
                        campaign_results.c.event_id == event.id,
                        campaign_results.c.step_index == index,
                    )
                    .values(status="failed", message=f"{error[0] or ''}: {error[1]}"[:2000])
                )
