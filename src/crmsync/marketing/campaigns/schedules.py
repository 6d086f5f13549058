"""Schedule Campaign (spec marketo-rest §6.3): batch campaigns run at a given time.

A schedule is a row; the campaign runner starts each due schedule exactly once (the row is
marked started in the transaction that queues the campaign's persons). A **recurring**
schedule (every N days, optionally until a time) queues its next run in that same
transaction, so each occurrence is started once as well; occurrences missed while nothing was
running are not made up (the next one is the first due after now).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection

from crmsync.errors import InvalidValueError
from crmsync.marketing.campaigns.service import (
    MAX_REQUEST_TOKENS,
    CampaignRecord,
    CampaignService,
    campaign_record,
)
from crmsync.marketing.campaigns.triggers import enqueue_batch_run
from crmsync.marketing.smartlists import compile_smart_list
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import campaign_schedules, campaigns

SCHEDULE_DELAY = timedelta(minutes=5)
SCHEDULE_HORIZON = timedelta(days=730)
MAX_REPEAT_DAYS = 366


def _queue_next(conn: Connection, row: Sequence[Any], current: datetime) -> None:
    """Insert a recurring schedule's next occurrence (the first after ``current``)."""
    campaign_id, tokens, run_at, every_days, until = tuple(row)
    if not every_days:
        return
    step = timedelta(days=int(every_days))
    following = run_at + step
    while following <= current:
        following += step
    if until is not None and following > until:
        return
    conn.execute(
        campaign_schedules.insert().values(
            campaign_id=campaign_id,
            run_at=following,
            tokens=tokens,
            created_at=current,
            repeat_every_days=every_days,
            repeat_until=until,
        )
    )


class CampaignSchedules:
    """Scheduled runs of batch campaigns on one database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def schedule(
        self,
        campaign_id: int,
        *,
        run_at: datetime | None = None,
        tokens: Mapping[str, str] | None = None,
        now: datetime | None = None,
        every_days: int | None = None,
        until: datetime | None = None,
    ) -> CampaignRecord:
        """Schedule Campaign (spec marketo-rest §6.3): run a batch campaign at ``run_at``
        (default, and at the earliest, five minutes from now); more than two years ahead is
        refused with 1042, a trigger campaign with 1003. With ``every_days`` it recurs every
        so many days (until ``until``, when given)."""
        record = CampaignService(self._engine).get(campaign_id)
        if record.definition.kind != "batch":
            raise InvalidValueError("only batch campaigns can be scheduled", code="1003")
        if not record.definition.smart_list.filters:
            raise InvalidValueError(
                "a batch campaign needs at least one smart list filter", code="1003"
            )
        if tokens and len(tokens) > MAX_REQUEST_TOKENS:
            raise InvalidValueError(f"at most {MAX_REQUEST_TOKENS} tokens", code="1003")
        current = now or datetime.now(UTC)
        earliest = current + SCHEDULE_DELAY
        when = max(run_at or earliest, earliest)
        if when > current + SCHEDULE_HORIZON:
            raise InvalidValueError("Invalid runAt date: at most two years ahead", code="1042")
        if every_days is not None and not 1 <= every_days <= MAX_REPEAT_DAYS:
            raise InvalidValueError(f"a recurring run repeats every 1 to {MAX_REPEAT_DAYS} days")
        if until is not None and (every_days is None or until < when):
            raise InvalidValueError("'until' needs a recurring run and must be after its start")
        with self._engine.begin() as conn:
            conn.execute(
                campaign_schedules.insert().values(
                    campaign_id=record.id,
                    run_at=when,
                    tokens=dict(tokens or {}),
                    created_at=current,
                    repeat_every_days=every_days,
                    repeat_until=until,
                )
            )
        return record

    def start_due_schedules(self, now: datetime | None = None) -> int:
        """Start every scheduled run that is due, each exactly once (the row is marked started
        in the transaction that queues its persons); returns how many were started."""
        current = now or datetime.now(UTC)
        due = (campaign_schedules.c.started_at.is_(None)) & (campaign_schedules.c.run_at <= current)
        with self._engine.connect() as conn:
            ids = [
                int(i) for i in conn.execute(select(campaign_schedules.c.id).where(due)).scalars()
            ]
        started = 0
        for schedule_id in ids:
            with self._engine.begin() as conn:
                take_write_lock(conn)
                taken = conn.execute(
                    update(campaign_schedules)
                    .where(campaign_schedules.c.id == schedule_id, due)
                    .values(started_at=current)
                ).rowcount
                if taken != 1:
                    continue  # another runner started it
                row = conn.execute(
                    select(
                        campaign_schedules.c.campaign_id,
                        campaign_schedules.c.tokens,
                        campaign_schedules.c.run_at,
                        campaign_schedules.c.repeat_every_days,
                        campaign_schedules.c.repeat_until,
                    ).where(campaign_schedules.c.id == schedule_id)
                ).one()
                _queue_next(conn, tuple(row), current)
                record = campaign_record(
                    conn.execute(select(campaigns).where(campaigns.c.id == row[0])).mappings().one()
                )
                condition = compile_smart_list(conn, record.definition.smart_list)
                queued = enqueue_batch_run(conn, record.id, condition, row[1] or {})
                conn.execute(
                    update(campaign_schedules)
                    .where(campaign_schedules.c.id == schedule_id)
                    .values(queued=queued)
                )
                started += 1
        return started
