"""Campaign definitions: what a smart campaign is, checked once when it is saved.

A campaign is a **trigger** campaign (people flow through it one by one, in real time, when a
trigger fires) or a **batch** campaign (everyone in its smart list flows through it when it is
run). Each has a smart list (:mod:`crmsync.marketing.smartlists`), a flow of steps, and a
qualification rule: ``once`` (each person at most once, ever) or ``every_time``.

The JSON shape, used by definition files, the CLI and the admin API::

    {"name": "Welcome", "type": "trigger", "qualification": "once",
     "triggers": [{"type": "person_created"}],
     "smartList": {"filters": [{"field": "crmType", "operator": "is_empty"}]},
     "flow": [{"type": "sync_person_to_microsoft", "syncAs": "lead"}]}

Microsoft steps in batch campaigns follow Marketo (R78, R80-R83): *Sync Person to Microsoft*
is accepted in both kinds; Change Owner, Create Task and Add to / Remove from Microsoft
Campaign are trigger-campaign-only and are refused in a batch campaign with that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crmsync.errors import InvalidValueError
from crmsync.marketing.campaigns.choices import step_variants
from crmsync.marketing.campaigns.microsoft_params import parse_microsoft_step, parse_wait
from crmsync.marketing.smartlists import SmartList

KINDS = frozenset({"trigger", "batch"})
QUALIFICATIONS = frozenset({"once", "every_time", "every_n_days"})
MAX_QUALIFICATION_DAYS = 3650
MAX_STEPS = 100
MAX_TRIGGERS = 20

TRIGGER_TYPES: dict[str, str] = {
    "person_created": "Person is Created",
    "data_value_changes": "Data Value Changes",
    "added_to_list": "Added to List",
    "removed_from_list": "Removed from List",
    "campaign_requested": "Campaign is Requested",
    "added_to_microsoft_campaign": "Added to Microsoft Campaign",
    "removed_from_microsoft_campaign": "Removed from Microsoft Campaign",
    "person_synced_to_microsoft": "Person is Synced to Microsoft",
    "custom_object_added": "Custom Object is Added",
}
"""Trigger type -> the name Marketo shows."""

REQUEST_SOURCES = frozenset({"web_service_api", "campaign"})

STEP_TYPES: dict[str, str] = {
    "sync_person_to_microsoft": "Sync Person to Microsoft",
    "change_data_value": "Change Data Value",
    "add_to_list": "Add to List",
    "remove_from_list": "Remove from List",
    "request_campaign": "Request Campaign",
    "delete_person": "Delete Person",
    "wait": "Wait",
    "change_owner_in_microsoft": "Change Owner in Microsoft",
    "create_task_in_microsoft": "Create Task in Microsoft",
    "add_to_microsoft_campaign": "Add to Microsoft Campaign",
    "remove_from_microsoft_campaign": "Remove from Microsoft Campaign",
}
"""Flow step type -> the name Marketo shows."""

TRIGGER_ONLY_STEPS: dict[str, str] = {
    "change_owner_in_microsoft": "Change Owner in Microsoft",
    "create_task_in_microsoft": "Create Task in Microsoft",
    "add_to_microsoft_campaign": "Add to Microsoft Campaign",
    "remove_from_microsoft_campaign": "Remove from Microsoft Campaign",
}
"""Microsoft steps Marketo allows in trigger campaigns only (R80-R83)."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """One trigger: its type and constraints (``field``/``from``/``to``, ``listId``,
    ``source``), as given."""

    type: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The JSON shape."""
        return {"type": self.type, **self.params}


