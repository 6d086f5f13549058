"""Schedule Campaign (spec marketo-rest §6.3): batch campaigns run at a given time.

A schedule is a row; the campaign runner starts each due schedule exactly once (the row is
marked started in the transaction that queues the campaign's persons). A **recurring**
schedule (every N days, optionally until a time) queues its next run in that same
transaction, so each occurrence is started once as well; occurrences missed while nothing was
running are not made up (the next one is the first due after now).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.engine import Connection

from crmsync.errors import InvalidValueError
from crmsync.marketing.campaigns.definitions import CampaignDefinition
from crmsync.marketing.campaigns.service import (
    MAX_REQUEST_TOKENS,
    CampaignRecord,
    CampaignService,
    campaign_record,
)
from crmsync.marketing.campaigns.triggers import enqueue_batch_run
from crmsync.marketing.smartlists import compile_smart_list
from crmsync.marketing.values import format_datetime, parse_datetime
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


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def check_schedulable(definition: CampaignDefinition) -> None:
    """Refuse (1003) to schedule anything but a batch campaign with a smart-list filter."""
    if definition.kind != "batch":
        raise InvalidValueError("only batch campaigns can be scheduled", code="1003")
    if not definition.smart_list.filters:
        raise InvalidValueError(
            "a batch campaign needs at least one smart list filter", code="1003"
        )


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    """When a batch campaign runs: at ``run_at`` (``None``: as soon as allowed), and, with
    ``every_days``, again every so many days until ``until`` (when given)."""

    run_at: datetime | None = None
    every_days: int | None = None
    until: datetime | None = None

    def checked(self, now: datetime) -> ScheduledRun:
        """This run with its start moved to the earliest allowed (five minutes from now)
        when sooner; raise :class:`InvalidValueError` past two years (1042), for a
        recurrence outside 1 to 366 days, or an ``until`` without one or before the start."""
        earliest = now + SCHEDULE_DELAY
        when = max(self.run_at or earliest, earliest)
        if when > now + SCHEDULE_HORIZON:
            raise InvalidValueError("Invalid runAt date: at most two years ahead", code="1042")
        if self.every_days is not None and not 1 <= self.every_days <= MAX_REPEAT_DAYS:
            raise InvalidValueError(f"a recurring run repeats every 1 to {MAX_REPEAT_DAYS} days")
        if self.until is not None and (self.every_days is None or self.until < when):
            raise InvalidValueError("'until' needs a recurring run and must be after its start")
        return ScheduledRun(when, self.every_days, self.until)

    def as_dict(self) -> dict[str, object]:
        """The definition-file shape: ``runAt``, and ``everyDays`` / ``until`` when set."""
        shown: dict[str, object] = {}
        if self.run_at is not None:
            shown["runAt"] = format_datetime(self.run_at)
        if self.every_days is not None:
            shown["everyDays"] = self.every_days
        if self.until is not None:
            shown["until"] = format_datetime(self.until)
        return shown


def parse_schedule(raw: object) -> ScheduledRun | None:
    """Read a definition's ``schedule`` part: ``{"runAt": ..., "everyDays": N, "until":
    ...}``; ``null`` or ``{}`` means no pending run. Raise :class:`InvalidValueError`."""
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        raise InvalidValueError("schedule: must be an object with runAt, everyDays, until")
    unknown = sorted(set(raw) - {"runAt", "everyDays", "until"})
    if unknown:
        raise InvalidValueError(f"schedule: unknown part {unknown[0]!r} (runAt, everyDays, until)")
    every = raw.get("everyDays")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int)):
        raise InvalidValueError("schedule: 'everyDays' must be a whole number of days")
    return ScheduledRun(_moment(raw, "runAt"), every, _moment(raw, "until"))


def _moment(raw: Mapping[str, Any], key: str) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, datetime):  # a TOML date-time
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return parse_datetime(str(value))
    except ValueError:
        raise InvalidValueError(
            f"schedule: {key!r} must be a date-time such as 2027-01-04T08:00Z"
        ) from None


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
        check_schedulable(record.definition)
        if tokens and len(tokens) > MAX_REQUEST_TOKENS:
            raise InvalidValueError(f"at most {MAX_REQUEST_TOKENS} tokens", code="1003")
        current = now or datetime.now(UTC)
        run = ScheduledRun(run_at, every_days, until).checked(current)
        with self._engine.begin() as conn:
            conn.execute(
                campaign_schedules.insert().values(
                    campaign_id=record.id,
                    run_at=run.run_at,
                    tokens=dict(tokens or {}),
                    created_at=current,
                    repeat_every_days=run.every_days,
                    repeat_until=run.until,
                )
            )
        return record

    def pending(self, campaign_id: int) -> list[ScheduledRun]:
        """The campaign's runs not started yet, soonest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(
                    campaign_schedules.c.run_at,
                    campaign_schedules.c.repeat_every_days,
                    campaign_schedules.c.repeat_until,
                )
                .where(
                    campaign_schedules.c.campaign_id == campaign_id,
                    campaign_schedules.c.started_at.is_(None),
                )
                .order_by(campaign_schedules.c.run_at, campaign_schedules.c.id)
            ).all()
        return [ScheduledRun(_aware(r[0]), r[1], _aware(r[2])) for r in rows]

    def replace(
        self, campaign_id: int, run: ScheduledRun | None, now: datetime | None = None
    ) -> bool:
        """Make ``run`` the campaign's one pending run (``None``: no pending run), checked as
        :meth:`schedule` checks it; the runs not started yet are dropped, in the same
        transaction. Returns whether anything changed."""
        current = now or datetime.now(UTC)
        wanted = run.checked(current) if run is not None else None
        shown = [run.as_dict() for run in self.pending(campaign_id)]
        if shown == ([wanted.as_dict()] if wanted is not None else []):
            return False  # the same to the second: the form saved as it was shown
        with self._engine.begin() as conn:
            take_write_lock(conn)
            conn.execute(
                delete(campaign_schedules).where(
                    campaign_schedules.c.campaign_id == campaign_id,
                    campaign_schedules.c.started_at.is_(None),
                )
            )
            if wanted is not None:
                conn.execute(
                    campaign_schedules.insert().values(
                        campaign_id=campaign_id,
                        run_at=wanted.run_at,
                        tokens={},
                        created_at=current,
                        repeat_every_days=wanted.every_days,
                        repeat_until=wanted.until,
                    )
                )
        return True

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
