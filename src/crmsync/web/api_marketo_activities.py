"""Activity resources of the Marketo API (spec marketo-rest.md §5).

* ``GET /rest/v1/activities/types.json`` — activity types (§5.1)
* ``GET /rest/v1/activities/pagingtoken.json?sinceDatetime=…`` — a date-based token (§5.2)
* ``GET /rest/v1/activities.json`` — activities of up to 10 types, optionally for ≤ 30 leads
  or one static list (§5.3)
* ``GET /rest/v1/activities/leadchanges.json`` — New Lead / Change Data Value with per-field
  old and new values (§5.4)
* ``GET /rest/v1/activities/deletedleads.json`` — Delete Lead activities (§5.5)

The activity family always answers with ``nextPageToken`` and ``moreResult`` (§5.3, §9.4).
"""

from __future__ import annotations

from typing import Any

from crmsync.marketing.activities import ACTIVITY_TYPES, ActivityPage
from crmsync.marketing.activity_types import ActivityAttribute, ActivityType
from crmsync.web.dispatch import ApiCall, Route
from crmsync.web.envelope import ApiError, blank, success
from crmsync.web.params import parse_datetime

MAX_ACTIVITY_TYPES = 10
MAX_LEAD_IDS = 30


def _attribute_json(attribute: ActivityAttribute) -> dict[str, str]:
    return {"name": attribute.name, "dataType": attribute.data_type}


def activity_type_json(activity_type: ActivityType) -> dict[str, Any]:
    """Return the wire form of one activity type (§5.1)."""
    item: dict[str, Any] = {
        "id": activity_type.id,
        "name": activity_type.name,
        "description": activity_type.description,
    }
    if activity_type.primary_attribute is not None:
        item["primaryAttribute"] = _attribute_json(activity_type.primary_attribute)
    item["attributes"] = [_attribute_json(attribute) for attribute in activity_type.attributes]
    return item


def get_activity_types(call: ApiCall) -> dict[str, Any]:
    """§5.1: every activity type crmsync records."""
    return success([activity_type_json(item) for item in ACTIVITY_TYPES])


def get_paging_token(call: ApiCall) -> dict[str, Any]:
    """§5.2: a token for activities on or after ``sinceDatetime``; no ``result`` member."""
    since = parse_datetime(call.params.require("sinceDatetime"))
    token = call.services.activities.paging_token(since)
    return success(include_result=False, next_page_token=token)


def _page_reply(page: ActivityPage) -> dict[str, Any]:
    return success(
        list(page.items), next_page_token=page.next_page_token, more_result=page.more_result
    )


def _token(call: ApiCall) -> str:
    return call.params.require("nextPageToken")


def _lead_ids(call: ApiCall) -> list[int] | None:
    return call.params.get_int_list("leadIds", MAX_LEAD_IDS) or None


def get_activities(call: ApiCall) -> dict[str, Any]:
    """§5.3: activities of the given types after the token, oldest first."""
    token = _token(call)
    type_ids = call.params.require_int_list("activityTypeIds", MAX_ACTIVITY_TYPES)
    page = call.services.activities.list(
        token,
        type_ids,
        _lead_ids(call),
        call.params.get_int("listId"),
        call.params.batch_size(),
    )
    return _page_reply(page)


def get_lead_changes(call: ApiCall) -> dict[str, Any]:
    """§5.4: New Lead and Change Data Value activities touching the given ``fields``."""
    token = _token(call)
    fields = call.params.get_list("fields")
    if not fields:
        raise blank("fields")
    catalog = call.services.person_catalog()
    for name in fields:
        if catalog.get(name) is None:
            raise ApiError("1006", f"Field '{name}' not found")
    page = call.services.activities.lead_changes(
        token,
        fields,
        lead_ids=_lead_ids(call),
        list_id=call.params.get_int("listId"),
        batch_size=call.params.batch_size(),
    )
    return _page_reply(page)


def get_deleted_leads(call: ApiCall) -> dict[str, Any]:
    """§5.5: Delete Lead activities after the token."""
    token = _token(call)
    page = call.services.activities.deleted_leads(token, call.params.batch_size())
    return _page_reply(page)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/rest/v1/activities/types.json", get_activity_types),
    Route("GET", "/rest/v1/activities/pagingtoken.json", get_paging_token),
    Route("GET", "/rest/v1/activities.json", get_activities),
    Route("GET", "/rest/v1/activities/leadchanges.json", get_lead_changes),
    Route("GET", "/rest/v1/activities/deletedleads.json", get_deleted_leads),
)
