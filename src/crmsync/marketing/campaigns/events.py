"""The values the campaign runner works with: a claimed event and the campaign it is for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmsync.marketing.smartlists import SmartList


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    """One event a runner holds: a person to take through a campaign."""

    id: int
    campaign_id: int
    person_id: int
    kind: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FlowCampaign:
    """What the runner needs of a campaign: its rule, smart list and flow."""

    id: int
    name: str
    kind: str
    active: bool
    qualification: str
    smart_list: SmartList
    flow: tuple[dict[str, Any], ...]
    qualification_days: int | None = None
