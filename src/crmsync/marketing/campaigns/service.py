"""The campaign service: save, list, activate, run and request campaigns, read their results.

The CLI, the Marketo REST API and the admin pages are thin layers over this class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from crmsync.errors import InvalidValueError, RecordNotFoundError
from crmsync.marketing.activity_log import activity, write_activities
from crmsync.marketing.activity_types import REQUEST_CAMPAIGN
from crmsync.marketing.campaigns.choices import choice_filter, step_variants
from crmsync.marketing.campaigns.definitions import CampaignDefinition, parse_definition
from crmsync.marketing.campaigns.triggers import enqueue_batch_run, enqueue_request
from crmsync.marketing.fields import load_catalog
from crmsync.marketing.smartlists import SmartList, compile_smart_list
from crmsync.marketing.values import format_datetime, storable_ids, utc_now_text
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import (
    campaign_events,
    campaign_members,
    campaign_results,
    campaigns,
    persons,
    static_lists,
)

MAX_REQUEST_LEADS = 100
MAX_REQUEST_TOKENS = 100
API_SOURCE = "Web service API"


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    """A stored campaign: its id, definition and times."""

    id: int
    definition: CampaignDefinition
    created_at: datetime
    updated_at: datetime

    @property
    def is_requestable(self) -> bool:
        """Active, with a Campaign is Requested trigger whose source is the Web Service API
        (what the REST API's ``isTriggerable`` means)."""
        return self.definition.active and any(
            t.type == "campaign_requested" and t.params.get("source") == "web_service_api"
            for t in self.definition.triggers
        )

    def as_marketo(self) -> dict[str, object]:
        """The REST API's campaign record (spec marketo-rest §6.1)."""
        item: dict[str, object] = {
            "id": self.id,
            "name": self.definition.name,
            "description": self.definition.description,
            "type": self.definition.kind,
            "workspaceName": "Default",
            "createdAt": format_datetime(self.created_at),
            "updatedAt": format_datetime(self.updated_at),
        }
        if self.definition.kind == "trigger":
            item["active"] = self.definition.active
        return item

    def as_dict(self) -> dict[str, object]:
        """The admin shape: the definition plus id and times."""
        return {
            "id": self.id,
            **self.definition.as_dict(),
            "createdAt": format_datetime(self.created_at),
            "updatedAt": format_datetime(self.updated_at),
        }


def campaign_record(row: RowMapping) -> CampaignRecord:
    """A stored campaign row as a :class:`CampaignRecord`."""
    definition = parse_definition(
        {
            "name": row["name"],
            "description": row["description"],
            "type": row["kind"],
            "qualification": row["qualification"],
            "qualificationDays": row["qualification_days"],
            "active": bool(row["active"]),
            "triggers": row["triggers"],
            "smartList": row["smart_list"],
            "flow": row["flow"],
        }
    )
    return CampaignRecord(int(row["id"]), definition, row["created_at"], row["updated_at"])


class CampaignService:
    """Campaign definitions and what they did, on one database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- definitions ------------------------------------------------------------------------

    def _check_references(self, conn: Connection, definition: CampaignDefinition) -> None:
        compile_smart_list(conn, definition.smart_list)
        catalog = load_catalog(conn, "person")
        lists = {int(i) for i in conn.execute(select(static_lists.c.id)).scalars()}
        for number, step in enumerate(definition.flow, start=1):
            where = f"flow step {number}"
            for choice in step.params.get("choices") or []:
                compile_smart_list(conn, SmartList((choice_filter(choice["if"], where),)))
            for params in step_variants(step.as_dict(), where):
                if step.type == "change_data_value":
                    found = catalog.get(str(params["field"]))
                    if found is None or found.read_only:
                        raise InvalidValueError(
                            f"{where}: '{params['field']}' is not a writable person field"
                        )
                if "listId" in params and int(params["listId"]) not in lists:
                    raise InvalidValueError(f"{where}: static list {params['listId']} not found")
        for number, trigger in enumerate(definition.triggers, start=1):
            if (
                trigger.type == "data_value_changes"
                and catalog.get(trigger.params["field"]) is None
            ):
                raise InvalidValueError(
                    f"trigger {number}: unknown person field '{trigger.params['field']}'"
                )
            if "listId" in trigger.params and int(trigger.params["listId"]) not in lists:
                raise InvalidValueError(
                    f"trigger {number}: static list {trigger.params['listId']} not found"
                )

    def create(self, raw: Mapping[str, Any]) -> CampaignRecord:
        """Save a new campaign from its JSON shape; raise :class:`InvalidValueError`."""
        definition = parse_definition(dict(raw))
        now = datetime.now(UTC)
        try:
            with self._engine.begin() as conn:
                self._check_references(conn, definition)
                result = conn.execute(
                    campaigns.insert().values(
                        name=definition.name,
                        description=definition.description,
                        kind=definition.kind,
                        active=definition.active,
                        qualification=definition.qualification,
                        qualification_days=definition.qualification_days,
                        triggers=[t.as_dict() for t in definition.triggers],
                        smart_list=definition.smart_list.as_dict(),
                        flow=[s.as_dict() for s in definition.flow],
                        created_at=now,
                        updated_at=now,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                campaign_id = int(key[0])
        except IntegrityError:
            raise InvalidValueError(f"a campaign named '{definition.name}' exists") from None
        return self.get(campaign_id)

    def update(
        self,
        campaign_id: int,
        raw: Mapping[str, Any],
        *,
        replace: bool = False,
        check: Callable[[CampaignDefinition], None] | None = None,
    ) -> tuple[CampaignRecord, list[str]]:
        """Edit a saved campaign; returns it as saved and the names of the parts that changed
        (for the audit trail). Raise :class:`InvalidValueError`.

        ``raw`` holds the parts to change (name, description, qualification, triggers, smart
        list, flow), checked as a whole definition; with ``replace`` it is the whole new
        definition instead. The type (trigger or batch) stays: a campaign does not change kind.
        Whether a trigger campaign is active changes only through activate / deactivate, so an
        active campaign can be edited and stays active, as in Marketo: the edit applies to
        the people who enter the flow after it is saved, and a person already in the flow (in
        a Wait step) goes on from the next step by number in the saved flow.

        ``check`` sees the new definition before anything is saved and may refuse it (the
        schedule part of an edit, :func:`~crmsync.marketing.campaigns.edits.edit_campaign`).
        """
        current = self.get(campaign_id)
        before = current.definition.as_dict()
        given = {k: v for k, v in raw.items() if k not in {"id", "createdAt", "updatedAt"}}
        if "type" in given and given["type"] != current.definition.kind:
            raise InvalidValueError(
                f"a {current.definition.kind} campaign cannot become a {given['type']} "
                "campaign; create a new campaign instead"
            )
        if "active" in given and given["active"] != current.definition.active:
            raise InvalidValueError(
                "use activate or deactivate to switch a campaign on or off, not an edit"
            )
        merged = {**({} if replace else before), **given}
        merged["type"] = current.definition.kind
        merged["active"] = current.definition.active
        definition = parse_definition(merged)
        if check is not None:
            check(definition)
        after = definition.as_dict()
        changed = [key for key in after if after[key] != before.get(key)]
        if not changed:
            return current, []
        try:
            with self._engine.begin() as conn:
                self._check_references(conn, definition)
                conn.execute(
                    update(campaigns)
                    .where(campaigns.c.id == current.id)
                    .values(
                        name=definition.name,
                        description=definition.description,
                        qualification=definition.qualification,
                        qualification_days=definition.qualification_days,
                        triggers=[t.as_dict() for t in definition.triggers],
                        smart_list=definition.smart_list.as_dict(),
                        flow=[s.as_dict() for s in definition.flow],
                        updated_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            raise InvalidValueError(f"a campaign named '{definition.name}' exists") from None
        return self.get(current.id), changed

    def get(self, campaign_id: int) -> CampaignRecord:
        """One campaign; raise :class:`RecordNotFoundError` when there is none."""
        with self._engine.connect() as conn:
            row = (
                conn.execute(select(campaigns).where(campaigns.c.id == int(campaign_id)))
                .mappings()
                .first()
            )
        if row is None:
            raise RecordNotFoundError(f"campaign {campaign_id} not found", entity="campaign")
        return campaign_record(row)

    def find(self, name_or_id: str) -> CampaignRecord:
        """A campaign by id or exact name."""
        if name_or_id.strip().isdigit():
            return self.get(int(name_or_id))
        with self._engine.connect() as conn:
            found = conn.execute(
                select(campaigns.c.id).where(campaigns.c.name == name_or_id.strip())
            ).scalar()
        if found is None:
            raise RecordNotFoundError(f"campaign '{name_or_id[:100]}' not found")
        return self.get(int(found))

    def query(
        self,
        *,
        ids: Sequence[int] = (),
        names: Sequence[str] = (),
        requestable: bool | None = None,
        after_id: int = 0,
        limit: int = 300,
    ) -> tuple[list[CampaignRecord], bool]:
        """Campaigns in id order after ``after_id``, filtered; and whether more remain."""
        query = select(campaigns).where(campaigns.c.id > after_id).order_by(campaigns.c.id)
        if ids:
            query = query.where(campaigns.c.id.in_(storable_ids(ids)))
        if names:
            query = query.where(campaigns.c.name.in_(list(names)))
        with self._engine.connect() as conn:
            records = [campaign_record(row) for row in conn.execute(query).mappings()]
        if requestable is not None:
            records = [r for r in records if r.is_requestable == requestable]
        return records[:limit], len(records) > limit

    def set_active(self, campaign_id: int, active: bool) -> CampaignRecord:
        """Activate or deactivate a trigger campaign (batch campaigns are run, not active)."""
        record = self.get(campaign_id)
        if record.definition.kind != "trigger":
            raise InvalidValueError("only trigger campaigns are activated; run a batch campaign")
        with self._engine.begin() as conn:
            conn.execute(
                update(campaigns)
                .where(campaigns.c.id == record.id)
                .values(active=active, updated_at=datetime.now(UTC))
            )
        return self.get(campaign_id)

    # ---- running ----------------------------------------------------------------------------

    def run_batch(self, campaign_id: int) -> int:
        """Run a batch campaign now: queue everyone in its smart list; returns how many."""
        record = self.get(campaign_id)
        if record.definition.kind != "batch":
            raise InvalidValueError(
                "a trigger campaign runs when its triggers fire; 'run' is for batch campaigns"
            )
        if not record.definition.smart_list.filters:
            raise InvalidValueError("a batch campaign needs at least one smart list filter")
        with self._engine.begin() as conn:
            take_write_lock(conn)
            condition = compile_smart_list(conn, record.definition.smart_list)
            return enqueue_batch_run(conn, record.id, condition)

    def request(
        self,
        campaign_id: int,
        person_ids: Sequence[int],
        *,
        tokens: Mapping[str, str] | None = None,
        source: str = API_SOURCE,
    ) -> CampaignRecord:
        """Request Campaign (spec marketo-rest §6.2): queue persons for an active trigger
        campaign with a Campaign is Requested (Web Service API) trigger. Each known person
        gets a Request Campaign activity. Raises :class:`InvalidValueError` (1003)."""
        record = self.get(campaign_id)
        if record.definition.kind != "trigger" or not record.is_requestable:
            raise InvalidValueError(
                "campaign must be an active trigger campaign with a 'Campaign is Requested' "
                "trigger whose source is the Web Service API",
                code="1003",
            )
        if len(person_ids) > MAX_REQUEST_LEADS:
            raise InvalidValueError(f"at most {MAX_REQUEST_LEADS} leads", code="1003")
        if tokens and len(tokens) > MAX_REQUEST_TOKENS:
            raise InvalidValueError(f"at most {MAX_REQUEST_TOKENS} tokens", code="1003")
        wanted = storable_ids(int(i) for i in person_ids)
        with self._engine.begin() as conn:
            take_write_lock(conn)
            known = (
                [
                    int(i)
                    for i in conn.execute(
                        select(persons.c.id).where(persons.c.id.in_(wanted)).order_by(persons.c.id)
                    ).scalars()
                ]
                if wanted
                else []
            )
            enqueue_request(conn, record.id, known, source="web_service_api", tokens=tokens)
            now = utc_now_text()
            write_activities(
                conn,
                [
                    activity(
                        person_id,
                        REQUEST_CAMPAIGN,
                        record.definition.name,
                        {"Source": source},
                        campaign_id=record.id,
                        primary_value_id=record.id,
                        when=now,
                    )
                    for person_id in known
                ],
            )
        return record

    # ---- what happened ----------------------------------------------------------------------

    def results(self, campaign_id: int, *, limit: int = 100) -> list[dict[str, object]]:
        """The newest step results of a campaign, newest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(campaign_results)
                .where(campaign_results.c.campaign_id == int(campaign_id))
                .order_by(campaign_results.c.id.desc())
                .limit(max(1, limit))
            ).mappings()
            return [
                {
                    "personId": row["person_id"],
                    "step": row["step_index"],
                    "stepType": row["step_type"],
                    "status": row["status"],
                    "message": row["message"],
                    "at": format_datetime(row["created_at"]),
                }
                for row in rows
            ]

    def pending(self, campaign_id: int | None = None) -> int:
        """Campaign events not processed yet."""
        query = (
            select(func.count())
            .select_from(campaign_events)
            .where(campaign_events.c.processed_at.is_(None))
        )
        if campaign_id is not None:
            query = query.where(campaign_events.c.campaign_id == campaign_id)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def memberships(self, person_id: int) -> list[dict[str, object]]:
        """The smart campaigns a person has been through (spec marketo-rest §4.11)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(campaign_members)
                .where(campaign_members.c.person_id == int(person_id))
                .order_by(campaign_members.c.campaign_id)
            ).mappings()
            return [
                {
                    "smartCampaignId": row["campaign_id"],
                    "createdAt": format_datetime(row["first_at"]),
                    "updatedAt": format_datetime(row["last_at"]),
                }
                for row in rows
            ]
