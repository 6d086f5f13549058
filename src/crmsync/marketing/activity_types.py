"""Activity types: Marketo's ids where they exist (spec marketo-rest §5.1) and our own.

Ids below 500 are Marketo's published ids. crmsync's own types (sync errors, collisions and
the Microsoft flow steps whose Marketo ids are unpublished) use the range **500–599**, clear
of every published id and of the custom range (100000+).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ActivityAttribute:
    """One attribute of an activity type: its name and Marketo data type."""

    name: str
    data_type: str


@dataclass(frozen=True, slots=True)
class ActivityType:
    """An activity type as ``GET /rest/v1/activities/types.json`` describes it."""

    id: int
    name: str
    description: str
    primary_attribute: ActivityAttribute | None
    attributes: tuple[ActivityAttribute, ...]


def _a(*pairs: tuple[str, str]) -> tuple[ActivityAttribute, ...]:
    return tuple(ActivityAttribute(name, kind) for name, kind in pairs)


NEW_LEAD = 12
CHANGE_DATA_VALUE = 13
ADD_TO_LIST = 24
REMOVE_FROM_LIST = 25
DELETE_LEAD = 37
REQUEST_CAMPAIGN = 47
SYNC_LEAD_TO_MICROSOFT = 300
# crmsync's own range (500-599)
SYNC_ERROR = 500
SYNC_COLLISION = 501
CHANGE_OWNER_IN_MICROSOFT = 502
CREATE_TASK_IN_MICROSOFT = 503
ADD_TO_MICROSOFT_CAMPAIGN = 504
REMOVE_FROM_MICROSOFT_CAMPAIGN = 505
DELETE_LEAD_FROM_MICROSOFT = 506
LEAD_SYNCED_FROM_MICROSOFT = 507

_LEAD_ID = ActivityAttribute("Lead ID", "integer")
_SOURCE = ("Source", "string")

ACTIVITY_TYPES: tuple[ActivityType, ...] = (
    ActivityType(
        NEW_LEAD,
        "New Lead",
        "New person",
        _LEAD_ID,
        _a(("Created Date", "date"), ("Source Type", "string"), ("Lead Source", "string")),
    ),
    ActivityType(
        CHANGE_DATA_VALUE,
        "Change Data Value",
        "Changed attribute value for a person",
        ActivityAttribute("Attribute Name", "string"),
        _a(("New Value", "string"), ("Old Value", "string"), ("Reason", "string"), _SOURCE),
    ),
    ActivityType(
        ADD_TO_LIST,
        "Add to List",
        "Person added to a static list",
        ActivityAttribute("List ID", "integer"),
        _a(_SOURCE),
    ),
    ActivityType(
        REMOVE_FROM_LIST,
        "Remove from List",
        "Person removed from a static list",
        ActivityAttribute("List ID", "integer"),
        _a(_SOURCE),
    ),
    ActivityType(DELETE_LEAD, "Delete Lead", "Delete person", _LEAD_ID, _a(_SOURCE)),
    ActivityType(
        REQUEST_CAMPAIGN,
        "Request Campaign",
        "Request a smart campaign for a person",
        ActivityAttribute("Campaign ID", "integer"),
        _a(_SOURCE),
    ),
    ActivityType(
        SYNC_LEAD_TO_MICROSOFT,
        "Sync Lead to Microsoft",
        "Person synced to Microsoft Dynamics",
        _LEAD_ID,
        _a(("Assign To", "string"), ("Sync As", "string"), ("CRM Id", "string")),
    ),
    ActivityType(
        SYNC_ERROR,
        "Microsoft Sync Error",
        "A change to this person was rejected during the Dynamics sync (crmsync)",
        ActivityAttribute("Operation", "string"),
        _a(
            ("Direction", "string"),
            ("Error Code", "string"),
            ("Message", "text"),
            ("Entity", "string"),
            ("CRM Id", "string"),
        ),
    ),
    ActivityType(
        SYNC_COLLISION,
        "Microsoft Sync Collision",
        "A field changed on both sides; one value won (crmsync)",
        ActivityAttribute("Attribute Name", "string"),
        _a(
            ("Marketing Value", "string"),
            ("CRM Value", "string"),
            ("Baseline Value", "string"),
            ("Winner", "string"),
            ("Rule", "string"),
        ),
    ),
    ActivityType(
        CHANGE_OWNER_IN_MICROSOFT,
        "Change Owner in Microsoft",
        "Owner of the Dynamics record changed by a flow step (crmsync)",
        ActivityAttribute("Owner", "string"),
        _a(("CRM Id", "string")),
    ),
    ActivityType(
        CREATE_TASK_IN_MICROSOFT,
        "Create Task in Microsoft",
        "Task created in Dynamics by a flow step (crmsync)",
        ActivityAttribute("Subject", "string"),
        _a(("Due Date", "date"), ("Owner", "string"), ("CRM Id", "string")),
    ),
    ActivityType(
        ADD_TO_MICROSOFT_CAMPAIGN,
        "Add to Microsoft Campaign",
        "Person added to a Dynamics marketing list (crmsync)",
        ActivityAttribute("Campaign", "string"),
        _a(("CRM Id", "string")),
    ),
    ActivityType(
        REMOVE_FROM_MICROSOFT_CAMPAIGN,
        "Remove from Microsoft Campaign",
        "Person removed from a Dynamics marketing list (crmsync)",
        ActivityAttribute("Campaign", "string"),
        _a(("CRM Id", "string")),
    ),
    ActivityType(
        DELETE_LEAD_FROM_MICROSOFT,
        "Delete Lead from Microsoft",
        "The person's Dynamics record was deleted in Dynamics (crmsync)",
        _LEAD_ID,
        _a(("Entity", "string"), ("CRM Id", "string")),
    ),
    ActivityType(
        LEAD_SYNCED_FROM_MICROSOFT,
        "Lead Synced from Microsoft",
        "Person created or updated from a Dynamics record (crmsync)",
        _LEAD_ID,
        _a(("Entity", "string"), ("CRM Id", "string"), ("Changed Fields", "text")),
    ),
)

ACTIVITY_TYPES_BY_ID: dict[int, ActivityType] = {t.id: t for t in ACTIVITY_TYPES}
