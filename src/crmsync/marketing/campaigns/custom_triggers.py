"""The "<custom object> is Added" trigger (B45, R86): a campaign event per person newly linked
to a record of a custom entity, written in the transaction that stored the record.

A trigger ``{"type": "custom_object_added", "entity": "new_subscription"}`` fires once per
person and campaign for each page that links such a record to that person (a new record, or
one moved to them). A campaign's own steps never trigger it, as with the other triggers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from crmsync.marketing.campaigns.triggers import running_campaign_id
from crmsync.store.tables import campaign_events, campaigns

KIND = "custom_object_added"


def record_custom_object_added(conn: Connection, entity: str, person_ids: Sequence[int]) -> int:
    """Write the events that records of ``entity`` newly linked to ``person_ids`` fire (in the
    caller's transaction); returns how many. One small query when no campaign listens."""
    if not person_ids:
        return 0
    active = conn.execute(
        select(campaigns.c.id, campaigns.c.triggers).where(
            campaigns.c.active.is_(True), campaigns.c.kind == "trigger"
        )
    ).all()
    source = running_campaign_id()
    listening = [
        campaign_id
        for campaign_id, triggers in active
        if campaign_id != source
        and any(
            t.get("type") == KIND and str(t.get("entity", "")).lower() == entity
            for t in triggers or []
        )
    ]
    if not listening:
        return 0
    now = datetime.now(UTC)
    events = [
        {
            "campaign_id": campaign_id,
            "person_id": person_id,
            "kind": KIND,
            "details": {"entity": entity},
            "source_campaign_id": source,
            "created_at": now,
        }
        for campaign_id in listening
        for person_id in dict.fromkeys(person_ids)
    ]
    conn.execute(insert(campaign_events), events)
    return len(events)
