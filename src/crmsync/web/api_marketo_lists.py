"""Static lists and their members (spec marketo-rest.md §6.4, §4.12).

* ``GET /rest/v1/lists.json`` and ``GET /rest/v1/lists/{listId}.json``
* ``POST /rest/v1/lists/{listId}/leads.json`` — add (ids in the query or a JSON ``input``)
* ``DELETE /rest/v1/lists/{listId}/leads.json`` — remove
* ``GET /rest/v1/lists/{listId}/leads/ismember.json`` — membership check
* ``GET /rest/v1/lists/{listId}/leads.json`` and the legacy ``/list/{listId}/leads.json`` —
  the list's leads, paged
* ``POST /rest/asset/v1/staticLists.json`` — create a list (the asset API form that Marketo
  clients use; form fields ``name``, ``folder``, ``description``)
* ``GET /rest/asset/v1/staticList/{id}.json`` and ``…/staticList/byName.json?name=`` — one list
* ``GET /rest/asset/v1/staticLists.json?offset=&maxReturn=`` — browse lists
"""

from __future__ import annotations

import json
from typing import Any

from crmsync.errors import InputError
from crmsync.marketing.lists import OBJECT_EXISTS
from crmsync.marketing.outcomes import RecordOutcome
from crmsync.web.api_marketo_leads import outcomes_by_id
from crmsync.web.dispatch import MAX_RECORDS_PER_CALL, ApiCall, Route
from crmsync.web.envelope import ApiError, invalid_parameter, success

MAX_LIST_NAME_LENGTH = 255


def _membership_call(call: ApiCall, operation: str) -> dict[str, Any]:
    list_id = call.path_int("listId")
    raw_ids = call.input_ids("id")
    lists = call.services.lists
    source = call.services.source

    def act(ids: list[int]) -> list[RecordOutcome]:
        if operation == "add":
            return lists.add_members(list_id, ids, source=source)
        if operation == "remove":
            return lists.remove_members(list_id, ids, source=source)
        return lists.is_member(list_id, ids)

    return outcomes_by_id(raw_ids, act)


def add_to_list(call: ApiCall) -> dict[str, Any]:
    """Add leads to a static list: ``added`` or skipped 1004 per id."""
    return _membership_call(call, "add")


def remove_from_list(call: ApiCall) -> dict[str, Any]:
    """Remove leads from a static list: ``removed`` or skipped 1004/1015 per id."""
    return _membership_call(call, "remove")


def member_of_list(call: ApiCall) -> dict[str, Any]:
    """Membership check: ``memberof``, ``notmemberof`` or skipped 1004 per id."""
    return _membership_call(call, "ismember")


def get_lists(call: ApiCall) -> dict[str, Any]:
    """Static lists filtered by ``id`` and/or ``name``, paged."""
    items, token = call.services.lists.query(
        call.params.get_int_list("id") or None,
        call.params.get_list("name") or None,
        call.params.batch_size(),
        call.params.get("nextPageToken") or None,
    )
    return success(list(items), next_page_token=token)


def get_list(call: ApiCall) -> dict[str, Any]:
    """One static list; an unknown id is 1013 Object not found."""
    item = call.services.lists.get(call.path_int("listId"))
    if item is None:
        raise ApiError("1013", "Object not found")
    return success([item])


def get_list_leads(call: ApiCall) -> dict[str, Any]:
    """The leads of a static list with the requested ``fields``, paged (§4.12)."""
    items, token = call.services.lists.members(
        call.path_int("listId"),
        call.params.get_list("fields") or None,
        call.params.batch_size(),
        call.params.get("nextPageToken") or None,
    )
    return success(list(items), next_page_token=token)


