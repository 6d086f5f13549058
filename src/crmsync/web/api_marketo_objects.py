"""Companies, opportunities, opportunity roles and sales persons (spec marketo-rest.md §7).

These objects are owned by Dynamics (B2). While the CRM sync is enabled, Marketo's rule
applies (§7.2, §10.10): describe and query work for companies, opportunities and sales
persons; their writes are refused with response-level 1018 "CRM Enabled"; every opportunity
role endpoint, reads included, is refused with 1018. While the sync is disabled the writes
go to the marketing database (``createOnly``, ``updateOnly`` or ``createOrUpdate`` by the
dedupe fields).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crmsync.web.api_marketo_leads import outcome_json
from crmsync.web.dispatch import MAX_RECORDS_PER_CALL, ApiCall, Handler, Route
from crmsync.web.envelope import ApiError, invalid_parameter, success

# REST path segment -> object type of the object service.
OBJECT_PATHS: dict[str, str] = {
    "companies": "company",
    "opportunities": "opportunity",
    "opportunities/roles": "opportunityRole",
    "salespersons": "salesperson",
}
READABLE_WHILE_SYNCING = frozenset({"company", "opportunity", "salesperson"})
ROLE_KEY = ("externalOpportunityId", "leadId", "role")


def crm_enabled() -> ApiError:
    """1018: the instance has a native CRM integration enabled (§3, §7.2)."""
    return ApiError("1018", "CRM Enabled")


def _guard(call: ApiCall, object_type: str, *, write: bool) -> None:
    if (write or object_type not in READABLE_WHILE_SYNCING) and call.services.crm_sync_enabled():
        raise crm_enabled()


def _describe(object_type: str) -> Handler:
    def describe(call: ApiCall) -> dict[str, Any]:
        _guard(call, object_type, write=False)
        return success([call.services.objects.describe(object_type)])

    describe.__doc__ = f"Describe {object_type} (§7.1)."
    return describe


def _compound_role_query(call: ApiCall, fields: list[str]) -> dict[str, Any]:
    """Opportunity roles by their compound key, given as JSON ``input`` records (§7.1)."""
    wanted: set[tuple[str, str, str]] = set()
    for record in call.input_list():
        if not isinstance(record, dict):
            raise invalid_parameter("Invalid data: input records must be objects")
        wanted.add(tuple(str(record.get(name, "")) for name in ROLE_KEY))  # type: ignore[arg-type]
    opportunity_ids = sorted({key[0] for key in wanted})
    shown = list(dict.fromkeys([*fields, *ROLE_KEY])) if fields else None
    items, _ = call.services.objects.query(
        "opportunityRole", "externalOpportunityId", opportunity_ids, shown, MAX_RECORDS_PER_CALL
    )
    matched = [
        item for item in items if tuple(str(item.get(name, "")) for name in ROLE_KEY) in wanted
    ]
    for seq, item in enumerate(matched):
        item["seq"] = seq
    return success(matched)


def _query(object_type: str) -> Handler:
    def query(call: ApiCall) -> dict[str, Any]:
        _guard(call, object_type, write=False)
        fields = call.params.get_list("fields")
        filter_type = call.params.require("filterType")
        if object_type == "opportunityRole" and filter_type == "dedupeFields":
            return _compound_role_query(call, fields)
        values = call.params.require_list("filterValues", MAX_RECORDS_PER_CALL)
        items, token = call.services.objects.query(
            object_type,
            filter_type,
            values,
            fields or None,
            call.params.batch_size(),
            call.params.get("nextPageToken") or None,
        )
        return success(list(items), next_page_token=token)

    query.__doc__ = f"Query {object_type} by a searchable field (§7.1)."
    return query


def _sync(object_type: str) -> Handler:
    def sync(call: ApiCall) -> dict[str, Any]:
        _guard(call, object_type, write=True)
        document = call.json_object()
        action = document.get("action") or "createOrUpdate"
        if not isinstance(action, str):
            raise invalid_parameter(f"Invalid action '{action}'")
        records = call.input_list()
        outcomes = call.services.objects.upsert(object_type, records, action=action)
        result = []
        for seq, outcome in enumerate(outcomes):
            item = outcome_json(outcome)
            result.append({"seq": seq, **item})
        return success(result)

    sync.__doc__ = f"Create or update {object_type} records (refused with 1018 while syncing)."
    return sync


def _delete(object_type: str) -> Handler:
    def delete(call: ApiCall) -> dict[str, Any]:
        _guard(call, object_type, write=True)
        raise ApiError(
            "1003",
            "Invalid data: these records are deleted in Dynamics; crmsync marks them deleted "
            "when the sync reads the deletion",
        )

    delete.__doc__ = f"Delete {object_type} records: refused (1018 while syncing)."
    return delete


def _routes() -> tuple[Route, ...]:
    routes: list[Route] = []
    factories: tuple[tuple[str, str, Callable[[str], Handler]], ...] = (
        ("GET", "/describe.json", _describe),
        ("GET", ".json", _query),
        ("POST", ".json", _sync),
        ("POST", "/delete.json", _delete),
    )
    # Longer paths first, so that "opportunities/roles" is not read as an opportunity id.
    for segment in sorted(OBJECT_PATHS, key=len, reverse=True):
        object_type = OBJECT_PATHS[segment]
        for method, suffix, factory in factories:
            routes.append(Route(method, f"/rest/v1/{segment}{suffix}", factory(object_type)))
    return tuple(routes)


ROUTES: tuple[Route, ...] = _routes()