@dataclass(frozen=True, slots=True)
class Step:
    """One flow step: its type and parameters, as given."""

    type: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The JSON shape."""
        return {"type": self.type, **self.params}


@dataclass(frozen=True, slots=True)
class CampaignDefinition:
    """A whole campaign definition, valid by construction through :func:`parse_definition`."""

    name: str
    kind: str
    qualification: str
    triggers: tuple[Trigger, ...]
    smart_list: SmartList
    flow: tuple[Step, ...]
    description: str = ""
    active: bool = False
    qualification_days: int | None = None

    def as_dict(self) -> dict[str, object]:
        """The JSON shape."""
        return {
            "name": self.name,
            "description": self.description,
            "type": self.kind,
            "qualification": self.qualification,
            **({"qualificationDays": self.qualification_days} if self.qualification_days else {}),
            "active": self.active,
            "triggers": [t.as_dict() for t in self.triggers],
            "smartList": self.smart_list.as_dict(),
            "flow": [s.as_dict() for s in self.flow],
        }


def _text(raw: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidValueError(f"{where}: '{key}' must be a non-empty text")
    return value.strip()


def _positive_int(raw: Mapping[str, Any], key: str, where: str) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidValueError(f"{where}: '{key}' must be an id")
    try:
        number = int(value)
    except ValueError:
        raise InvalidValueError(f"{where}: '{key}' must be an id") from None
    if number <= 0:
        raise InvalidValueError(f"{where}: '{key}' must be a positive id")
    return number


def _params(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != "type"}


def parse_trigger(raw: object, number: int) -> Trigger:
    """Check one trigger; raise :class:`InvalidValueError` saying what is wrong."""
    where = f"trigger {number}"
    if not isinstance(raw, dict):
        raise InvalidValueError(f"{where} must be an object with a 'type'")
    kind = _text(raw, "type", where)
    if kind not in TRIGGER_TYPES:
        raise InvalidValueError(
            f"{where}: unknown trigger '{kind[:40]}' (one of {', '.join(TRIGGER_TYPES)})"
        )
    params = _params(raw)
    if kind == "data_value_changes":
        _text(raw, "field", where)
    if kind == "person_created" and "source" in raw:
        _text(raw, "source", where)
    if kind in {"added_to_list", "removed_from_list"}:
        params["listId"] = _positive_int(raw, "listId", where)
    if kind in {"added_to_microsoft_campaign", "removed_from_microsoft_campaign"} and (
        "campaign" in raw
    ):
        params["campaign"] = _text(raw, "campaign", where)
    if kind == "custom_object_added":
        params["entity"] = _text(raw, "entity", where).lower()
    if kind == "campaign_requested":
        source = raw.get("source", "web_service_api")
        if source not in REQUEST_SOURCES:
            raise InvalidValueError(
                f"{where}: 'source' must be one of {', '.join(sorted(REQUEST_SOURCES))}"
            )
        params["source"] = source
    return Trigger(kind, params)


def parse_step(raw: object, number: int, campaign_kind: str) -> Step:
    """Check one flow step, each of its choices included; raise :class:`InvalidValueError`
    saying what is wrong."""
    where = f"flow step {number}"
    if not isinstance(raw, dict):
        raise InvalidValueError(f"{where} must be an object with a 'type'")
    if "choices" in raw or "default" in raw:
        for variant in step_variants(raw, where):
            _parse_plain(variant, where, campaign_kind)
        return Step(_text(raw, "type", where), _params(raw))  # resolved per person when run
    return _parse_plain(raw, where, campaign_kind)


def _parse_plain(raw: dict[str, Any], where: str, campaign_kind: str) -> Step:
    kind = _text(raw, "type", where)
    if kind in TRIGGER_ONLY_STEPS:
        label = TRIGGER_ONLY_STEPS[kind]
        if campaign_kind == "batch":
            raise InvalidValueError(
                f"{where}: '{label}' works in trigger campaigns only, as in Marketo"
            )
    if kind not in STEP_TYPES:
        raise InvalidValueError(
            f"{where}: unknown step '{kind[:40]}' (one of {', '.join(STEP_TYPES)})"
        )
    params = _params(raw)
    if kind == "sync_person_to_microsoft":
        sync_as = str(raw.get("syncAs", "lead")).lower()
        if sync_as not in {"lead", "contact"}:
            raise InvalidValueError(f"{where}: 'syncAs' must be 'lead' or 'contact'")
        params["syncAs"] = sync_as
        owner = raw.get("owner")
        if owner is not None and (not isinstance(owner, str) or not owner.strip()):
            raise InvalidValueError(f"{where}: 'owner' must be a sales user's Dynamics id")
    elif kind == "change_data_value":
        _text(raw, "field", where)
        if "value" not in raw:
            raise InvalidValueError(f"{where}: 'value' is required (null empties the field)")
    elif kind in {"add_to_list", "remove_from_list"}:
        params["listId"] = _positive_int(raw, "listId", where)
    elif kind == "request_campaign":
        params["campaignId"] = _positive_int(raw, "campaignId", where)
    elif kind == "wait":
        params.update(parse_wait(raw, where))
    elif kind in TRIGGER_ONLY_STEPS:
        params.update(parse_microsoft_step(kind, raw, where))
    return Step(kind, params)


def parse_definition(raw: object) -> CampaignDefinition:
    """Read a campaign definition in its JSON shape; raise :class:`InvalidValueError` naming
    the first problem. Fields and lists the steps name are checked against the database by
    :class:`~crmsync.marketing.campaigns.service.CampaignService` when saving."""
    if not isinstance(raw, dict):
        raise InvalidValueError("a campaign definition must be an object")
    name = _text(raw, "name", "campaign")
    if len(name) > 255:
        raise InvalidValueError("campaign: 'name' is longer than 255 characters")
    kind = raw.get("type", "trigger")
    if kind not in KINDS:
        raise InvalidValueError("campaign: 'type' must be 'trigger' or 'batch'")
    qualification = raw.get("qualification", "once")
    if qualification not in QUALIFICATIONS:
        raise InvalidValueError(
            "campaign: 'qualification' must be 'once', 'every_time' or 'every_n_days'"
        )
    days = raw.get("qualificationDays")
    if qualification == "every_n_days":
        if (
            isinstance(days, bool)
            or not isinstance(days, int)
            or not 1 <= days <= MAX_QUALIFICATION_DAYS
        ):
            raise InvalidValueError(
                "campaign: 'every_n_days' needs 'qualificationDays', a number of days "
                f"(1-{MAX_QUALIFICATION_DAYS})"
            )
    else:
        days = None
    triggers_raw = raw.get("triggers", [])
    flow_raw = raw.get("flow", [])
    if not isinstance(triggers_raw, list) or len(triggers_raw) > MAX_TRIGGERS:
        raise InvalidValueError(f"campaign: 'triggers' must be a list of at most {MAX_TRIGGERS}")
    if not isinstance(flow_raw, list) or not 0 < len(flow_raw) <= MAX_STEPS:
        raise InvalidValueError(f"campaign: 'flow' must be a list of 1 to {MAX_STEPS} steps")
    triggers = tuple(parse_trigger(t, n) for n, t in enumerate(triggers_raw, start=1))
    if kind == "trigger" and not triggers:
        raise InvalidValueError("campaign: a trigger campaign needs at least one trigger")
    if kind == "batch" and triggers:
        raise InvalidValueError("campaign: a batch campaign has no triggers (it is run)")
    flow = tuple(parse_step(s, n, kind) for n, s in enumerate(flow_raw, start=1))
    description = _text(raw, "description", "campaign", required=False)
    active = raw.get("active", False)
    if not isinstance(active, bool):
        raise InvalidValueError("campaign: 'active' must be true or false")
    return CampaignDefinition(
        name,
        kind,
        qualification,
        triggers,
        SmartList.from_dict(raw.get("smartList")),
        flow,
        description,
        active and kind == "trigger",
        days,
    )
