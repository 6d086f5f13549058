"""What a flow step is handed and what it answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from crmsync.marketing.activity_log import activity, write_activities


@dataclass(frozen=True, slots=True)
class StepContext:
    """One person going through one step of one campaign, in the step's transaction."""

    conn: Connection
    campaign_id: int
    campaign_name: str
    campaign_kind: str
    person_id: int
    event_id: int
    params: Mapping[str, Any]
    tokens: Mapping[str, str]

    def activity(
        self,
        type_id: int,
        primary_value: str | None,
        attributes: Mapping[str, object],
        *,
        primary_value_id: int | None = None,
    ) -> None:
        """Append an activity for the person, carrying this campaign's id."""
        entry = activity(
            self.person_id,
            type_id,
            primary_value,
            attributes,
            campaign_id=self.campaign_id,
            primary_value_id=primary_value_id,
        )
        write_activities(self.conn, [entry])


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """``status`` is done / skipped / failed; ``push`` asks the runner to send the person's
    queued Dynamics create now (real time, B32)."""

    status: str
    message: str = ""
    push: bool = False
    stop: bool = False  # the person left the flow (deleted)
    wait_until: datetime | None = None  # a Wait step: the flow goes on at this time


StepFunction = Callable[[StepContext], StepOutcome]
