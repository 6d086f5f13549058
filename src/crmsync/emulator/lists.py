"""Marketing-list membership as Dataverse exposes it: the list's N:N relationships.

A list's members are reached through the collection-valued navigation properties
``listlead_association``, ``listcontact_association`` and ``listaccount_association``; each
membership is a ``listmember`` row (readable as ``listmembers``, so change tracking and
``$filter=_listid_value eq ...`` work on it):

* ``GET lists(<id>)/listlead_association?$select=...`` -> the member leads, paged as any query;
* ``POST lists(<id>)/listlead_association/$ref`` with ``{"@odata.id": "leads(<id>)"}`` -> 204;
* ``DELETE lists(<id>)/listlead_association(<leadid>)/$ref`` (or ``/$ref?$id=<url>``) -> 204;
* ``POST AddMemberList`` with ``{"ListId": ..., "EntityId": ...}`` -> ``{"Id": <listmemberid>}``;
  ``POST AddListMembersList`` with ``{"ListId": ..., "MemberIds": [...]}`` -> 204;
  ``POST RemoveMemberList`` with ``{"ListId": ..., "EntityId": ...}`` -> 204 (all unbound, as
  the Web API action reference documents them).

Where the docs are silent: associating a row that is already a member answers 204 and adds
nothing; a member of the wrong table for the list's ``createdfromcode`` is a 400; deleting a
lead, contact or account removes its memberships (as the intersect rows cascade in Dataverse).
"""

# SQL identifiers here come from validated metadata (SAFE_NAME) and are quoted by q();
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmsync.dataverse_codes import INVALID_ARGUMENT
from crmsync.emulator.context import (
    ApiResponse,
    RequestContext,
    action_response,
    empty_response,
)
from crmsync.emulator.errors import bad_request, invalid, json_object, not_found
from crmsync.emulator.metadata import EntityDef
from crmsync.emulator.records import list_records
from crmsync.emulator.storage import iso, q
from crmsync.emulator.validation import parse_guid, parse_reference

ASSOCIATIONS = {
    "listlead_association": "lead",
    "listcontact_association": "contact",
    "listaccount_association": "account",
}
_MEMBER_TYPE = {"account": 1, "contact": 2, "lead": 4}


def _list_row(ctx: RequestContext, list_id: str) -> dict[str, Any]:
    lists = ctx.catalog.require("list")
    row = ctx.storage.fetch(lists, list_id, ["listid", "createdfromcode", "listname"])
    if row is None:
        raise not_found("list", list_id)
    return row


def members(
    ctx: RequestContext, list_id: str, navigation: str, query: Mapping[str, str]
) -> ApiResponse:
    """``GET lists(<id>)/<association>``: the member rows of one table."""
    _list_row(ctx, list_id)
    target = ctx.catalog.require(ASSOCIATIONS[navigation])
    scope = (
        f"{q(target.primary_id)} IN (SELECT entityid FROM {q('e_listmember')} WHERE listid = ?)",
        [list_id],
    )
    path = f"lists({list_id})/{navigation}"
    return list_records(ctx, target, query, scope=scope, path=path)


def add_member(ctx: RequestContext, list_id: str, member: EntityDef, member_id: str) -> str:
    """Create the listmember row (idempotent); returns its id."""
    lists = ctx.catalog.require("list")
    listmembers = ctx.catalog.require("listmember")
    ctx.require(lists, "write")
    ctx.require(member, "read")
    row = _list_row(ctx, list_id)
    if _MEMBER_TYPE.get(member.logical_name) != row.get("createdfromcode"):
        raise invalid(
            INVALID_ARGUMENT,
            f"The {member.logical_name} cannot be added: the marketing list "
            f"'{row.get('listname')}' targets another member type.",
        )
    if not ctx.storage.exists(member, member_id):
        raise not_found(member.logical_name, member_id)
    existing = ctx.storage.execute(
        "SELECT listmemberid FROM e_listmember WHERE listid = ? AND entityid = ?",
        (list_id, member_id),
    ).fetchone()
    if existing is not None:
        return str(existing[0])
    with ctx.storage.atomic():
        new_row: dict[str, Any] = {
            "listid": list_id,
            "entityid": member_id,
            "entityid__target": member.logical_name,
        }
        ctx.storage.stamp_new(listmembers, new_row, ctx.user_id)
        ctx.storage.insert(listmembers, new_row)
        _recount(ctx, list_id)
    return str(new_row["listmemberid"])


def remove_member(ctx: RequestContext, list_id: str, member_id: str) -> None:
    """Delete the listmember row of one member (404 when it is not a member)."""
    ctx.require(ctx.catalog.require("list"), "write")
    _list_row(ctx, list_id)
    found = ctx.storage.execute(
        "SELECT listmemberid FROM e_listmember WHERE listid = ? AND entityid = ?",
        (list_id, member_id),
    ).fetchone()
    if found is None:
        raise not_found("listmember", member_id)
    with ctx.storage.atomic():
        ctx.storage.delete(ctx.catalog.require("listmember"), str(found[0]))
        _recount(ctx, list_id)


