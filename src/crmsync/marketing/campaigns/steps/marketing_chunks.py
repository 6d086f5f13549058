"""Chunk forms of the marketing-only flow steps (see
:mod:`crmsync.marketing.campaigns.chunks`): Change Data Value, Add to / Remove from List,
Request Campaign and Delete Person for many persons of a batch campaign at once.

Each does what its one-person form in :mod:`.marketing` does, with a few set-based statements
for the whole chunk instead of a few per person: the same writers (Sync Leads for values, the
activity-log writer, the trigger-event writer), the same activities with the campaign id and
the same outcome per person. A person missing from the answer no longer exists; the chunk
runner records that.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select

from crmsync.marketing.activity_types import (
    ADD_TO_LIST,
    DELETE_LEAD,
    REMOVE_FROM_LIST,
    REQUEST_CAMPAIGN,
)
from crmsync.marketing.campaigns.steps.base import ChunkActivity, ChunkContext, StepOutcome
from crmsync.marketing.campaigns.steps.marketing import (
    SOURCE,
    list_name,
    requestable_campaign,
    with_tokens,
)
from crmsync.marketing.campaigns.triggers import enqueue_request, record_trigger_events
from crmsync.marketing.fields import load_catalog
from crmsync.marketing.sync_leads import SyncLeads
from crmsync.marketing.values import utc_now_text
from crmsync.store import outbox
from crmsync.store.inserts import chunks
from crmsync.store.tables import list_members, persons

Outcomes = dict[int, StepOutcome]


def _existing(ctx: ChunkContext) -> list[int]:
    """The chunk's persons that still exist, in the chunk's order."""
    found: set[int] = set()
    for part in chunks(list(ctx.person_ids)):
        found.update(
            int(i)
            for i in ctx.conn.execute(select(persons.c.id).where(persons.c.id.in_(part))).scalars()
        )
    return [person_id for person_id in ctx.person_ids if person_id in found]


def _all(person_ids: Sequence[int], outcome: StepOutcome) -> Outcomes:
    return dict.fromkeys(person_ids, outcome)


def change_data_values(ctx: ChunkContext) -> Outcomes:
    """Set one field of every person in the chunk, through one Sync Leads run."""
    field_name = str(ctx.params["field"])
    value = with_tokens(ctx.params.get("value"), dict(ctx.tokens))
    catalog = load_catalog(ctx.conn, "person")
    run = SyncLeads(
        catalog.require("id"), persons.c.id, SOURCE, utc_now_text(), campaign_id=ctx.campaign_id
    )
    present = _existing(ctx)
    answers = run.apply(
        ctx.conn,
        catalog,
        [{"id": person_id, field_name: value} for person_id in present],
        "updateOnly",
        False,
    )
    outcomes: Outcomes = {}
    for person_id, answer in zip(present, answers, strict=True):
        if answer.status == "skipped":
            reason = answer.reasons[0].message if answer.reasons else "refused"
            outcomes[person_id] = StepOutcome("failed", reason)
        else:
            outcomes[person_id] = StepOutcome("done", f"{field_name} = {value!r}")
    return outcomes


def _members(ctx: ChunkContext, list_id: int, person_ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for part in chunks(list(person_ids)):
        found.update(
            int(i)
            for i in ctx.conn.execute(
                select(list_members.c.person_id).where(
                    list_members.c.list_id == list_id, list_members.c.person_id.in_(part)
                )
            ).scalars()
        )
    return found


def _list_activities(
    ctx: ChunkContext, type_id: int, list_id: int, name: str, person_ids: Sequence[int]
) -> None:
    attributes = {"Source": SOURCE, "Campaign": ctx.campaign_name}
    written = ctx.activities(
        [ChunkActivity(p, type_id, name, attributes, list_id) for p in person_ids]
    )
    record_trigger_events(ctx.conn, written)


def add_to_lists(ctx: ChunkContext) -> Outcomes:
    """Add the chunk's persons to a static list (nothing for those already members)."""
    list_id = int(ctx.params["listId"])
    name = list_name(ctx.conn, list_id)
    if name is None:
        return _all(ctx.person_ids, StepOutcome("failed", f"static list {list_id} does not exist"))
    present = _existing(ctx)
    members = _members(ctx, list_id, present)
    adding = [person_id for person_id in present if person_id not in members]
    if adding:
        added_at = utc_now_text()
        ctx.conn.execute(
            insert(list_members),
            [{"list_id": list_id, "person_id": p, "added_at": added_at} for p in adding],
        )
        _list_activities(ctx, ADD_TO_LIST, list_id, name, adding)
    outcomes = _all(sorted(members), StepOutcome("skipped", f"already in list {name}"))
    outcomes.update(_all(adding, StepOutcome("done", f"added to list {name}")))
    return outcomes


