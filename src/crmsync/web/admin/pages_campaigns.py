"""Smart campaigns: the list, a campaign's page (smart list with its live count and members,
flow, qualification, results per step), a new campaign from a pasted definition, a saved one
edited, activate / deactivate, and run a batch campaign now. Every change is audited."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from crmsync.errors import InvalidValueError
from crmsync.marketing.campaigns import edits
from crmsync.marketing.campaigns.definitions import TRIGGER_TYPES
from crmsync.marketing.campaigns.service import CampaignRecord, CampaignService
from crmsync.marketing.smartlists import SmartListQuery
from crmsync.store.audit import record_audit
from crmsync.web.admin.campaign_views import (
    STEP_NAMES,
    campaign_summaries,
    campaign_summary,
    member_page,
    parse_definition_text,
    step_results,
)
from crmsync.web.admin.context import ADMIN, AdminContext
from crmsync.web.admin.pages_people import optional_id
from crmsync.web.admin.queries import PAGE_SIZE
from crmsync.web.admin.sessions import Session

router = APIRouter()

EXAMPLE_DEFINITION = """name = "Welcome new people"
type = "trigger"
qualification = "once"

[[triggers]]
type = "person_created"

[smartList]
filters = [{ field = "crmType", operator = "is_empty" }]

[[flow]]
type = "sync_person_to_microsoft"
syncAs = "lead"
"""


def _campaign(ctx: AdminContext, raw_id: str) -> CampaignRecord:
    wanted = optional_id(raw_id, "The campaign id")
    if wanted is None:
        raise InvalidValueError("The campaign id must be a positive whole number.")
    return CampaignService(ctx.engine).get(wanted)


@router.get("/campaigns")
async def campaigns_page(request: Request) -> Response:
    """Every campaign: type, active, triggers and steps, members, last run."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    return ctx.render(request, "admin/campaigns.html", session, rows=campaign_summaries(ctx.engine))


@router.get("/campaigns/new")
async def new_campaign_form(request: Request) -> Response:
    """The form for a new campaign (admins)."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    return ctx.render(
        request, "admin/campaign_form.html", session, definition=EXAMPLE_DEFINITION, error=None
    )


@router.post("/campaigns/new")
async def create_campaign(request: Request) -> Response:
    """Save a new campaign; a definition the service refuses comes back with its reason."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    text = str(form.get("definition") or "")
    try:
        record = CampaignService(ctx.engine).create(parse_definition_text(text))
    except InvalidValueError as exc:
        return ctx.render(
            request,
            "admin/campaign_form.html",
            session,
            status_code=400,
            definition=text,
            error=str(exc),
        )
    with ctx.engine.begin() as conn:
        record_audit(conn, session.user.email, "campaign_created", {"campaign": record.id})
    return ctx.redirect(
        f"{ADMIN}/campaigns/{record.id}", notice=f"Campaign “{record.definition.name}” saved."
    )


def _edit_form(
    request: Request,
    ctx: AdminContext,
    session: Session,
    record: CampaignRecord,
    text: str,
    **kw: Any,
) -> Response:
    return ctx.render(
        request,
        "admin/campaign_form.html",
        session,
        definition=text,
        heading=f"Edit “{record.definition.name}”",
        action=f"{ADMIN}/campaigns/{record.id}/edit",
        **{"error": None, **kw},
    )


@router.get("/campaigns/{campaign_id}/edit")
async def edit_campaign_form(request: Request, campaign_id: str) -> Response:
    """The saved definition, as JSON, ready to edit (admins)."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    record = _campaign(ctx, campaign_id)
    shown = edits.editable(ctx.engine, record)
    return _edit_form(request, ctx, session, record, json.dumps(shown, indent=2))


@router.post("/campaigns/{campaign_id}/edit")
async def edit_campaign(request: Request, campaign_id: str) -> Response:
    """Save an edited campaign; a definition the service refuses comes back with its
    reason, the text as typed."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    record = _campaign(ctx, campaign_id)
    text = str(form.get("definition") or "")
    try:
        saved, changed = edits.edit_campaign(
            ctx.engine, record.id, parse_definition_text(text), replace=True
        )
    except InvalidValueError as exc:
        return _edit_form(request, ctx, session, record, text, status_code=400, error=str(exc))
    if changed:
        with ctx.engine.begin() as conn:
            record_audit(
                conn,
                session.user.email,
                "campaign_updated",
                {"campaign": saved.id, "changed": changed},
            )
    notice = f"Saved: {', '.join(changed)} changed." if changed else "Nothing changed."
    return ctx.redirect(f"{ADMIN}/campaigns/{saved.id}", notice=notice)


@router.get("/campaigns/{campaign_id}")
async def campaign_page(request: Request, campaign_id: str) -> Response:
    """One campaign: smart list (live count, a page of members), flow, results per step."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    record = _campaign(ctx, campaign_id)
    after = optional_id(request.query_params.get("after"), "after") or 0
    smart_list = record.definition.smart_list
    count = SmartListQuery(ctx.engine).count(smart_list) if smart_list.filters else 0
    with ctx.engine.connect() as conn:
        members = member_page(conn, record, after_id=after)
        results = step_results(conn, record)
    return ctx.render(
        request,
        "admin/campaign.html",
        session,
        c=record,
        d=record.definition,
        summary=campaign_summary(ctx.engine, record),
        members_count=count,
        members=members,
        next_after=members[-1]["id"] if len(members) == PAGE_SIZE else None,
        results=results,
        pending=CampaignService(ctx.engine).pending(record.id),
        trigger_names=TRIGGER_TYPES,
        step_names=STEP_NAMES,
    )


@router.post("/campaigns/{campaign_id}/active")
async def switch_campaign(request: Request, campaign_id: str) -> Response:
    """Activate or deactivate a trigger campaign."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    record = _campaign(ctx, campaign_id)
    wanted = form.get("active")
    if wanted not in {"true", "false"}:
        raise InvalidValueError("Choose whether the campaign is active.")
    CampaignService(ctx.engine).set_active(record.id, wanted == "true")
    with ctx.engine.begin() as conn:
        action = "campaign_activated" if wanted == "true" else "campaign_deactivated"
        record_audit(conn, session.user.email, action, {"campaign": record.id})
    state = "active: its triggers fire" if wanted == "true" else "inactive: its triggers are off"
    return ctx.redirect(f"{ADMIN}/campaigns/{record.id}", notice=f"The campaign is {state}.")


@router.post("/campaigns/{campaign_id}/run")
async def run_campaign(request: Request, campaign_id: str) -> Response:
    """Run a batch campaign now: everyone in its smart list is queued for the flow."""
    ctx = AdminContext.of(request)
    session, _ = await ctx.change_form(request)
    record = _campaign(ctx, campaign_id)
    queued = CampaignService(ctx.engine).run_batch(record.id)
    with ctx.engine.begin() as conn:
        record_audit(
            conn, session.user.email, "campaign_run", {"campaign": record.id, "queued": queued}
        )
    who = "person" if queued == 1 else "people"
    return ctx.redirect(
        f"{ADMIN}/campaigns/{record.id}",
        notice=f"Queued {queued:,} {who} for the flow; results follow.",
    )
