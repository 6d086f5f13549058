"""Editing a saved campaign, its schedule included: one service for the CLI's ``campaigns
update``, the admin API's PATCH / PUT and the Edit form.

The definition goes through :meth:`CampaignService.update
<crmsync.marketing.campaigns.service.CampaignService.update>`; a ``schedule`` part (batch
campaigns only) through :meth:`CampaignSchedules.replace
<crmsync.marketing.campaigns.schedules.CampaignSchedules.replace>`, checked by the same rules
as ``campaigns schedule`` before anything is saved. Leaving ``schedule`` out keeps the pending
runs as they are, even with ``replace``; ``null`` (JSON) or ``{}`` drops them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from crmsync.marketing.campaigns.definitions import CampaignDefinition
from crmsync.marketing.campaigns.schedules import (
    CampaignSchedules,
    check_schedulable,
    parse_schedule,
)
from crmsync.marketing.campaigns.service import CampaignRecord, CampaignService

SCHEDULE = "schedule"


def edit_campaign(
    engine: Engine,
    campaign_id: int,
    raw: Mapping[str, Any],
    *,
    replace: bool = False,
    now: datetime | None = None,
) -> tuple[CampaignRecord, list[str]]:
    """Save the edit; returns the campaign as saved and the names of the parts that changed
    (``schedule`` among them when its pending run changed), for the audit trail. Raise
    :class:`~crmsync.errors.InvalidValueError` with nothing saved."""
    given = dict(raw)
    scheduling = SCHEDULE in given
    run = parse_schedule(given.pop(SCHEDULE, None))
    current = now or datetime.now(UTC)
    if run is not None:
        run.checked(current)  # refused here, before the definition is saved

    def check(definition: CampaignDefinition) -> None:
        if run is not None:
            check_schedulable(definition)

    record, changed = CampaignService(engine).update(
        campaign_id, given, replace=replace, check=check if scheduling else None
    )
    if scheduling and CampaignSchedules(engine).replace(record.id, run, current):
        changed = [*changed, SCHEDULE]
    return record, changed


def editable(engine: Engine, record: CampaignRecord) -> dict[str, object]:
    """The campaign's definition as the Edit form shows it: without type and active state,
    and with its next pending run for a batch campaign."""
    shown = {k: v for k, v in record.definition.as_dict().items() if k not in {"active", "type"}}
    if record.definition.kind == "batch":
        pending = CampaignSchedules(engine).pending(record.id)
        if pending:
            shown[SCHEDULE] = pending[0].as_dict()
    return shown
