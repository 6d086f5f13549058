"""What a flow step is handed and what it answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from crmsync.marketing.campaigns.writes import write_activities
from crmsync.marketing.values import utc_now_text


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
        write_activities(
            self.conn,
            [
                {
                    "person_id": self.person_id,
                    "type_id": type_id,
                    "activity_date": utc_now_text(),
                    "primary_value_id": primary_value_id,
                    "primary_value": primary_value,
                    "field_name": None,
                    "attributes": dict(attributes),
                    "campaign_id": self.campaign_id,
                }
            ],
        )


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """``status`` is done / skipped / failed; ``push`` asks the runner to send the person's
    queued Dynamics create now (real time, B32)."""

    status: str
    message: str = ""
    push: bool = False
    stop: bool = False  # the person left the flow (deleted)


StepFunction = Callable[[StepContext], StepOutcome]
