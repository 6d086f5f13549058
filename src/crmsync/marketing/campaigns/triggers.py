"""Durable triggers: the campaign events written in the same transaction as the change.

:func:`record_trigger_events` is the one call every writer of persons makes (the person
service, Sync Leads, static lists, the sync applying Dynamics changes): it is handed the
activity rows the writer has just inserted (New Lead, Change Data Value, Add to / Remove from
List) and, in the writer's transaction, inserts one ``campaign_events`` row per person and
active trigger campaign whose trigger the change fires. Committed with the change or not at
all, so a trigger is never lost and never fires for a change that was rolled back.

A campaign's own steps never trigger that same campaign (no loops); they can trigger others,
as in Marketo.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from crmsync.marketing.activity_types import (
    ADD_TO_LIST,
    ADD_TO_MICROSOFT_CAMPAIGN,
    CHANGE_DATA_VALUE,
    NEW_LEAD,
    REMOVE_FROM_LIST,
    REMOVE_FROM_MICROSOFT_CAMPAIGN,
    SYNC_LEAD_TO_MICROSOFT,
)
from crmsync.store.tables import campaign_events, campaigns, persons

__all__ = [
    "enqueue_batch_run",
    "enqueue_request",
    "record_trigger_events",
    "running_campaign",
]

_RUNNING: ContextVar[int | None] = ContextVar("crmsync_running_campaign", default=None)


@contextmanager
def running_campaign(campaign_id: int) -> Iterator[None]:
    """Mark changes made in this block as made by ``campaign_id``'s flow."""
    token = _RUNNING.set(campaign_id)
    try:
        yield
    finally:
        _RUNNING.reset(token)


def running_campaign_id() -> int | None:
    """The campaign whose flow is making the current changes, if any."""
    return _RUNNING.get()


def _text(value: object) -> str:
    return "" if value is None else str(value).strip().lower()


