"""What the campaign pages and the admin API show about campaigns, read with a few grouped
queries: a summary row per campaign (members, last run), the results of each flow step with
counts per status and the latest failures, and a page of a smart list's members.

Definitions are parsed from the text an admin pastes (JSON or TOML, the shape of
``docs/campaigns.md``); the campaign service checks them.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from crmsync.errors import InvalidValueError
from crmsync.marketing.campaigns.definitions import STEP_TYPES, TRIGGER_ONLY_STEPS, TRIGGER_TYPES
from crmsync.marketing.campaigns.service import CampaignRecord, CampaignService
from crmsync.marketing.smartlists import member_ids
from crmsync.store.tables import campaign_members, campaign_results
from crmsync.web.admin.queries import PAGE_SIZE, person_labels

MAX_DEFINITION_CHARS = 100_000
FAILED_STATUSES = ("failed", "refused")
STEP_NAMES = {**STEP_TYPES, **TRIGGER_ONLY_STEPS}


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """One row of the campaigns list."""

    record: CampaignRecord
    members: int
    last_run: datetime | None

    @property
    def trigger_summary(self) -> str:
        """The triggers (trigger campaigns) or "Batch: run on request"."""
        definition = self.record.definition
        if definition.kind == "batch":
            return "Batch: run on request"
        names = [TRIGGER_TYPES.get(t.type, t.type) for t in definition.triggers]
        return ", ".join(names) or "No trigger"

    @property
    def steps_summary(self) -> str:
        """The flow's step names, in order."""
        return " → ".join(STEP_NAMES.get(s.type, s.type) for s in self.record.definition.flow)


@dataclass(frozen=True, slots=True)
class StepResults:
    """What one flow step did: counts per status and its latest failures."""

    index: int
    type: str
    name: str
    counts: dict[str, int]
    failures: list[dict[str, Any]]


def parse_definition_text(text: str) -> dict[str, Any]:
    """A campaign definition from pasted JSON (starting with ``{``) or TOML."""
    stripped = text.strip()
    if not stripped:
        raise InvalidValueError("Enter the campaign definition.")
    if len(stripped) > MAX_DEFINITION_CHARS:
        raise InvalidValueError(
            f"The definition is longer than {MAX_DEFINITION_CHARS:,} characters."
        )
    try:
        raw: object = json.loads(stripped) if stripped.startswith("{") else tomllib.loads(stripped)
    except json.JSONDecodeError as exc:
        raise InvalidValueError(f"The definition is not valid JSON: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidValueError(f"The definition is not valid TOML: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidValueError("The definition must be one campaign (a JSON object).")
    return raw


def campaign_summaries(engine: Engine) -> list[CampaignSummary]:
    """Every campaign with how many people went through it and when one last did."""
    records, _ = CampaignService(engine).query(limit=10_000)
    with engine.connect() as conn:
        members: dict[int, int] = dict(
            conn.execute(
                select(campaign_members.c.campaign_id, func.count()).group_by(
                    campaign_members.c.campaign_id
                )
            ).all()
        )
        last_runs: dict[int, datetime] = dict(
            conn.execute(
                select(
                    campaign_members.c.campaign_id, func.max(campaign_members.c.last_at)
                ).group_by(campaign_members.c.campaign_id)
            ).all()
        )
    return [CampaignSummary(r, int(members.get(r.id, 0)), last_runs.get(r.id)) for r in records]


def campaign_summary(engine: Engine, record: CampaignRecord) -> CampaignSummary:
    """The summary of one campaign."""
    with engine.connect() as conn:
        count, last = conn.execute(
            select(func.count(), func.max(campaign_members.c.last_at)).where(
                campaign_members.c.campaign_id == record.id
            )
        ).one()
    return CampaignSummary(record, int(count), last)


def step_results(
    conn: Connection, record: CampaignRecord, *, failures: int = 10
) -> list[StepResults]:
    """Per flow step: how many people it did, skipped or failed, and its latest failures
    with the person's name and e-mail."""
    counts: dict[int, dict[str, int]] = {}
    for index, status, count in conn.execute(
        select(campaign_results.c.step_index, campaign_results.c.status, func.count())
        .where(campaign_results.c.campaign_id == record.id)
        .group_by(campaign_results.c.step_index, campaign_results.c.status)
    ).all():
        counts.setdefault(int(index), {})[str(status)] = int(count)
    failed = [
        dict(row)
        for row in conn.execute(
            select(campaign_results)
            .where(
                campaign_results.c.campaign_id == record.id,
                campaign_results.c.status.in_(FAILED_STATUSES),
            )
            .order_by(campaign_results.c.id.desc())
            .limit(failures * max(1, len(record.definition.flow)))
        ).mappings()
    ]
    labels = person_labels(conn, [int(r["person_id"]) for r in failed])
    steps = []
    for number, step in enumerate(record.definition.flow, start=1):
        mine = [r for r in failed if int(r["step_index"]) == number]  # the runner counts from 1
        for row in mine:
            row["label"] = labels.get(int(row["person_id"]))
        steps.append(
            StepResults(
                index=number,
                type=step.type,
                name=STEP_NAMES.get(step.type, step.type),
                counts=counts.get(number, {}),
                failures=mine[:failures],
            )
        )
    return steps


def member_page(
    conn: Connection, record: CampaignRecord, *, after_id: int = 0
) -> list[dict[str, Any]]:
    """A page of the people in the campaign's smart list now, with names and e-mails."""
    if not record.definition.smart_list.filters:
        return []
    ids = member_ids(conn, record.definition.smart_list, after_id=after_id, limit=PAGE_SIZE)
    labels = person_labels(conn, ids)
    return [{"id": i, **labels.get(i, {"name": "", "email": ""})} for i in ids]
