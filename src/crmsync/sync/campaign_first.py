"""A person not yet in Dynamics is synced first (R80, R82, B34).

Before Change Owner in Microsoft, Create Task in Microsoft or Add to Microsoft Campaign runs
for a person with no Dynamics record, :class:`SyncFirst` asks for the record through the
engine's one create path (:func:`~crmsync.sync.crm_create.request_crm_create`: its id chosen
and stored first, so never two) in a transaction of its own, and pushes it at once. The step
then finds the record; when the create could not be sent (sync disabled, Dynamics refused it)
the step fails with that reason and the create waits in the outbox like any other change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, select

from crmsync.errors import InvalidValueError
from crmsync.marketing.activity_log import activity, write_activities
from crmsync.marketing.activity_types import SYNC_LEAD_TO_MICROSOFT
from crmsync.marketing.campaigns.pushes import PushFunction
from crmsync.marketing.campaigns.triggers import record_trigger_events
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import persons
from crmsync.sync.crm_create import request_crm_create
from crmsync.sync.microsoft_steps import dynamics_record

NEEDS_RECORD = frozenset(
    {"change_owner_in_microsoft", "create_task_in_microsoft", "add_to_microsoft_campaign"}
)
"""The steps that need the person's lead or contact in Dynamics."""


class SyncFirst:
    """The runner's ``prepare`` hook: give the person a Dynamics record before the step."""

    def __init__(self, engine: Engine, push: PushFunction | None) -> None:
        self._engine = engine
        self._push = push

    def __call__(self, step_type: str, params: Mapping[str, Any], person_id: int) -> None:
        """Sync the person first when ``step_type`` needs a record they do not have."""
        if step_type not in NEEDS_RECORD:
            return
        with self._engine.connect() as conn:
            if dynamics_record(conn, person_id) is not None:
                return
        owner = params.get("owner") if step_type == "change_owner_in_microsoft" else None
        with self._engine.begin() as conn:
            take_write_lock(conn)
            if conn.execute(select(persons.c.id).where(persons.c.id == person_id)).first() is None:
                return
            try:
                asked = request_crm_create(
                    conn, person_id, "lead", owner=str(owner) if owner else None
                )
            except InvalidValueError:
                asked = request_crm_create(conn, person_id, "lead")
            if asked.queued:
                entry = activity(
                    person_id,
                    SYNC_LEAD_TO_MICROSOFT,
                    "Synced first for a Microsoft step",
                    {"Assign To": owner or "", "Sync As": "Lead", "CRM Id": asked.crm_id},
                    primary_value_id=person_id,
                )
                write_activities(conn, [entry])
                record_trigger_events(conn, [entry])
        if self._push is not None:
            self._push([person_id])