def _fires(trigger: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    kind = trigger.get("type")
    type_id = row.get("type_id")
    if kind == "person_created":
        if type_id != NEW_LEAD:
            return False
        created: Mapping[str, Any] = row.get("attributes") or {}
        wanted = trigger.get("source")
        return wanted is None or _text(created.get("Source Type")) == _text(wanted)
    if kind == "data_value_changes":
        if type_id != CHANGE_DATA_VALUE:
            return False
        if _text(row.get("field_name")) != _text(trigger.get("field")):
            return False
        attributes: Mapping[str, Any] = row.get("attributes") or {}
        if "from" in trigger and _text(attributes.get("Old Value")) != _text(trigger["from"]):
            return False
        return not ("to" in trigger and _text(attributes.get("New Value")) != _text(trigger["to"]))
    if kind in {"added_to_microsoft_campaign", "removed_from_microsoft_campaign"}:
        wanted = (
            ADD_TO_MICROSOFT_CAMPAIGN
            if kind == "added_to_microsoft_campaign"
            else REMOVE_FROM_MICROSOFT_CAMPAIGN
        )
        named = trigger.get("campaign")
        return type_id == wanted and (
            named is None or _text(row.get("primary_value")) == _text(named)
        )
    if kind == "person_synced_to_microsoft":
        return type_id == SYNC_LEAD_TO_MICROSOFT
    if kind in {"added_to_list", "removed_from_list"}:
        wanted = ADD_TO_LIST if kind == "added_to_list" else REMOVE_FROM_LIST
        return type_id == wanted and str(row.get("primary_value_id")) == str(trigger.get("listId"))
    return False


_KINDS = {
    NEW_LEAD: "person_created",
    CHANGE_DATA_VALUE: "data_value_changes",
    ADD_TO_LIST: "added_to_list",
    REMOVE_FROM_LIST: "removed_from_list",
    ADD_TO_MICROSOFT_CAMPAIGN: "added_to_microsoft_campaign",
    REMOVE_FROM_MICROSOFT_CAMPAIGN: "removed_from_microsoft_campaign",
    SYNC_LEAD_TO_MICROSOFT: "person_synced_to_microsoft",
}


_ROW_FIELDS = (
    "person_id",
    "type_id",
    "primary_value_id",
    "primary_value",
    "field_name",
    "attributes",
)


def _as_row(entry: object) -> Mapping[str, Any]:
    """An activity row as a mapping: a dict as written, or an activity entry object."""
    if isinstance(entry, Mapping):
        return entry
    return {name: getattr(entry, name, None) for name in _ROW_FIELDS}


def record_trigger_events(conn: Connection, activity_rows: Sequence[object]) -> int:
    """Write the campaign events the changes behind ``activity_rows`` fire; returns how many.

    ``activity_rows`` are the activities the writer has just inserted, as dicts or as activity
    entry objects (``person_id``, ``type_id``, ``primary_value_id``, ``field_name``,
    ``attributes``). Call it in the writer's transaction, right after its activities were
    inserted (the rows need real person ids). Costs one small query when no trigger campaign
    is active.
    """
    rows = [_as_row(entry) for entry in activity_rows]
    relevant = [row for row in rows if row.get("type_id") in _KINDS]
    if not relevant:
        return 0
    active = conn.execute(
        select(campaigns.c.id, campaigns.c.triggers).where(
            campaigns.c.active.is_(True), campaigns.c.kind == "trigger"
        )
    ).all()
    if not active:
        return 0
    source = _RUNNING.get()
    now = datetime.now(UTC)
    events: list[dict[str, object]] = []
    seen: set[tuple[int, int]] = set()
    for row in relevant:
        person_id = int(row["person_id"])
        for campaign_id, triggers in active:
            if campaign_id == source or (campaign_id, person_id) in seen:
                continue
            if any(_fires(trigger, row) for trigger in triggers or []):
                seen.add((campaign_id, person_id))
                attributes: Mapping[str, Any] = row.get("attributes") or {}
                details: dict[str, object] = {}
                if row["type_id"] == CHANGE_DATA_VALUE:
                    details = {
                        "field": row.get("field_name"),
                        "old": attributes.get("Old Value"),
                        "new": attributes.get("New Value"),
                    }
                elif row["type_id"] in {ADD_TO_LIST, REMOVE_FROM_LIST}:
                    details = {"listId": row.get("primary_value_id")}
                elif row["type_id"] in {ADD_TO_MICROSOFT_CAMPAIGN, REMOVE_FROM_MICROSOFT_CAMPAIGN}:
                    details = {"campaign": row.get("primary_value")}
                events.append(
                    {
                        "campaign_id": campaign_id,
                        "person_id": person_id,
                        "kind": _KINDS[row["type_id"]],
                        "details": details,
                        "source_campaign_id": source,
                        "created_at": now,
                    }
                )
    if events:
        conn.execute(insert(campaign_events), events)
    return len(events)


def enqueue_request(
    conn: Connection,
    campaign_id: int,
    person_ids: Sequence[int],
    *,
    source: str,
    tokens: Mapping[str, str] | None = None,
) -> None:
    """Campaign is Requested: queue ``person_ids`` for ``campaign_id`` in the caller's
    transaction (the REST API's Request Campaign, or another campaign's step)."""
    now = datetime.now(UTC)
    rows = [
        {
            "campaign_id": campaign_id,
            "person_id": person_id,
            "kind": "campaign_requested",
            "details": {"source": source, "tokens": dict(tokens or {})},
            "source_campaign_id": _RUNNING.get(),
            "created_at": now,
        }
        for person_id in dict.fromkeys(person_ids)
    ]
    if rows:
        conn.execute(insert(campaign_events), rows)


def enqueue_batch_run(
    conn: Connection,
    campaign_id: int,
    condition: ColumnElement[bool],
    tokens: Mapping[str, str] | None = None,
) -> int:
    """Run a batch campaign now: one event per person matching ``condition`` (its compiled
    smart list), inserted by one ``INSERT ... SELECT`` without loading anybody. Returns the
    number of persons queued."""
    now = datetime.now(UTC)
    chosen = select(
        literal(campaign_id).label("campaign_id"),
        persons.c.id.label("person_id"),
        literal("batch").label("kind"),
        literal(now, campaign_events.c.created_at.type).label("created_at"),
        literal({"tokens": dict(tokens or {})}, campaign_events.c.details.type).label("details"),
    ).where(condition)
    before = conn.execute(select(func.max(campaign_events.c.id))).scalar() or 0
    conn.execute(
        insert(campaign_events).from_select(
            ["campaign_id", "person_id", "kind", "created_at", "details"], chosen
        )
    )
    queued = select(func.count()).where(
        campaign_events.c.id > before,
        campaign_events.c.campaign_id == campaign_id,
        campaign_events.c.kind == "batch",
    )
    return int(conn.execute(queued).scalar_one())