def create_static_list(call: ApiCall) -> dict[str, Any]:
    """Asset API: create a static list from form fields ``name``, ``folder``, ``description``."""
    name = call.params.require("name")
    if len(name) > MAX_LIST_NAME_LENGTH:
        raise invalid_parameter(f"Invalid name: at most {MAX_LIST_NAME_LENGTH} characters")
    description = call.params.get("description") or ""
    folder: dict[str, Any] = {"id": 1, "type": "Folder"}
    raw_folder = call.params.get("folder")
    if raw_folder:
        try:
            parsed = json.loads(raw_folder)
        except (ValueError, RecursionError):
            raise invalid_parameter("Invalid value for 'folder'") from None
        if isinstance(parsed, dict):
            folder = {"id": parsed.get("id", 1), "type": parsed.get("type", "Folder")}
    try:
        list_id = call.services.lists.create(name, description)
    except InputError as exc:
        # The asset API names an existing list 709 where the lead database says 1017 (§6.4);
        # every other error is answered by the dispatcher (web.error_answers).
        if exc.code != OBJECT_EXISTS:
            raise
        raise ApiError("709", f"Static List with name '{name}' already exists") from exc
    item = call.services.lists.get(list_id) or {"id": list_id, "name": name}
    return _asset_reply([{**item, "folder": folder}])


NO_ASSETS_FOUND = "No assets found for the given search criteria."


def _asset_reply(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Asset-API envelope: ``errors`` and ``warnings`` always present (§6.4)."""
    document = success(items)
    document["errors"] = []
    document["warnings"] = [] if items else [NO_ASSETS_FOUND]
    return document


def _asset_list(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "folder": {"id": 1, "type": "Folder"}}


def get_static_list_by_id(call: ApiCall) -> dict[str, Any]:
    """Asset API: one static list by id; none gives an empty result with a warning."""
    item = call.services.lists.get(call.path_int("listId"))
    return _asset_reply([_asset_list(item)] if item is not None else [])


def get_static_list_by_name(call: ApiCall) -> dict[str, Any]:
    """Asset API: one static list by exact name."""
    items, _ = call.services.lists.query(None, [call.params.require("name")], 1, None)
    return _asset_reply([_asset_list(item) for item in items])


MAX_ASSET_PAGE = 200


def browse_static_lists(call: ApiCall) -> dict[str, Any]:
    """Asset API: lists by ``offset`` and ``maxReturn`` (default 20, at most 200), by id."""
    offset = call.params.get_int("offset", 0) or 0
    max_return = call.params.get_int("maxReturn", 20) or 20
    if max_return > MAX_ASSET_PAGE:
        raise invalid_parameter(f"Invalid maxReturn '{max_return}', at most {MAX_ASSET_PAGE}")
    collected: list[dict[str, Any]] = []
    token: str | None = None
    while len(collected) < offset + max_return:
        items, token = call.services.lists.query(None, None, MAX_RECORDS_PER_CALL, token)
        collected.extend(items)
        if token is None:
            break
    page = collected[offset : offset + max_return]
    return _asset_reply([_asset_list(item) for item in page])


ROUTES: tuple[Route, ...] = (
    Route("GET", "/rest/asset/v1/staticLists.json", browse_static_lists),
    Route("GET", "/rest/asset/v1/staticList/byName.json", get_static_list_by_name),
    Route("GET", "/rest/asset/v1/staticList/{listId}.json", get_static_list_by_id),
    Route("GET", "/rest/v1/lists.json", get_lists),
    Route("GET", "/rest/v1/lists/{listId}.json", get_list),
    Route("POST", "/rest/v1/lists/{listId}/leads.json", add_to_list),
    Route("DELETE", "/rest/v1/lists/{listId}/leads.json", remove_from_list),
    Route("GET", "/rest/v1/lists/{listId}/leads/ismember.json", member_of_list),
    Route("GET", "/rest/v1/lists/{listId}/leads.json", get_list_leads),
    Route("GET", "/rest/v1/list/{listId}/leads.json", get_list_leads),
    Route("POST", "/rest/asset/v1/staticLists.json", create_static_list),
)
