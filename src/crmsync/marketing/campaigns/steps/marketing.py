"""Flow steps that change only the marketing database: Change Data Value, Add to / Remove
from List, Request Campaign, Wait, Delete Person (B35).

Each runs in the step's transaction, writes its activity with the campaign id, and goes
through the same writers as the REST API so its own changes fire other campaigns' triggers
(never this campaign's own).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from crmsync.marketing.activity_log import activity, write_activities
from crmsync.marketing.activity_types import (
    ADD_TO_LIST,
    DELETE_LEAD,
    REMOVE_FROM_LIST,
    REQUEST_CAMPAIGN,
)
from crmsync.marketing.campaigns.microsoft_params import wait_minutes
from crmsync.marketing.campaigns.steps.base import StepContext, StepOutcome
from crmsync.marketing.campaigns.triggers import enqueue_request, record_trigger_events
from crmsync.marketing.fields import load_catalog
from crmsync.marketing.sync_leads import SyncLeads
from crmsync.marketing.values import utc_now_text
from crmsync.store import outbox
from crmsync.store.tables import (
    campaign_events,
    campaigns,
    list_members,
    persons,
    static_lists,
)

SOURCE = "Smart campaign"


def with_tokens(value: object, tokens: dict[str, str]) -> object:
    """``value`` with each ``{{my.token}}`` of a request replaced."""
    if not isinstance(value, str) or "{{" not in value:
        return value
    for name, replacement in tokens.items():
        value = value.replace(name, replacement)
    return value


def change_data_value(ctx: StepContext) -> StepOutcome:
    """Set one field of the person (the value may use ``{{my.token}}`` request tokens)."""
    field_name = str(ctx.params["field"])
    value = with_tokens(ctx.params.get("value"), dict(ctx.tokens))
    catalog = load_catalog(ctx.conn, "person")
    run = SyncLeads(
        catalog.require("id"), persons.c.id, SOURCE, utc_now_text(), campaign_id=ctx.campaign_id
    )
    (outcome,) = run.apply(
        ctx.conn, catalog, [{"id": ctx.person_id, field_name: value}], "updateOnly", False
    )
    if outcome.status == "skipped":
        reason = outcome.reasons[0].message if outcome.reasons else "refused"
        return StepOutcome("failed", reason)
    return StepOutcome("done", f"{field_name} = {value!r}")


def list_name(conn: Connection, list_id: int) -> str | None:
    """The static list's name; ``None`` when it does not exist."""
    found = conn.execute(select(static_lists.c.name).where(static_lists.c.id == list_id))
    return found.scalar()


def _list_activity(ctx: StepContext, type_id: int, list_id: int, name: str) -> None:
    row = activity(
        ctx.person_id,
        type_id,
        name,
        {"Source": SOURCE, "Campaign": ctx.campaign_name},
        campaign_id=ctx.campaign_id,
        primary_value_id=list_id,
    )
    write_activities(ctx.conn, [row])
    record_trigger_events(ctx.conn, [row])


def add_to_list(ctx: StepContext) -> StepOutcome:
    """Add the person to a static list (nothing when already a member)."""
    list_id = int(ctx.params["listId"])
    name = list_name(ctx.conn, list_id)
    if name is None:
        return StepOutcome("failed", f"static list {list_id} does not exist")
    member = ctx.conn.execute(
        select(list_members.c.person_id).where(
            list_members.c.list_id == list_id, list_members.c.person_id == ctx.person_id
        )
    ).first()
    if member is not None:
        return StepOutcome("skipped", f"already in list {name}")
    ctx.conn.execute(
        insert(list_members).values(
            list_id=list_id, person_id=ctx.person_id, added_at=utc_now_text()
        )
    )
    _list_activity(ctx, ADD_TO_LIST, list_id, name)
    return StepOutcome("done", f"added to list {name}")


def remove_from_list(ctx: StepContext) -> StepOutcome:
    """Remove the person from a static list (nothing when not a member)."""
    list_id = int(ctx.params["listId"])
    name = list_name(ctx.conn, list_id)
    if name is None:
        return StepOutcome("failed", f"static list {list_id} does not exist")
    gone = ctx.conn.execute(
        delete(list_members).where(
            list_members.c.list_id == list_id, list_members.c.person_id == ctx.person_id
        )
    ).rowcount
    if not gone:
        return StepOutcome("skipped", f"not in list {name}")
    _list_activity(ctx, REMOVE_FROM_LIST, list_id, name)
    return StepOutcome("done", f"removed from list {name}")


def request_campaign(ctx: StepContext) -> StepOutcome:
    """Request another trigger campaign (one with a Campaign is Requested trigger whose source
    is 'campaign') for the person."""
    target = int(ctx.params["campaignId"])
    name, refusal = requestable_campaign(ctx.conn, target)
    if refusal is not None:
        return StepOutcome("failed", refusal)
    enqueue_request(ctx.conn, target, [ctx.person_id], source="campaign", tokens=ctx.tokens)
    ctx.activity(
        REQUEST_CAMPAIGN, name, {"Source": f"Campaign {ctx.campaign_name}"}, primary_value_id=target
    )
    return StepOutcome("done", f"requested campaign {name}")


def requestable_campaign(conn: Connection, target: int) -> tuple[str, str | None]:
    """The campaign's name, and why it cannot be requested by a campaign (``None``: it can:
    active, with a Campaign is Requested trigger whose source is 'campaign')."""
    found = conn.execute(
        select(campaigns.c.name, campaigns.c.active, campaigns.c.triggers).where(
            campaigns.c.id == target
        )
    ).first()
    if found is None:
        return "", f"campaign {target} does not exist"
    name, active, triggers = found
    requestable = any(
        t.get("type") == "campaign_requested" and t.get("source") == "campaign"
        for t in triggers or []
    )
    if not active or not requestable:
        return name, f"campaign {name} is not active with a 'Campaign is Requested' trigger"
    return name, None


def delete_person(ctx: StepContext) -> StepOutcome:
    """Delete the person here only, never in Dynamics (B35, R69); the Delete Lead activity
    stays, as for every deleted person."""
    row = ctx.conn.execute(
        select(persons.c.firstName, persons.c.lastName, persons.c.email).where(
            persons.c.id == ctx.person_id
        )
    ).first()
    if row is None:
        return StepOutcome("skipped", "person already deleted", stop=True)
    ctx.conn.execute(delete(persons).where(persons.c.id == ctx.person_id))
    outbox.enqueue(ctx.conn, [ctx.person_id], operation="delete", source=SOURCE)
    name = " ".join(p for p in (row.firstName, row.lastName) if p) or row.email or ""
    ctx.activity(
        DELETE_LEAD,
        name,
        {"Source": f"Campaign {ctx.campaign_name}"},
        primary_value_id=ctx.person_id,
    )
    return StepOutcome("done", "deleted from the marketing database only", stop=True)


def wait(ctx: StepContext) -> StepOutcome:
    """Pause the person's flow: the event is set to run again after the wait, in the step's
    transaction (so a crash never skips the wait), and the runner lets it go until then."""
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=wait_minutes(ctx.params))
    ctx.conn.execute(
        update(campaign_events).where(campaign_events.c.id == ctx.event_id).values(run_after=until)
    )
    return StepOutcome("done", f"waits until {until.isoformat()}", wait_until=until)
