"""The demo's trigger campaign: a person created through the Marketo API gets a Dynamics lead
at once (B31, B32), so ``crmsync demo`` shows Sync Person to Microsoft working in real time."""

from __future__ import annotations

from sqlalchemy import Engine

from crmsync.errors import CrmsyncError
from crmsync.marketing.campaigns.service import CampaignService

DEMO_CAMPAIGN_NAME = "Demo: web sign-ups to Dynamics"

DEMO_CAMPAIGN: dict[str, object] = {
    "name": DEMO_CAMPAIGN_NAME,
    "description": "Persons created through the Marketo API become Dynamics leads at once",
    "type": "trigger",
    "active": True,
    "qualification": "once",
    "triggers": [{"type": "person_created", "source": "Web service API"}],
    "smartList": {"filters": [{"field": "crmType", "operator": "is_empty"}]},
    "flow": [{"type": "sync_person_to_microsoft", "syncAs": "lead"}],
}


def ensure_demo_campaign(engine: Engine) -> int:
    """The demo campaign's id, creating it on first use (a rerun keeps any edits)."""
    service = CampaignService(engine)
    try:
        return service.find(DEMO_CAMPAIGN_NAME).id
    except CrmsyncError:
        return service.create(DEMO_CAMPAIGN).id