def remove_memberships_of(ctx: RequestContext, entity: EntityDef, record_id: str) -> None:
    """Drop every membership of a deleted lead/contact/account."""
    if entity.logical_name not in _MEMBER_TYPE:
        return
    rows = ctx.storage.execute(
        "SELECT listmemberid, listid FROM e_listmember WHERE entityid = ?", (record_id,)
    ).fetchall()
    listmembers = ctx.catalog.require("listmember")
    for listmember_id, list_id in rows:
        ctx.storage.delete(listmembers, str(listmember_id))
        _recount(ctx, str(list_id))


def _recount(ctx: RequestContext, list_id: str) -> None:
    count = ctx.storage.execute(
        "SELECT COUNT(*) FROM e_listmember WHERE listid = ?", (list_id,)
    ).fetchone()[0]
    ctx.storage.update(
        ctx.catalog.require("list"),
        list_id,
        {
            "membercount": count,
            "modifiedon": iso(ctx.runtime.clock()),
            "modifiedby": ctx.user_id,
            "versionnumber": ctx.storage.next_version(),
        },
    )


def association_ref(
    ctx: RequestContext,
    list_id: str,
    segment: str,
    method: str,
    body: bytes,
    query: Mapping[str, str],
) -> ApiResponse:
    """``POST|DELETE lists(<id>)/<association>[(<member id>)]/$ref``."""
    navigation, _, key = segment.partition("(")
    target = ctx.catalog.require(ASSOCIATIONS[navigation])
    if method == "POST" and not key:
        payload = json_object(body, "The body")
        reference = payload.get("@odata.id")
        if not isinstance(reference, str):
            raise bad_request(INVALID_ARGUMENT, "A $ref body needs an '@odata.id' URI string.")
        member, member_id = parse_reference(ctx, reference)
        if member.logical_name != target.logical_name:
            raise bad_request(
                INVALID_ARGUMENT, f"{navigation} links {target.entity_set_name} only."
            )
        add_member(ctx, list_id, member, member_id)
        return empty_response(204)
    if method == "DELETE":
        removed = parse_guid(key.rstrip(")")) if key else None
        if removed is None and "$id" in query:
            removed = parse_reference(ctx, query["$id"])[1]
        if removed is None:
            raise bad_request(
                INVALID_ARGUMENT, "Name the member to remove: <association>(<id>)/$ref."
            )
        remove_member(ctx, list_id, removed)
        return empty_response(204)
    raise bad_request(INVALID_ARGUMENT, f"The HTTP method '{method}' is not supported on $ref.")


def _member_table(ctx: RequestContext, list_id: str) -> EntityDef:
    """The table a list's members come from (its ``createdfromcode``)."""
    row = _list_row(ctx, list_id)
    member_table = {v: k for k, v in _MEMBER_TYPE.items()}.get(int(row.get("createdfromcode") or 0))
    if member_table is None:
        raise invalid(INVALID_ARGUMENT, "The marketing list has no member type.")
    return ctx.catalog.require(member_table)


def _guid_parameter(payload: Mapping[str, Any], name: str, action: str) -> str:
    value = parse_guid(str(payload.get(name, "")))
    if value is None:
        raise bad_request(INVALID_ARGUMENT, f"{action} needs the parameter {name} (a GUID).")
    return value


def add_member_list(ctx: RequestContext, body: bytes) -> ApiResponse:
    """``POST AddMemberList`` {"ListId", "EntityId"} -> {"Id": <listmemberid>}."""
    payload = json_object(body, "The body")
    list_id = _guid_parameter(payload, "ListId", "AddMemberList")
    entity_id = _guid_parameter(payload, "EntityId", "AddMemberList")
    member_id = add_member(ctx, list_id, _member_table(ctx, list_id), entity_id)
    return action_response(ctx, "AddMemberList", {"Id": member_id})


def add_list_members_list(ctx: RequestContext, body: bytes) -> ApiResponse:
    """``POST AddListMembersList`` {"ListId", "MemberIds": [...]} -> 204 (AddListMembersList
    Action: adds the members of the list's type; ones already in the list stay as they are)."""
    payload = json_object(body, "The body")
    list_id = _guid_parameter(payload, "ListId", "AddListMembersList")
    raw_ids = payload.get("MemberIds")
    if not isinstance(raw_ids, list) or not raw_ids:
        raise bad_request(
            INVALID_ARGUMENT, "AddListMembersList needs MemberIds, a non-empty array of GUIDs."
        )
    member_ids = [parse_guid(str(raw)) for raw in raw_ids]
    if any(member_id is None for member_id in member_ids):
        raise bad_request(INVALID_ARGUMENT, "Every entry of MemberIds must be a GUID.")
    table = _member_table(ctx, list_id)
    with ctx.storage.atomic():
        for member_id in member_ids:
            add_member(ctx, list_id, table, str(member_id))
    return empty_response(204)


def remove_member_list(ctx: RequestContext, body: bytes) -> ApiResponse:
    """``POST RemoveMemberList`` {"ListId", "EntityId"} -> 204; 404 when it is not a member."""
    payload = json_object(body, "The body")
    list_id = _guid_parameter(payload, "ListId", "RemoveMemberList")
    entity_id = _guid_parameter(payload, "EntityId", "RemoveMemberList")
    remove_member(ctx, list_id, entity_id)
    return empty_response(204)
