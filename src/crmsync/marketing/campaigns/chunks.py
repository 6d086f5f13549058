"""Batch campaigns in chunks: many persons through a flow in one transaction.

A batch campaign run queues one event per person; taking each through the flow in
transactions of its own costs a few commits per person. When every step of the flow has a
chunk form (:data:`~crmsync.marketing.campaigns.steps.base.ChunkStepFunction`) and no step
has per-person choices, :class:`ChunkRunner` takes a whole chunk of claimed events through
the flow at once: qualification, each step's writes (activity rows with the campaign id,
outbox entries, ...), a result row per person per step, and the events marked processed,
**all in one transaction**. Either all of it commits or none of it does, so the exactly-once
rules of the one-by-one path hold unchanged: a result row is unique per (event, step), a
crash before the commit leaves the events to be claimed again, and a runner racing on the
same events fails on the unique key; the chunk is then rolled back and the runner takes its
events one by one, where each step already done is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from crmsync.marketing.campaigns.choices import CHOICE_KEYS
from crmsync.marketing.campaigns.events import ClaimedEvent, FlowCampaign
from crmsync.marketing.campaigns.qualification import qualify_chunk
from crmsync.marketing.campaigns.steps.base import ChunkContext, ChunkStepFunction, StepOutcome
from crmsync.marketing.campaigns.triggers import running_campaign
from crmsync.marketing.smartlists import SmartListQuery
from crmsync.store.inserts import chunks
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import campaign_events, campaign_results

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChunkDone:
    """What a committed chunk left to do: the (event, step index) pairs whose step asked for
    the person's Dynamics create to be sent."""

    pushes: tuple[tuple[ClaimedEvent, int], ...]


class ChunkRunner:
    """Takes chunks of one batch campaign's events through its flow, one transaction each."""

    def __init__(
        self,
        engine: Engine,
        smart_lists: SmartListQuery,
        steps: Mapping[str, ChunkStepFunction],
    ) -> None:
        self._engine = engine
        self._smart_lists = smart_lists
        self._steps = dict(steps)

    def handles(self, campaign: FlowCampaign) -> bool:
        """Whether ``campaign``'s events can go through in chunks: a batch campaign whose
        every step has a chunk form and no per-person choices."""
        return (
            campaign.kind == "batch"
            and bool(campaign.flow)
            and all(
                str(step.get("type")) in self._steps and not CHOICE_KEYS & step.keys()
                for step in campaign.flow
            )
        )

    def run(self, campaign: FlowCampaign, events: Sequence[ClaimedEvent]) -> ChunkDone | None:
        """Take ``events`` (all of ``campaign``, one per person, none begun) through the flow
        in one transaction. ``None``: nothing was committed (a race on the unique keys, or a
        step that failed unexpectedly); the caller takes these events one by one."""
        tokens = _tokens(events[0]) if events else {}
        if any(_tokens(event) != tokens for event in events):
            return None
        try:
            with self._engine.begin() as conn, running_campaign(campaign.id):
                take_write_lock(conn)
                ids = [event.id for event in events]
                for part in chunks(ids):
                    begun = conn.execute(
                        select(campaign_results.c.id).where(campaign_results.c.event_id.in_(part))
                    ).first()
                    if begun is not None:
                        return None  # a flow already under way goes on one step at a time
                admitted = qualify_chunk(conn, self._smart_lists, campaign, events)
                pushes: list[tuple[ClaimedEvent, int]] = []
                for index, step in enumerate(campaign.flow, start=1):
                    if not admitted:
                        break
                    kind = str(step.get("type"))
                    params = {k: v for k, v in step.items() if k != "type"}
                    context = ChunkContext(
                        conn,
                        campaign.id,
                        campaign.name,
                        campaign.kind,
                        tuple(event.person_id for event in admitted),
                        params,
                        tokens,
                    )
                    outcomes = self._steps[kind](context)
                    missing = StepOutcome("skipped", "the person no longer exists", stop=True)
                    now = datetime.now(UTC)
                    rows: list[dict[str, Any]] = []
                    going_on: list[ClaimedEvent] = []
                    for event in admitted:
                        outcome = outcomes.get(event.person_id, missing)
                        rows.append(
                            {
                                "event_id": event.id,
                                "campaign_id": campaign.id,
                                "person_id": event.person_id,
                                "step_index": index,
                                "step_type": kind,
                                "status": outcome.status,
                                "message": outcome.message[:2000],
                                "created_at": now,
                            }
                        )
                        if outcome.push:
                            pushes.append((event, index))
                        if not outcome.stop:
                            going_on.append(event)
                    conn.execute(insert(campaign_results), rows)
                    admitted = going_on
                finished = datetime.now(UTC)
                for part in chunks(ids):
                    conn.execute(
                        update(campaign_events)
                        .where(campaign_events.c.id.in_(part))
                        .values(processed_at=finished)
                    )
        except IntegrityError:
            log.info("campaign %s: a chunk raced another runner; going one by one", campaign.id)
            return None
        except Exception:  # a defect: the one-by-one path records it per person
            log.exception("campaign %s: a chunk failed; going one by one", campaign.id)
            return None
        return ChunkDone(tuple(pushes))


def _tokens(event: ClaimedEvent) -> dict[str, str]:
    return {str(k): str(v) for k, v in (event.details.get("tokens") or {}).items()}
