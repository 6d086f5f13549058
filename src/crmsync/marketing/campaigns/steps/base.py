"""What a flow step is handed and what it answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from crmsync.marketing.activity_log import ActivityEntry, activity, write_activities


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


@dataclass(frozen=True, slots=True)
class ChunkContext:
    """Many persons of one batch campaign going through one step together, in the chunk's
    one transaction (see :mod:`crmsync.marketing.campaigns.chunks`)."""

    conn: Connection
    campaign_id: int
    campaign_name: str
    campaign_kind: str
    person_ids: tuple[int, ...]
    params: Mapping[str, Any]
    tokens: Mapping[str, str]

    def activities(self, entries: Sequence[ChunkActivity]) -> list[ActivityEntry]:
        """Append one activity per entry, each carrying this campaign's id, in one insert;
        returns the rows written (for the triggers they fire)."""
        rows = [
            activity(
                entry.person_id,
                entry.type_id,
                entry.primary_value,
                entry.attributes,
                campaign_id=self.campaign_id,
                primary_value_id=entry.primary_value_id,
            )
            for entry in entries
        ]
        write_activities(self.conn, rows)
        return rows


@dataclass(frozen=True, slots=True)
class ChunkActivity:
    """One activity a chunk step writes for one person."""

    person_id: int
    type_id: int
    primary_value: str | None
    attributes: Mapping[str, object]
    primary_value_id: int | None = None


ChunkStepFunction = Callable[[ChunkContext], Mapping[int, StepOutcome]]
"""A step for many persons at once: an outcome for each person id it was handed."""
