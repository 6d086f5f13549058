"""The Microsoft flow steps of trigger campaigns (B34, R80-R85): Change Owner in Microsoft,
Create Task in Microsoft, Add to / Remove from Microsoft Campaign.

Each runs in the step's transaction and writes to Dynamics through the product's Dynamics
client (its retries included) **before** that transaction commits with the step's result:

* a create carries an id crmsync chose from the event and the step (the task) or from the
  Dynamics campaign (its marketing lists), so a crash after Dynamics answered and before the
  commit makes the retried step meet its own record (``created_already``), never a second one;
* an owner change, adding a member (``AddMemberList``) and removing one are idempotent.

A Dynamics rejection writes its code and message to the person's activity log and the sync
errors, and the step fails for this person only; throttling and outages leave the event
pending (retried later). A person not yet in Dynamics is synced first (see
:class:`crmsync.sync.campaign_first.SyncFirst`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import CrmValue, LookupValue, WriteRequest, WriteResult, WriteStatus
from crmsync.errors import CrmsyncError, RecordNotFoundError, RetryLaterError
from crmsync.marketing.activity_log import sync_error, write_activities
from crmsync.marketing.activity_types import (
    ADD_TO_MICROSOFT_CAMPAIGN,
    CHANGE_OWNER_IN_MICROSOFT,
    CREATE_TASK_IN_MICROSOFT,
    REMOVE_FROM_MICROSOFT_CAMPAIGN,
)
from crmsync.marketing.campaigns.steps.base import StepContext, StepFunction, StepOutcome
from crmsync.marketing.campaigns.triggers import record_trigger_events
from crmsync.marketing.values import utc_now_text
from crmsync.store.tables import microsoft_campaign_members, now_utc, persons
from crmsync.sync.crm_create import set_sales_user
from crmsync.sync.failures import ErrorReport, record_errors
from crmsync.sync.links import links_of_local, load_baselines
from crmsync.sync.microsoft_campaigns import (
    chosen_list_id,
    find_campaign,
    list_name,
    remember_list,
)
from crmsync.sync.plan import CRM_TYPES

TASK_STATUS: dict[str, int] = {
    "not started": 2,
    "in progress": 3,
    "waiting on someone else": 4,
    "deferred": 7,
    "completed": 5,
}
"""Create Task's Status -> the task's Status Reason (statuscode) in Dynamics."""

DEFAULT_DUE_DAYS = 5
_TASK_NAMESPACE = uuid.UUID("0b7e4f7a-3c52-4d1e-a8a9-2e6f5c1d9b70")
_TOKEN = re.compile(r"\{\{\s*lead\.([A-Za-z0-9_]+)\s*\}\}")


def dynamics_record(conn: Connection, person_id: int) -> tuple[str, str] | None:
    """The person's lead or contact **as it exists in Dynamics** (entity, id), or ``None``
    when there is none yet (not linked, or its create not sent)."""
    for link in links_of_local(conn, "person", [person_id]):
        if link.entity in CRM_TYPES and load_baselines(conn, link.entity, [link.crm_id]):
            return link.entity, link.crm_id
    return None


def _lead_tokens(conn: Connection, person_id: int, text: str) -> str:
    """Replace ``{{lead.field}}`` tokens by the person's values (empty when unknown)."""
    if "{{" not in text:
        return text
    row = conn.execute(select(persons).where(persons.c.id == person_id)).first()
    values: dict[str, object] = {}
    if row is not None:
        by_key = dict(zip((c.key for c in persons.c), row, strict=True))
        custom = by_key.pop("custom", None) or {}
        values = {k.lower(): v for k, v in by_key.items()}
        values.update({str(k).lower(): v for k, v in dict(custom).items()})

    def one(match: re.Match[str]) -> str:
        value = values.get(match.group(1).lower())
        return "" if value is None else str(value)

    return _TOKEN.sub(one, text)


