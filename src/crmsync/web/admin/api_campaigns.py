"""The admin API's campaign endpoints, ``/api/admin/v1/campaigns...``: what the campaign pages
do, as JSON (the same service calls, the same validation, audited the same way)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Path
from pydantic import BaseModel, ConfigDict

from crmsync.marketing.campaigns import edits
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.smartlists import SmartListQuery
from crmsync.store.audit import record_audit
from crmsync.web.admin.api import MAX_ID, Caller, Changer
from crmsync.web.admin.campaign_views import (
    CampaignSummary,
    campaign_summaries,
    campaign_summary,
    step_results,
)
from crmsync.web.admin.context import AdminContext

CampaignId = Annotated[int, Path(ge=1, le=MAX_ID)]


class CampaignOut(BaseModel):
    """A campaign in the list."""

    id: int
    name: str
    type: str
    active: bool
    qualification: str
    triggers: str
    steps: str
    members: int
    last_run: datetime | None


class StepOut(BaseModel):
    """What one flow step did."""

    index: int
    type: str
    name: str
    done: int
    skipped: int
    failed: int


class CampaignDetailOut(CampaignOut):
    """A campaign with its definition, live smart list count and results per step."""

    definition: dict[str, Any]
    smart_list_count: int
    pending_events: int
    results: list[StepOut]


class CampaignActive(BaseModel):
    """Whether a trigger campaign is active."""

    model_config = ConfigDict(extra="forbid")
    active: bool


class CampaignRunOut(BaseModel):
    """How many people a batch run queued."""

    queued: int


def _summary_out(summary: CampaignSummary) -> dict[str, Any]:
    record = summary.record
    return {
        "id": record.id,
        "name": record.definition.name,
        "type": record.definition.kind,
        "active": record.definition.active,
        "qualification": record.definition.qualification,
        "triggers": summary.trigger_summary,
        "steps": summary.steps_summary,
        "members": summary.members,
        "last_run": summary.last_run,
    }


def add_campaign_routes(api: FastAPI, ctx: AdminContext) -> None:
    """Add the campaign endpoints to the admin API."""
    service = CampaignService(ctx.engine)

    @api.get("/campaigns", response_model=list[CampaignOut])
    def list_campaigns(user: Caller) -> list[dict[str, Any]]:
        """Every campaign: type, active, triggers, steps, members, last run."""
        return [_summary_out(s) for s in campaign_summaries(ctx.engine)]

    @api.get("/campaigns/{campaign_id}", response_model=CampaignDetailOut)
    def get_campaign(campaign_id: CampaignId, user: Caller) -> dict[str, Any]:
        """One campaign: definition, smart list count now, pending events, results per step."""
        record = service.get(campaign_id)
        smart_list = record.definition.smart_list
        with ctx.engine.connect() as conn:
            steps = step_results(conn, record, failures=0)
        return {
            **_summary_out(campaign_summary(ctx.engine, record)),
            "definition": record.as_dict(),
            "smart_list_count": SmartListQuery(ctx.engine).count(smart_list)
            if smart_list.filters
            else 0,
            "pending_events": service.pending(record.id),
            "results": [
                {
                    "index": s.index,
                    "type": s.type,
                    "name": s.name,
                    "done": s.counts.get("done", 0),
                    "skipped": s.counts.get("skipped", 0),
                    "failed": s.counts.get("failed", 0) + s.counts.get("refused", 0),
                }
                for s in steps
            ],
        }

    @api.post("/campaigns", response_model=CampaignOut, status_code=201)
    def create_campaign(body: dict[str, Any], user: Changer) -> dict[str, Any]:
        """Save a new campaign from its definition (the shape of ``docs/campaigns.md``)."""
        record = service.create(body)
        with ctx.engine.begin() as conn:
            record_audit(
                conn, user.email, "campaign_created", {"campaign": record.id, "via": "api"}
            )
        return _summary_out(campaign_summary(ctx.engine, record))

    def _edit(
        campaign_id: int, body: dict[str, Any], user_email: str, *, replace: bool
    ) -> dict[str, Any]:
        record, changed = edits.edit_campaign(ctx.engine, campaign_id, body, replace=replace)
        if changed:
            with ctx.engine.begin() as conn:
                record_audit(
                    conn,
                    user_email,
                    "campaign_updated",
                    {"campaign": record.id, "changed": changed, "via": "api"},
                )
        return _summary_out(campaign_summary(ctx.engine, record))

    @api.put("/campaigns/{campaign_id}", response_model=CampaignOut)
    def replace_campaign(
        campaign_id: CampaignId, body: dict[str, Any], user: Changer
    ) -> dict[str, Any]:
        """Replace a campaign's definition (its type and active state stay; a batch
        campaign's pending runs stay unless ``schedule`` is given; audited)."""
        return _edit(campaign_id, body, user.email, replace=True)

    @api.patch("/campaigns/{campaign_id}", response_model=CampaignOut)
    def edit_campaign(
        campaign_id: CampaignId, body: dict[str, Any], user: Changer
    ) -> dict[str, Any]:
        """Change parts of a campaign's definition: name, description, qualification,
        triggers, smart list, flow, and a batch campaign's schedule (audited). An active
        campaign stays active."""
        return _edit(campaign_id, body, user.email, replace=False)

    @api.put("/campaigns/{campaign_id}/active", response_model=CampaignActive)
    def switch_campaign(
        campaign_id: CampaignId, body: CampaignActive, user: Changer
    ) -> dict[str, bool]:
        """Activate or deactivate a trigger campaign (audited)."""
        record = service.set_active(campaign_id, body.active)
        action = "campaign_activated" if body.active else "campaign_deactivated"
        with ctx.engine.begin() as conn:
            record_audit(conn, user.email, action, {"campaign": record.id, "via": "api"})
        return {"active": record.definition.active}

    @api.post("/campaigns/{campaign_id}/run", response_model=CampaignRunOut)
    def run_campaign(campaign_id: CampaignId, user: Changer) -> dict[str, int]:
        """Run a batch campaign now: queue everyone in its smart list (audited)."""
        queued = service.run_batch(campaign_id)
        with ctx.engine.begin() as conn:
            record_audit(
                conn,
                user.email,
                "campaign_run",
                {"campaign": campaign_id, "queued": queued, "via": "api"},
            )
        return {"queued": queued}