def remove_from_lists(ctx: ChunkContext) -> Outcomes:
    """Remove the chunk's persons from a static list (nothing for those not members)."""
    list_id = int(ctx.params["listId"])
    name = list_name(ctx.conn, list_id)
    if name is None:
        return _all(ctx.person_ids, StepOutcome("failed", f"static list {list_id} does not exist"))
    present = _existing(ctx)
    members = _members(ctx, list_id, present)
    removing = [person_id for person_id in present if person_id in members]
    for part in chunks(removing):
        ctx.conn.execute(
            delete(list_members).where(
                list_members.c.list_id == list_id, list_members.c.person_id.in_(part)
            )
        )
    if removing:
        _list_activities(ctx, REMOVE_FROM_LIST, list_id, name, removing)
    outcomes = _all(
        [p for p in present if p not in members], StepOutcome("skipped", f"not in list {name}")
    )
    outcomes.update(_all(removing, StepOutcome("done", f"removed from list {name}")))
    return outcomes


def request_campaigns(ctx: ChunkContext) -> Outcomes:
    """Request another trigger campaign for every person of the chunk."""
    target = int(ctx.params["campaignId"])
    name, refusal = requestable_campaign(ctx.conn, target)
    if refusal is not None:
        return _all(ctx.person_ids, StepOutcome("failed", refusal))
    present = _existing(ctx)
    enqueue_request(ctx.conn, target, present, source="campaign", tokens=ctx.tokens)
    attributes = {"Source": f"Campaign {ctx.campaign_name}"}
    ctx.activities([ChunkActivity(p, REQUEST_CAMPAIGN, name, attributes, target) for p in present])
    return _all(present, StepOutcome("done", f"requested campaign {name}"))


def delete_persons(ctx: ChunkContext) -> Outcomes:
    """Delete the chunk's persons here only, never in Dynamics (B35, R69); each keeps a
    Delete Lead activity, as every deleted person does."""
    names: dict[int, str] = {}
    for part in chunks(list(ctx.person_ids)):
        for row in ctx.conn.execute(
            select(persons.c.id, persons.c.firstName, persons.c.lastName, persons.c.email).where(
                persons.c.id.in_(part)
            )
        ):
            full = " ".join(p for p in (row.firstName, row.lastName) if p)
            names[int(row.id)] = full or row.email or ""
    gone = [person_id for person_id in ctx.person_ids if person_id in names]
    for part in chunks(gone):
        ctx.conn.execute(delete(persons).where(persons.c.id.in_(part)))
    outbox.enqueue(ctx.conn, gone, operation="delete", source=SOURCE)
    attributes = {"Source": f"Campaign {ctx.campaign_name}"}
    ctx.activities([ChunkActivity(p, DELETE_LEAD, names[p], attributes, p) for p in gone])
    outcomes = _all(
        [p for p in ctx.person_ids if p not in names],
        StepOutcome("skipped", "person already deleted", stop=True),
    )
    outcomes.update(
        _all(gone, StepOutcome("done", "deleted from the marketing database only", stop=True))
    )
    return outcomes