class MicrosoftSteps:
    """The four steps, bound to one Dynamics client."""

    def __init__(self, client: DynamicsClient) -> None:
        self._client = client

    def steps(self) -> dict[str, StepFunction]:
        """Step type -> function, for the campaign runner."""
        return {
            "change_owner_in_microsoft": self.change_owner,
            "create_task_in_microsoft": self.create_task,
            "add_to_microsoft_campaign": self.add_to_campaign,
            "remove_from_microsoft_campaign": self.remove_from_campaign,
        }

    # ---- helpers ---------------------------------------------------------------------------

    def _write(self, request: WriteRequest) -> WriteResult:
        (result,) = self._client.write_batch([request])
        if result.status in (WriteStatus.THROTTLED, WriteStatus.TRANSIENT):
            raise RetryLaterError(result.message or "Dynamics is busy", code=result.error_code)
        return result

    @staticmethod
    def _refused(
        ctx: StepContext,
        entity: str,
        crm_id: str | None,
        code: str | None,
        message: str,
        operation: str,
    ) -> StepOutcome:
        """A Dynamics rejection: sync error, activity with code and message, step failed."""
        record_errors(
            ctx.conn,
            [
                ErrorReport(
                    entity, "to_crm", operation, "person", ctx.person_id, crm_id, code, message
                )
            ],
        )
        entry = sync_error(
            ctx.person_id,
            entity=entity,
            crm_id=crm_id,
            direction="to_crm",
            code=code,
            message=message,
            when=utc_now_text(),
        )
        write_activities(ctx.conn, [replace(entry, campaign_id=ctx.campaign_id)])
        return StepOutcome("failed", f"{code or 'error'}: {message}")

    @staticmethod
    def _not_in_dynamics() -> StepOutcome:
        return StepOutcome(
            "failed",
            "the person is not in Dynamics yet: Sync Person to Microsoft could not create the "
            "record first (see the sync errors, or enable the sync)",
        )

    # ---- Change Owner in Microsoft (R80) ---------------------------------------------------

    def change_owner(self, ctx: StepContext) -> StepOutcome:
        """Make a sales user the owner of the person's lead or contact."""
        owner = str(ctx.params["owner"]).strip().lower()
        record = dynamics_record(ctx.conn, ctx.person_id)
        if record is None:
            return self._not_in_dynamics()
        entity, crm_id = record
        set_sales_user(ctx.conn, [ctx.person_id], owner)
        result = self._write(
            WriteRequest.update(entity, crm_id, {"ownerid": LookupValue(owner, "systemuser")})
        )
        if not result.ok:
            return self._refused(
                ctx, entity, crm_id, result.error_code, result.message or "", "update"
            )
        ctx.activity(CHANGE_OWNER_IN_MICROSOFT, owner, {"CRM Id": crm_id})
        return StepOutcome("done", f"{entity} {crm_id} owned by {owner}")

    # ---- Create Task in Microsoft (R81) ----------------------------------------------------

    def create_task(self, ctx: StepContext) -> StepOutcome:
        """Create a task regarding the person's lead or contact, due in ``dueIn`` days."""
        record = dynamics_record(ctx.conn, ctx.person_id)
        if record is None:
            return self._not_in_dynamics()
        entity, crm_id = record
        subject = _lead_tokens(ctx.conn, ctx.person_id, str(ctx.params["subject"]))[:200]
        description = _lead_tokens(
            ctx.conn, ctx.person_id, str(ctx.params.get("description") or "")
        )
        days = int(ctx.params.get("dueIn") or DEFAULT_DUE_DAYS)
        due = now_utc().replace(microsecond=0) + timedelta(days=days)
        status = TASK_STATUS[str(ctx.params.get("status") or "not started").lower()]
        task_id = str(uuid.uuid5(_TASK_NAMESPACE, f"{ctx.event_id}/{ctx.campaign_id}/{subject}"))
        values: dict[str, CrmValue] = {
            "subject": subject or "Follow up",
            "description": description or None,
            "scheduledend": due,
            # Regarding is polymorphic: its navigation property names the table (spec §2d)
            f"regardingobjectid_{entity}_task": LookupValue(crm_id, entity),
        }
        if status == 5:
            values["statecode"] = 1
        values["statuscode"] = status
        owner = ctx.params.get("owner")
        if owner:
            values["ownerid"] = LookupValue(str(owner).strip().lower(), "systemuser")
        result = self._write(WriteRequest.create("task", task_id, values))
        if not result.ok:
            return self._refused(
                ctx, "task", task_id, result.error_code, result.message or "", "create"
            )
        ctx.activity(
            CREATE_TASK_IN_MICROSOFT,
            subject,
            {"Due Date": due.date().isoformat(), "Owner": owner or "", "CRM Id": task_id},
        )
        return StepOutcome("done", f"task {task_id} regarding {entity} {crm_id}")

    # ---- Add to / Remove from Microsoft Campaign (R82, R83, R85) ---------------------------

    def add_to_campaign(self, ctx: StepContext) -> StepOutcome:
        """Add the person's lead or contact to the campaign's crmsync list (made once)."""
        name = str(ctx.params["campaign"])
        campaign = find_campaign(ctx.conn, name, self._client)
        if campaign is None or not campaign.active:
            return StepOutcome("failed", f"no active Dynamics campaign called {name!r}")
        record = dynamics_record(ctx.conn, ctx.person_id)
        if record is None:
            return self._not_in_dynamics()
        entity, crm_id = record
        list_id = campaign.list_id(entity)
        if list_id is None:
            list_id = chosen_list_id(campaign.crm_id, entity)
            made = self._write(
                WriteRequest.create(
                    "list",
                    list_id,
                    {
                        "listname": list_name(campaign.crm_id, entity),
                        "createdfromcode": 4 if entity == "lead" else 2,
                        "type": False,
                        "purpose": f"crmsync: members of the Dynamics campaign {campaign.name}"[
                            :512
                        ],
                    },
                )
            )
            if not made.ok:
                return self._refused(
                    ctx, "list", list_id, made.error_code, made.message or "", "create"
                )
            remember_list(ctx.conn, campaign.crm_id, entity, list_id)
        try:
            self._client.call_action(
                "AddMemberList", {"ListId": list_id, "EntityId": crm_id}, entity="list"
            )
        except RetryLaterError:
            raise
        except CrmsyncError as exc:
            return self._refused(ctx, entity, crm_id, exc.code, exc.message, "update")
        ctx.conn.execute(
            delete(microsoft_campaign_members).where(
                microsoft_campaign_members.c.crm_campaign_id == campaign.crm_id,
                microsoft_campaign_members.c.person_id == ctx.person_id,
            )
        )
        ctx.conn.execute(
            insert(microsoft_campaign_members).values(
                crm_campaign_id=campaign.crm_id,
                person_id=ctx.person_id,
                entity=entity,
                crm_member_id=crm_id,
                list_id=list_id,
                added_at=now_utc(),
            )
        )
        self._membership_activity(ctx, ADD_TO_MICROSOFT_CAMPAIGN, campaign.name, crm_id)
        return StepOutcome("done", f"{entity} {crm_id} added to {campaign.name}")

    def remove_from_campaign(self, ctx: StepContext) -> StepOutcome:
        """Remove the person from the campaign, only if crmsync's step added them (R83)."""
        name = str(ctx.params["campaign"])
        campaign = find_campaign(ctx.conn, name, self._client)
        if campaign is None:
            return StepOutcome("failed", f"no Dynamics campaign called {name!r}")
        added = ctx.conn.execute(
            select(
                microsoft_campaign_members.c.list_id, microsoft_campaign_members.c.crm_member_id
            ).where(
                microsoft_campaign_members.c.crm_campaign_id == campaign.crm_id,
                microsoft_campaign_members.c.person_id == ctx.person_id,
            )
        ).first()
        if added is None:
            return StepOutcome("skipped", f"not added to {campaign.name} by crmsync")
        list_id, crm_id = str(added[0]), str(added[1])
        try:
            self._client.call_action(
                "RemoveMemberList", {"ListId": list_id, "EntityId": crm_id}, entity="list"
            )
        except RecordNotFoundError:
            pass  # no longer a member (removed in Dynamics, or by this step before a crash)
        except RetryLaterError:
            raise
        except CrmsyncError as exc:
            return self._refused(ctx, "list", list_id, exc.code, exc.message, "update")
        ctx.conn.execute(
            delete(microsoft_campaign_members).where(
                microsoft_campaign_members.c.crm_campaign_id == campaign.crm_id,
                microsoft_campaign_members.c.person_id == ctx.person_id,
            )
        )
        self._membership_activity(ctx, REMOVE_FROM_MICROSOFT_CAMPAIGN, campaign.name, crm_id)
        return StepOutcome("done", f"{crm_id} removed from {campaign.name}")

    @staticmethod
    def _membership_activity(ctx: StepContext, type_id: int, name: str, crm_id: str) -> None:
        """The activity, which also fires Added to / Removed from Microsoft Campaign (R85)."""
        attributes: Mapping[str, object] = {"CRM Id": crm_id}
        ctx.activity(type_id, name, attributes)
        record_trigger_events(
            ctx.conn,
            [
                {
                    "person_id": ctx.person_id,
                    "type_id": type_id,
                    "primary_value": name,
                    "attributes": dict(attributes),
                }
            ],
        )
