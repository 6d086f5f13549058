"""The campaign runner: claims campaign events and takes each person through the flow.

Exactly once, across crashes and processes:

* an event is **claimed** by one runner with a row update (``SELECT ... FOR UPDATE SKIP
  LOCKED`` on PostgreSQL; SQLite has one writer at a time) for ``claim_seconds``; a runner that
  dies leaves its claim to expire and another runner takes the event over;
* each step runs in **its own transaction together with its result row**, unique per (event,
  step): a step whose transaction committed is never run again, and a second runner that
  raced to it fails on the unique key and rolls its copy back;
* *Sync Person to Microsoft* goes through the engine's create path (a client-chosen record id
  stored first), so even the Dynamics side is created once.

A trigger fires within milliseconds: the background thread (:meth:`CampaignRunner.start`)
polls the events table every ``poll_seconds`` (a cheap indexed query) and can be woken at once
with :meth:`CampaignRunner.wake`.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from crmsync.errors import CrmsyncError, RetryLaterError
from crmsync.marketing.campaigns.choices import resolve_params
from crmsync.marketing.campaigns.chunks import ChunkRunner
from crmsync.marketing.campaigns.events import ClaimedEvent, FlowCampaign
from crmsync.marketing.campaigns.pushes import PendingPushes, PushFunction
from crmsync.marketing.campaigns.qualification import qualify
from crmsync.marketing.campaigns.schedules import CampaignSchedules
from crmsync.marketing.campaigns.steps import (
    MARKETING_STEPS,
    StepContext,
    StepFunction,
    StepOutcome,
)
from crmsync.marketing.campaigns.steps.base import ChunkStepFunction
from crmsync.marketing.campaigns.triggers import running_campaign
from crmsync.marketing.smartlists import SmartList, SmartListQuery
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import (
    campaign_events,
    campaign_results,
    campaigns,
)

log = logging.getLogger(__name__)

PrepareFunction = Callable[[str, Mapping[str, Any], int], None]
"""Runs before a step that has no result yet, outside its transaction (step type, its
parameters, person id): the sync layer syncs a person first there (R80, R82)."""


def _now() -> datetime:
    return datetime.now(UTC)


def runner_id() -> str:
    """A name for this runner's claims: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class CampaignRunner:
    """Runs the flows of pending campaign events on one database.

    ``steps`` maps step types to functions (default: the marketing-only steps; the sync layer
    adds the Microsoft ones, :func:`crmsync.sync.campaign_push.campaign_runner`); ``push``
    sends a person's queued Dynamics create at once. With ``chunk_steps`` (step types to
    their chunk forms) a batch campaign whose every step has one goes through ``chunk_size``
    persons per transaction (:mod:`crmsync.marketing.campaigns.chunks`)."""

    def __init__(
        self,
        engine: Engine,
        *,
        push: PushFunction | None = None,
        steps: Mapping[str, StepFunction] | None = None,
        prepare: PrepareFunction | None = None,
        chunk_steps: Mapping[str, ChunkStepFunction] | None = None,
        holder: str | None = None,
        claim_seconds: float = 60.0,
        batch_size: int = 50,
        chunk_size: int = 500,
        poll_seconds: float = 0.05,
    ) -> None:
        self._engine = engine
        self._push = push
        self._steps = dict(steps if steps is not None else MARKETING_STEPS)
        self._prepare = prepare
        self.holder = holder or runner_id()
        self._claim_seconds = claim_seconds
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._smart_lists = SmartListQuery(engine)
        self._schedules = CampaignSchedules(engine)
        self._pushes = PendingPushes(engine, push)
        self._chunks = ChunkRunner(engine, self._smart_lists, chunk_steps) if chunk_steps else None
        self._chunk_size = chunk_size
        self._chunk_campaigns: dict[int, FlowCampaign | None] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- the background thread --------------------------------------------------------------

    def start(self) -> None:
        """Run pending events in a background thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="crmsync-campaigns", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread after the event in hand."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Look for new events now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                handled = self.run_pending()
            except Exception:  # keep the thread alive; the events stay pending
                log.exception("campaign runner: processing events failed; retrying")
                handled = 0
            if not handled:
                self._wake.wait(self._poll_seconds)
                self._wake.clear()

    # ---- claiming ---------------------------------------------------------------------------

    def claim(self, limit: int | None = None) -> list[ClaimedEvent]:
        """Claim up to ``limit`` pending events no live runner holds, oldest first."""
        now = _now()
        size = limit or self._batch_size
        free = and_(
            campaign_events.c.processed_at.is_(None),
            or_(
                campaign_events.c.claimed_until.is_(None),
                campaign_events.c.claimed_until < now,
            ),
            or_(campaign_events.c.run_after.is_(None), campaign_events.c.run_after <= now),
        )
        with self._engine.connect() as conn:  # idle polls read only: no write lock taken
            waiting = conn.execute(select(campaign_events.c.id).where(free).limit(1)).first()
        if waiting is None:
            return []
        with self._engine.begin() as conn:
            take_write_lock(conn)
            chosen = (
                select(campaign_events.c.id)
                .where(free)
                .order_by(campaign_events.c.id)
                .limit(size)
                .with_for_update(skip_locked=True)
            )
            ids = [int(i) for i in conn.execute(chosen).scalars()]
            if not ids:
                return []
            conn.execute(
                update(campaign_events)
                .where(campaign_events.c.id.in_(ids), free)
                .values(
                    claimed_by=self.holder,
                    claimed_until=now + timedelta(seconds=self._claim_seconds),
                )
            )
            rows = conn.execute(
                select(
                    campaign_events.c.id,
                    campaign_events.c.campaign_id,
                    campaign_events.c.person_id,
                    campaign_events.c.kind,
                    campaign_events.c.details,
                )
                .where(campaign_events.c.id.in_(ids), campaign_events.c.claimed_by == self.holder)
                .order_by(campaign_events.c.id)
            ).all()
        return [
            ClaimedEvent(int(r[0]), int(r[1]), int(r[2]), str(r[3]), dict(r[4] or {})) for r in rows
        ]

    def run_pending(self, max_events: int | None = None) -> int:
        """Claim and run events until none are pending (or ``max_events`` ran); returns how
        many were handled."""
        handled = 0
        self._schedules.start_due_schedules()
        while max_events is None or handled < max_events:
            events = self.claim(self._chunk_size if self._chunks is not None else None)
            if not events:
                break
            for group in self._groups(events):
                if self._stop.is_set() and self._thread is not None:
                    self._pushes.flush()
                    return handled
                if self._run_chunk(group):
                    handled += len(group)
                    continue
                for event in group:
                    try:
                        self.process(event)
                    except (RetryLaterError, OperationalError) as exc:
                        log.warning("campaign event %s left for later: %s", event.id, exc)
                        self._release(event.id)
                        self._pushes.flush()
                        return handled
                    handled += 1
        self._pushes.flush()
        return handled

    def _groups(self, events: list[ClaimedEvent]) -> list[list[ClaimedEvent]]:
        """The claimed events cut into runs that can go through as one chunk (same batch
        campaign with a chunk form, each person once); any other event is a run of one."""
        if self._chunks is None:
            return [[event] for event in events]
        campaigns_by_id: dict[int, FlowCampaign | None] = {}
        with self._engine.connect() as conn:
            for campaign_id in {event.campaign_id for event in events}:
                campaigns_by_id[campaign_id] = self._campaign(conn, campaign_id)
        groups: list[list[ClaimedEvent]] = []
        open_chunk: list[ClaimedEvent] | None = None  # the chunk being gathered
        persons_in_chunk: set[int] = set()
        for event in events:
            campaign = campaigns_by_id[event.campaign_id]
            if campaign is None or not self._chunks.handles(campaign):
                groups.append([event])
                open_chunk = None
                continue
            if (
                open_chunk is None
                or open_chunk[0].campaign_id != event.campaign_id
                or event.person_id in persons_in_chunk
            ):
                open_chunk = []
                persons_in_chunk = set()
                groups.append(open_chunk)
            open_chunk.append(event)
            persons_in_chunk.add(event.person_id)
        self._chunk_campaigns = campaigns_by_id
        return groups

    def _run_chunk(self, group: list[ClaimedEvent]) -> bool:
        """Run ``group`` as one chunk when it is one; ``False``: take it one by one."""
        if self._chunks is None or len(group) < 2:
            return False
        campaign = self._chunk_campaigns.get(group[0].campaign_id)
        if campaign is None:
            return False
        done = self._chunks.run(campaign, group)
        if done is None:
            return False
        for event, index in done.pushes:
            self._pushes.add(event, index, now=False)
        return True

    def _release(self, event_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(campaign_events)
                .where(
                    campaign_events.c.id == event_id, campaign_events.c.claimed_by == self.holder
                )
                .values(claimed_until=None, claimed_by=None)
            )

    def _finish(self, event_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(campaign_events)
                .where(campaign_events.c.id == event_id)
                .values(processed_at=_now())
            )

    # ---- one event --------------------------------------------------------------------------

    def _campaign(self, conn: Connection, campaign_id: int) -> FlowCampaign | None:
        row = (
            conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).mappings().first()
        )
        if row is None:
            return None
        return FlowCampaign(
            int(row["id"]),
            str(row["name"]),
            str(row["kind"]),
            bool(row["active"]),
            str(row["qualification"]),
            SmartList.from_dict(row["smart_list"]),
            tuple(row["flow"] or ()),
            row["qualification_days"],
        )

    def process(self, event: ClaimedEvent) -> None:
        """Take the event's person through its campaign's flow, skipping steps already done."""
        with self._engine.connect() as conn:
            campaign = self._campaign(conn, event.campaign_id)
        if campaign is None or (campaign.kind == "trigger" and not campaign.active):
            self._finish(event.id)
            return
        if not self._started(event.id) and not qualify(
            self._engine, self._smart_lists, event, campaign
        ):
            self._finish(event.id)
            return
        tokens = {str(k): str(v) for k, v in (event.details.get("tokens") or {}).items()}
        for index, step in enumerate(campaign.flow, start=1):
            outcome = self._run_step(event, campaign, index, step, tokens)
            if outcome.push:
                self._pushes.add(event, index, now=campaign.kind == "trigger")
            if outcome.wait_until is not None:
                self._release(event.id)  # runs again once the wait is over
                return
            if outcome.stop:
                break
        self._finish(event.id)

    def _started(self, event_id: int) -> bool:
        """Whether the event's flow had begun (a Wait paused it, or a runner died): it goes
        on where it stopped, not qualified again."""
        with self._engine.connect() as conn:
            found = conn.execute(
                select(campaign_results.c.id).where(campaign_results.c.event_id == event_id)
            ).first()
        return found is not None

    def _run_step(
        self,
        event: ClaimedEvent,
        campaign: FlowCampaign,
        index: int,
        step: dict[str, Any],
        tokens: dict[str, str],
    ) -> StepOutcome:
        kind = str(step.get("type"))
        params = {k: v for k, v in step.items() if k != "type"}
        if self._prepare is not None and kind in self._steps:
            self._prepare(kind, params, event.person_id)
        try:
            with self._engine.begin() as conn:
                take_write_lock(conn)
                done = conn.execute(
                    select(campaign_results.c.status, campaign_results.c.step_type).where(
                        campaign_results.c.event_id == event.id,
                        campaign_results.c.step_index == index,
                    )
                ).first()
                if done is not None:  # committed before a crash or by another runner
                    again = done[0] == "done" and kind == "sync_person_to_microsoft"
                    return StepOutcome("skipped", push=again, stop=kind == "delete_person")
                chosen = resolve_params(conn, self._smart_lists, params, event.person_id)
                if chosen is None:  # no choice matched and the default is "do nothing"
                    outcome = StepOutcome("skipped", "no choice matched (default: do nothing)")
                    self._result(conn, event, campaign, index, kind, outcome)
                    return outcome
                context = StepContext(
                    conn,
                    campaign.id,
                    campaign.name,
                    campaign.kind,
                    event.person_id,
                    event.id,
                    chosen,
                    tokens,
                )
                function = self._steps.get(kind)
                if function is None:
                    outcome = StepOutcome(
                        "failed",
                        f"step '{kind}' is not available in this process: Microsoft steps run "
                        "where the Dynamics sync runs ('crmsync sync run')",
                    )
                else:
                    with running_campaign(campaign.id):
                        outcome = function(context)
                self._result(conn, event, campaign, index, kind, outcome)
                return outcome
        except IntegrityError:
            return StepOutcome("skipped", "run by another runner")
        except CrmsyncError as exc:
            if isinstance(exc, RetryLaterError):
                raise
            outcome = StepOutcome("failed", exc.message)
        except OperationalError:
            raise  # the database is unreachable: the event stays pending
        except Exception:  # a defect must not stop the campaign for everybody else
            log.exception(
                "campaign %s step %s failed for person %s", campaign.id, index, event.person_id
            )
            outcome = StepOutcome("failed", "unexpected error (details in the server log)")
        with self._engine.begin() as conn:
            self._result(conn, event, campaign, index, kind, outcome)
        return outcome

    @staticmethod
    def _result(
        conn: Connection,
        event: ClaimedEvent,
        campaign: FlowCampaign,
        index: int,
        kind: str,
        outcome: StepOutcome,
    ) -> None:
        conn.execute(
            insert(campaign_results).values(
                event_id=event.id,
                campaign_id=campaign.id,
                person_id=event.person_id,
                step_index=index,
                step_type=kind,
                status=outcome.status,
                message=outcome.message[:2000],
                created_at=_now(),
            )
        )
