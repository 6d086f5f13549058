"""Smart campaigns over the Marketo REST API (spec marketo-rest.md §6.1, §6.2, §4.11).

* ``GET /rest/v1/campaigns.json`` — campaigns by ``id`` / ``name``, ``isTriggerable``, paged
  (``batchSize`` at most 300, ``nextPageToken``); ``POST ...?_method=GET`` with a form body too
* ``GET /rest/v1/campaigns/{campaignId}.json`` — one campaign (1013 when unknown)
* ``POST /rest/v1/campaigns/{campaignId}/trigger.json`` — Request Campaign: at most 100 leads
  and 100 ``{{my.token}}`` tokens; 1003 for a batch campaign or one that cannot be requested
* ``POST /rest/v1/campaigns/{campaignId}/schedule.json`` — Schedule Campaign (batch campaigns;
  ``runAt`` at the earliest in five minutes, 1042 beyond two years)
* ``GET /rest/v1/leads/{leadId}/smartCampaignMembership.json`` — the campaigns a lead went
  through, with ``moreResult``
"""

from __future__ import annotations

from typing import Any

from crmsync.errors import InputError, RecordNotFoundError
from crmsync.marketing.campaigns.schedules import CampaignSchedules
from crmsync.marketing.campaigns.service import MAX_REQUEST_LEADS, MAX_REQUEST_TOKENS
from crmsync.marketing.persons import decode_position, encode_position
from crmsync.web.dispatch import ApiCall, Route
from crmsync.web.envelope import ApiError, invalid_parameter, success
from crmsync.web.params import as_record_id, parse_datetime


def get_campaigns(call: ApiCall) -> dict[str, Any]:
    """Campaigns in id order, filtered by ``id``, ``name`` and ``isTriggerable``, paged."""
    token = call.params.get("nextPageToken")
    try:
        after = decode_position(token) if token else 0
    except InputError as exc:
        raise ApiError(exc.code or "1003", exc.message) from exc
    requestable = call.params.get_bool("isTriggerable") if "isTriggerable" in call.params else None
    records, more = call.services.campaigns.query(
        ids=call.params.get_int_list("id"),
        names=call.params.get_list("name"),
        requestable=requestable,
        after_id=after,
        limit=call.params.batch_size(),
    )
    next_token = encode_position(records[-1].id) if more and records else None
    return success([r.as_marketo() for r in records], next_page_token=next_token)


def get_campaign(call: ApiCall) -> dict[str, Any]:
    """One campaign by id; 1013 when there is none."""
    try:
        record = call.services.campaigns.get(call.path_int("campaignId"))
    except RecordNotFoundError as exc:
        raise ApiError("1013", "Campaign not found") from exc
    return success([record.as_marketo()])


def _tokens(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise invalid_parameter("Invalid data: 'tokens' must be an array")
    if len(raw) > MAX_REQUEST_TOKENS:
        raise invalid_parameter(f"Invalid data: at most {MAX_REQUEST_TOKENS} tokens")
    tokens: dict[str, str] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise invalid_parameter("Invalid data: each token needs a 'name' and a 'value'")
        name = item["name"].strip()
        if not (name.startswith("{{my.") and name.endswith("}}")):
            raise invalid_parameter(f"Invalid token name '{name[:60]}': use {{{{my.name}}}}")
        value = item.get("value")
        tokens[name] = "" if value is None else str(value)
    return tokens


def trigger_campaign(call: ApiCall) -> dict[str, Any]:
    """Request Campaign: queue the leads for an active trigger campaign with a Campaign is
    Requested (Web Service API) trigger; unknown lead ids are left out silently."""
    campaign_id = call.path_int("campaignId")
    document = call.json_object() if call.has_body() else {}
    body = document.get("input") or {}
    if not isinstance(body, dict):
        raise invalid_parameter("Invalid data: 'input' must be an object")
    leads = body.get("leads") or []
    if not isinstance(leads, list) or not leads:
        raise ApiError("701", "'leads' cannot be blank")
    if len(leads) > MAX_REQUEST_LEADS:
        raise invalid_parameter(f"Invalid data: at most {MAX_REQUEST_LEADS} leads")
    ids = []
    for lead in leads:
        lead_id = as_record_id(lead.get("id")) if isinstance(lead, dict) else None
        if lead_id is None:
            raise invalid_parameter("Invalid data: each lead needs a numeric 'id'")
        ids.append(lead_id)
    tokens = _tokens(body.get("tokens"))
    try:
        record = call.services.campaigns.request(
            campaign_id, ids, tokens=tokens, source=call.services.source
        )
    except RecordNotFoundError as exc:
        raise ApiError("1013", "Campaign not found") from exc
    except InputError as exc:
        raise ApiError(exc.code or "1003", exc.message) from exc
    return success([{"id": record.id}])


def schedule_campaign(call: ApiCall) -> dict[str, Any]:
    """Schedule Campaign: run a batch campaign at ``runAt`` (default and earliest: in five
    minutes; 1042 beyond two years), with optional ``{{my.token}}`` tokens."""
    campaign_id = call.path_int("campaignId")
    document = call.json_object() if call.has_body() else {}
    body = document.get("input") or {}
    if not isinstance(body, dict):
        raise invalid_parameter("Invalid data: 'input' must be an object")
    if body.get("cloneToProgramName"):
        raise invalid_parameter("cloneToProgramName is not supported: crmsync has no programs")
    run_at = None
    if body.get("runAt"):
        run_at = parse_datetime(str(body["runAt"]))  # 704 when not a date
    tokens = _tokens(body.get("tokens"))
    try:
        schedules = CampaignSchedules(call.services.engine)
        record = schedules.schedule(campaign_id, run_at=run_at, tokens=tokens)
    except RecordNotFoundError as exc:
        raise ApiError("1013", "Campaign not found") from exc
    except InputError as exc:
        raise ApiError(exc.code or "1003", exc.message) from exc
    return success([{"id": record.id}])


def smart_campaign_membership(call: ApiCall) -> dict[str, Any]:
    """The smart campaigns a lead has been through (spec §4.11)."""
    items = call.services.campaigns.memberships(call.path_int("leadId"))
    return success(items, more_result=False)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/rest/v1/campaigns.json", get_campaigns),
    Route("GET", "/rest/v1/campaigns/{campaignId}.json", get_campaign),
    Route("POST", "/rest/v1/campaigns/{campaignId}/trigger.json", trigger_campaign),
    Route("POST", "/rest/v1/campaigns/{campaignId}/schedule.json", schedule_campaign),
    Route("GET", "/rest/v1/leads/{leadId}/smartCampaignMembership.json", smart_campaign_membership),
)
