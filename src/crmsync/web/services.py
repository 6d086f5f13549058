"""The marketing services one Marketo API instance talks to, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from crmsync.marketing.activities import ActivityService
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.fields import FieldCatalog, load_catalog
from crmsync.marketing.lists import ListService
from crmsync.marketing.objects import ObjectService
from crmsync.marketing.persons import PersonService
from crmsync.store.key_values import get_sync_enabled


@dataclass(frozen=True, slots=True)
class MarketoServices:
    """Services and the engine behind the Marketo-compatible API."""

    engine: Engine
    persons: PersonService
    activities: ActivityService
    lists: ListService
    objects: ObjectService
    campaigns: CampaignService
    source: str = "Web service API"

    @classmethod
    def build(cls, engine: Engine) -> MarketoServices:
        """Build every service on ``engine``."""
        return cls(
            engine=engine,
            persons=PersonService(engine),
            activities=ActivityService(engine),
            lists=ListService(engine),
            objects=ObjectService(engine),
            campaigns=CampaignService(engine),
        )

    def person_catalog(self) -> FieldCatalog:
        """Load the person field catalog (standard and custom fields) now."""
        with self.engine.connect() as conn:
            return load_catalog(conn, "person")

    def crm_sync_enabled(self) -> bool:
        """True while the Dynamics sync is enabled (CRM-owned objects are then read-only)."""
        with self.engine.connect() as conn:
            return get_sync_enabled(conn)
