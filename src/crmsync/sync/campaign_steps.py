"""Sync Person to Microsoft (B31-B33, R73-R78): the flow step that gives a person a Dynamics
lead, or with *Sync As = Contact* a contact with no account.

It uses the engine's one create path, :func:`crmsync.sync.crm_create.request_crm_create`: the
record id is chosen and stored with the person's link in the step's transaction, before
anything is sent, so a concurrent cycle, a retry or a crash never makes a second record. A
person that has a record is left alone (no forced update); one whose record was deleted in
Dynamics gets a new one (B28). The step then asks the runner to push the create right away
(real time, B32, B48); if nothing can push it now, the next sync cycle does.
"""

from __future__ import annotations

from sqlalchemy import select

from crmsync.dynamics.client import DynamicsClient
from crmsync.errors import InvalidValueError
from crmsync.marketing.activity_types import SYNC_LEAD_TO_MICROSOFT
from crmsync.marketing.campaigns.steps import CHUNK_MARKETING_STEPS, MARKETING_STEPS, StepFunction
from crmsync.marketing.campaigns.steps.base import (
    ChunkActivity,
    ChunkContext,
    ChunkStepFunction,
    StepContext,
    StepOutcome,
)
from crmsync.marketing.campaigns.triggers import record_trigger_events
from crmsync.store.tables import persons
from crmsync.sync.crm_create import request_crm_create, request_crm_creates
from crmsync.sync.microsoft_steps import MicrosoftSteps


def sync_person_to_microsoft(ctx: StepContext) -> StepOutcome:
    """Queue the person's Dynamics create (exactly once) and ask for it to be pushed now."""
    exists = ctx.conn.execute(select(persons.c.id).where(persons.c.id == ctx.person_id)).first()
    if exists is None:
        return StepOutcome("skipped", "the person no longer exists", stop=True)
    sync_as = str(ctx.params.get("syncAs", "lead")).lower()
    owner = ctx.params.get("owner")
    try:
        asked = request_crm_create(
            ctx.conn, ctx.person_id, sync_as, owner=str(owner) if owner else None
        )
    except InvalidValueError as exc:
        return StepOutcome("failed", exc.message)
    if not asked.queued:
        return StepOutcome("skipped", f"already has {asked.entity} {asked.crm_id}")
    attributes = {"Assign To": owner or "", "Sync As": sync_as.capitalize(), "CRM Id": asked.crm_id}
    ctx.activity(
        SYNC_LEAD_TO_MICROSOFT, ctx.campaign_name, attributes, primary_value_id=ctx.person_id
    )
    record_trigger_events(  # Person is Synced to Microsoft (other campaigns)
        ctx.conn,
        [{"person_id": ctx.person_id, "type_id": SYNC_LEAD_TO_MICROSOFT, "attributes": attributes}],
    )
    return StepOutcome("done", f"new {asked.entity} {asked.crm_id}", push=True)


def sync_persons_to_microsoft(ctx: ChunkContext) -> dict[int, StepOutcome]:
    """:func:`sync_person_to_microsoft` for a chunk of a batch campaign's persons: the creates
    queued through :func:`~crmsync.sync.crm_create.request_crm_creates`, the activities and
    the triggers they fire written with one insert each."""
    sync_as = str(ctx.params.get("syncAs", "lead")).lower()
    owner = ctx.params.get("owner")
    answers = request_crm_creates(
        ctx.conn, ctx.person_ids, sync_as, owner=str(owner) if owner else None
    )
    outcomes: dict[int, StepOutcome] = {}
    written: list[ChunkActivity] = []
    for person_id in ctx.person_ids:
        asked = answers.get(person_id)
        if asked is None:
            outcomes[person_id] = StepOutcome("skipped", "the person no longer exists", stop=True)
        elif isinstance(asked, InvalidValueError):
            outcomes[person_id] = StepOutcome("failed", asked.message)
        elif not asked.queued:
            outcomes[person_id] = StepOutcome(
                "skipped", f"already has {asked.entity} {asked.crm_id}"
            )
        else:
            attributes = {
                "Assign To": owner or "",
                "Sync As": sync_as.capitalize(),
                "CRM Id": asked.crm_id,
            }
            written.append(
                ChunkActivity(
                    person_id, SYNC_LEAD_TO_MICROSOFT, ctx.campaign_name, attributes, person_id
                )
            )
            outcomes[person_id] = StepOutcome(
                "done", f"new {asked.entity} {asked.crm_id}", push=True
            )
    if written:
        record_trigger_events(ctx.conn, ctx.activities(written))
    return outcomes


MICROSOFT_STEPS: dict[str, StepFunction] = {"sync_person_to_microsoft": sync_person_to_microsoft}
"""The flow steps that need the Dynamics sync (and no Dynamics request of their own)."""

CHUNK_STEPS: dict[str, ChunkStepFunction] = {
    **CHUNK_MARKETING_STEPS,
    "sync_person_to_microsoft": sync_persons_to_microsoft,
}
"""The steps a batch campaign can take many persons through at once (see
:mod:`crmsync.marketing.campaigns.chunks`)."""


def all_steps(client: DynamicsClient | None = None) -> dict[str, StepFunction]:
    """Every flow step crmsync has: the marketing ones and the Microsoft ones; with
    ``client``, also those that write to Dynamics themselves (:mod:`.microsoft_steps`)."""
    steps = {**MARKETING_STEPS, **MICROSOFT_STEPS}
    if client is not None:
        steps.update(MicrosoftSteps(client).steps())
    return steps
