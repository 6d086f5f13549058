"""Qualification: may this person go through this campaign now?

In the smart list, and allowed by the rule: ``once`` lets each person in at most once, ever;
``every_time`` lets them in on every event; ``every_n_days`` at most once in any N days
(counted from their last run through the campaign). The membership row is written in the same
transaction, and a retried event (same event id) is let in again, so a crash between the
qualification and the flow does not lock the person out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from crmsync.marketing.campaigns.events import ClaimedEvent, FlowCampaign
from crmsync.marketing.smartlists import SmartListQuery
from crmsync.store.inserts import chunks
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import campaign_members


def _now() -> datetime:
    return datetime.now(UTC)


def qualify(
    engine: Engine, smart_lists: SmartListQuery, event: ClaimedEvent, campaign: FlowCampaign
) -> bool:
    """Whether the person is in the smart list and the qualification rule lets them in;
    records the membership. A retried event is let in again."""
    try:
        with engine.begin() as conn:
            take_write_lock(conn)
            if not smart_lists.matching(conn, campaign.smart_list, [event.person_id]):
                return False
            member = conn.execute(
                select(campaign_members.c.last_event_id, campaign_members.c.last_at).where(
                    campaign_members.c.campaign_id == campaign.id,
                    campaign_members.c.person_id == event.person_id,
                )
            ).first()
            now = _now()
            if member is None:
                conn.execute(
                    insert(campaign_members).values(
                        campaign_id=campaign.id,
                        person_id=event.person_id,
                        first_at=now,
                        last_at=now,
                        last_event_id=event.id,
                        runs=1,
                    )
                )
                return True
            if int(member[0]) == event.id:
                return True
            if campaign.qualification == "once":
                return False
            if campaign.qualification == "every_n_days":
                days = campaign.qualification_days or 1
                if member[1] is not None and member[1] > now - timedelta(days=days):
                    return False
            conn.execute(
                update(campaign_members)
                .where(
                    campaign_members.c.campaign_id == campaign.id,
                    campaign_members.c.person_id == event.person_id,
                )
                .values(last_at=now, last_event_id=event.id, runs=campaign_members.c.runs + 1)
            )
            return True
    except IntegrityError:  # another runner let this person in at the same moment
        return campaign.qualification == "every_time"


def qualify_chunk(
    conn: Connection,
    smart_lists: SmartListQuery,
    campaign: FlowCampaign,
    events: Sequence[ClaimedEvent],
) -> list[ClaimedEvent]:
    """:func:`qualify` for many events of one campaign (one event per person), in the
    caller's transaction and with a few set-based statements; returns the events let in.

    Another runner letting one of these persons in at the same moment makes an insert fail on
    the unique key: the caller then rolls the chunk back and takes its events one by one."""
    by_person = {event.person_id: event for event in events}
    matching = smart_lists.matching(conn, campaign.smart_list, list(by_person))
    members: dict[int, tuple[int, datetime | None]] = {}
    for part in chunks(list(matching)):
        rows = conn.execute(
            select(
                campaign_members.c.person_id,
                campaign_members.c.last_event_id,
                campaign_members.c.last_at,
            ).where(
                campaign_members.c.campaign_id == campaign.id,
                campaign_members.c.person_id.in_(part),
            )
        )
        for person_id, last_event_id, last_at in rows:
            members[int(person_id)] = (int(last_event_id), last_at)
    now = _now()
    new_rows: list[dict[str, object]] = []
    again: list[dict[str, object]] = []
    admitted: list[ClaimedEvent] = []
    for person_id, event in by_person.items():
        if person_id not in matching:
            continue
        member = members.get(person_id)
        if member is None:
            new_rows.append(
                {
                    "campaign_id": campaign.id,
                    "person_id": person_id,
                    "first_at": now,
                    "last_at": now,
                    "last_event_id": event.id,
                    "runs": 1,
                }
            )
        elif member[0] != event.id:
            if campaign.qualification == "once":
                continue
            if campaign.qualification == "every_n_days":
                days = campaign.qualification_days or 1
                if member[1] is not None and member[1] > now - timedelta(days=days):
                    continue
            again.append({"member_person": person_id, "event": event.id})
        admitted.append(event)
    if new_rows:
        conn.execute(insert(campaign_members), new_rows)
    if again:
        conn.execute(
            update(campaign_members)
            .where(
                campaign_members.c.campaign_id == campaign.id,
                campaign_members.c.person_id == bindparam("member_person"),
            )
            .values(
                last_at=now, last_event_id=bindparam("event"), runs=campaign_members.c.runs + 1
            ),
            again,
        )
    return admitted
