"""Writes: create, update, upsert, delete, single-property PUT/DELETE and ``$ref`` (spec §5).

* Create answers ``204`` + ``OData-EntityId``, or ``201`` with the row when
  ``Prefer: return=representation``; a client-supplied primary key is honoured and a repeat gets
  412 ``0x80040237`` DuplicateRecord.
* ``PATCH`` without ``If-Match`` is an upsert (201 created / 200 updated with representation,
  204 otherwise); ``If-Match: *`` makes it update-only (404), ``If-None-Match: *`` create-only
  (412); ``If-Match: W/"<v>"`` must equal the row's ETag (412 ConcurrencyVersionMismatch).
* Every write stamps ``modifiedon``, ``modifiedby`` (the acting user) and a new
  ``versionnumber`` from the global row version.
"""

# SQL identifiers here come from validated metadata (SAFE_NAME) and are quoted by q();
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmsync.dataverse_codes import DUPLICATE_DETECTED, INVALID_ARGUMENT, ODATA_URI_ERROR
from crmsync.emulator.cascade import delete_row
from crmsync.emulator.context import ApiResponse, RequestContext, empty_response
from crmsync.emulator.errors import (
    bad_request,
    duplicate_record,
    not_found,
    server_error,
    version_mismatch,
)
from crmsync.emulator.jsontext import loads_strict
from crmsync.emulator.keys import check_unique, key_columns
from crmsync.emulator.metadata import EntityDef
from crmsync.emulator.records import retrieve
from crmsync.emulator.storage import PERSON_TABLES, full_name, iso, q
from crmsync.emulator.validation import (
    PreparedWrite,
    check_plugin_rules,
    parse_reference,
    payload_error,
    prepare,
)


def parse_body(entity: EntityDef, body: bytes) -> Any:
    """The JSON payload, or the documented payload error."""
    if not body.strip():
        return {}
    try:
        return loads_strict(body)
    except (ValueError, UnicodeDecodeError):
        raise payload_error(entity, "The payload is not valid JSON.") from None


def entity_url(ctx: RequestContext, entity: EntityDef, record_id: str) -> str:
    """``[Org]/api/data/v9.2/leads(<id>)``."""
    return f"{ctx.base_url}/{entity.entity_set_name}({record_id})"


def _check_duplicates(
    ctx: RequestContext, entity: EntityDef, record_id: str, prepared: PreparedWrite
) -> None:
    """Duplicate detection on emailaddress1, only when the caller turned it on (spec §7)."""
    if (ctx.header("mscrm.suppressduplicatedetection") or "").lower() != "false":
        return
    email = prepared.columns.get("emailaddress1")
    if not email or "emailaddress1" not in entity.attributes:
        return
    clash = ctx.storage.execute(
        f"SELECT 1 FROM {q(entity.table)} WHERE emailaddress1 = ? AND {q(entity.primary_id)} <> ? "
        "LIMIT 1",
        (email, record_id),
    ).fetchone()
    if clash is not None:
        raise server_error(
            DUPLICATE_DETECTED,
            "A record was not created or updated because a duplicate of the current record "
            "already exists.",
        )


def insert_record(
    ctx: RequestContext, entity: EntityDef, body: object, record_id: str | None = None
) -> str:
    """Validate and insert one row; returns its id (used by create, upsert, QualifyLead).

    Deep insert (spec §5): a single-valued navigation property given as a JSON object creates
    that related row first and binds to it, in the same transaction.
    """
    ctx.require(entity, "create")
    if isinstance(body, dict) and any(isinstance(v, dict) for v in body.values()):
        body = _deep_insert(ctx, entity, body)
    prepared = prepare(ctx, entity, body, creating=True)
    check_plugin_rules(ctx, entity, prepared.values, creating=True)
    if record_id is None:
        record_id = prepared.primary_id
    if record_id is not None and ctx.storage.exists(entity, record_id):
        raise duplicate_record()
    row = dict(prepared.columns)
    if record_id is not None:
        row[entity.primary_id] = record_id
    with ctx.storage.atomic():
        ctx.storage.stamp_new(entity, row, ctx.user_id)
        new_id = str(row[entity.primary_id])
        _check_duplicates(ctx, entity, new_id, prepared)
        if entity.keys:
            check_unique(ctx, entity, new_id, row)
        ctx.storage.insert(entity, row)
    return new_id


def _deep_insert(ctx: RequestContext, entity: EntityDef, body: dict[str, Any]) -> dict[str, Any]:
    flattened: dict[str, Any] = {}
    for key, value in body.items():
        navigation = entity.navigation(key) if isinstance(value, dict) else None
        if navigation is None:
            flattened[key] = value
            continue
        target = ctx.catalog.require(navigation[1])
        related_id = insert_record(ctx, target, value)
        flattened[f"{key}@odata.bind"] = f"/{target.entity_set_name}({related_id})"
    return flattened


def update_record(
    ctx: RequestContext,
    entity: EntityDef,
    record_id: str,
    prepared: PreparedWrite,
    existing: Mapping[str, Any],
) -> None:
    """Apply validated changes to an existing row with fresh stamps."""
    check_plugin_rules(ctx, entity, prepared.values, creating=False)
    changes = dict(prepared.columns)
    if entity.logical_name in PERSON_TABLES and ("firstname" in changes or "lastname" in changes):
        first = changes.get("firstname", existing.get("firstname"))
        last = changes.get("lastname", existing.get("lastname"))
        changes["fullname"] = full_name(first, last)
    if "statecode" in changes and "statuscode" not in changes:
        changes.pop("statuscode", None)
    changes["modifiedon"] = iso(ctx.runtime.clock())
    changes["modifiedby"] = ctx.user_id
    with ctx.storage.atomic():
        _check_duplicates(ctx, entity, record_id, prepared)
        columns = key_columns(entity)
        if columns and any(c in changes for c in columns):
            current = ctx.storage.fetch(entity, record_id, columns) or {}
            check_unique(ctx, entity, record_id, {**current, **changes})
        changes["versionnumber"] = ctx.storage.next_version()
        ctx.storage.update(entity, record_id, changes)


def _write_response(
    ctx: RequestContext, entity: EntityDef, record_id: str, query: Mapping[str, str], status: int
) -> ApiResponse:
    reference = f"{entity.entity_set_name}({record_id})"
    if ctx.prefs.return_representation:
        select = {k: v for k, v in query.items() if k in ("$select", "$expand")}
        shown = retrieve(ctx, entity, record_id, select)
        shown.status = status
        shown.headers.append(("Preference-Applied", "return=representation"))
        shown.entity_ref = reference
        return shown
    url = entity_url(ctx, entity, record_id)
    answer = empty_response(204, [("OData-EntityId", url), ("Location", url)])
    answer.entity_ref = reference
    return answer


def create(
    ctx: RequestContext, entity: EntityDef, body: bytes, query: Mapping[str, str]
) -> ApiResponse:
    """``POST /<set>``."""
    record_id = insert_record(ctx, entity, parse_body(entity, body))
    return _write_response(ctx, entity, record_id, query, 201)


def fetch_for_write(
    ctx: RequestContext, entity: EntityDef, record_id: str
) -> dict[str, Any] | None:
    """The columns a write needs from the existing row (version, names for fullname)."""
    columns = [entity.primary_id, "versionnumber"]
    if entity.logical_name in PERSON_TABLES:
        columns += ["firstname", "lastname"]
    return ctx.storage.fetch(entity, record_id, columns)


def _etag(row: Mapping[str, Any]) -> str:
    return f'W/"{row["versionnumber"]}"'


def patch(
    ctx: RequestContext,
    entity: EntityDef,
    record_id: str,
    body: bytes,
    query: Mapping[str, str],
    key_body: Mapping[str, Any] | None = None,
) -> ApiResponse:
    """``PATCH /<set>(<id>)``: update or upsert, honouring If-Match / If-None-Match.

    ``key_body`` holds the alternate-key values of the URL: a new row gets them (body values
    win); an existing row keeps its own (they are stripped from the body, as Dataverse does).
    """
    sent = parse_body(entity, body)
    payload = sent
    if key_body and isinstance(sent, dict):
        payload = {k: v for k, v in sent.items() if k not in key_body}
    if_match = ctx.header("if-match")
    if_none_match = ctx.header("if-none-match")
    existing = fetch_for_write(ctx, entity, record_id)
    if if_none_match == "*" and existing is not None:
        raise duplicate_record()
    if if_match is not None:
        if existing is None:
            raise not_found(entity.logical_name, record_id)
        if if_match.strip() != "*" and if_match.strip() != _etag(existing):
            raise version_mismatch()
    if existing is None:
        created = {**key_body, **sent} if key_body and isinstance(sent, dict) else sent
        insert_record(ctx, entity, created, record_id)
        return _write_response(ctx, entity, record_id, query, 201)
    ctx.require(entity, "write")
    prepared = prepare(ctx, entity, payload, creating=False)
    update_record(ctx, entity, record_id, prepared, existing)
    return _write_response(ctx, entity, record_id, query, 200)


def delete(ctx: RequestContext, entity: EntityDef, record_id: str) -> ApiResponse:
    """``DELETE /<set>(<id>)``; If-Match with a stale ETag -> 412; cascades per relationship."""
    ctx.require(entity, "delete")
    _existing(ctx, entity, record_id)
    with ctx.storage.atomic():
        delete_row(ctx, entity, record_id)
    return empty_response(204)


def _existing(ctx: RequestContext, entity: EntityDef, record_id: str) -> dict[str, Any]:
    """The row a write changes: 404 when there is none, 412 when If-Match names another ETag."""
    existing = fetch_for_write(ctx, entity, record_id)
    if existing is None:
        raise not_found(entity.logical_name, record_id)
    if_match = ctx.header("if-match")
    if if_match is not None and if_match.strip() not in ("*", _etag(existing)):
        raise version_mismatch()
    return existing


def put_property(
    ctx: RequestContext, entity: EntityDef, record_id: str, name: str, body: bytes
) -> ApiResponse:
    """``PUT /<set>(<id>)/<property>`` with ``{"value": ...}`` (never creates)."""
    payload = parse_body(entity, body)
    if not isinstance(payload, dict) or "value" not in payload:
        raise payload_error(
            entity, 'A single-property PUT needs a body of the form {"value": ...}.'
        )
    return _write_property(ctx, entity, record_id, name, payload["value"])


def delete_property(
    ctx: RequestContext, entity: EntityDef, record_id: str, name: str
) -> ApiResponse:
    """``DELETE /<set>(<id>)/<property>``: set the column to null."""
    return _write_property(ctx, entity, record_id, name, None)


def _write_property(
    ctx: RequestContext, entity: EntityDef, record_id: str, name: str, value: object
) -> ApiResponse:
    """Set one structural (non-lookup) column of an existing record; 204 when done."""
    attribute = entity.attributes.get(name)
    if attribute is None or attribute.is_lookup:
        raise payload_error(
            entity,
            f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM."
            f"{entity.logical_name}' or is not a structural property.",
        )
    ctx.require(entity, "write")
    existing = _existing(ctx, entity, record_id)
    prepared = prepare(ctx, entity, {name: value}, creating=False)
    update_record(ctx, entity, record_id, prepared, existing)
    return empty_response(204)


def set_reference(
    ctx: RequestContext, entity: EntityDef, record_id: str, nav: str, body: bytes | None
) -> ApiResponse:
    """``PUT .../<nav>/$ref`` with ``{"@odata.id": ...}`` or ``DELETE .../<nav>/$ref``."""
    if entity.navigation(nav) is None:
        raise bad_request(
            ODATA_URI_ERROR,
            f"Could not find a property named '{nav}' on type "
            f"'Microsoft.Dynamics.CRM.{entity.logical_name}'.",
        )
    value: object = None
    if body is not None:
        payload = parse_body(entity, body)
        if not isinstance(payload, dict) or not isinstance(payload.get("@odata.id"), str):
            raise bad_request(INVALID_ARGUMENT, "A $ref body needs an '@odata.id' URI string.")
        target, target_id = parse_reference(ctx, payload["@odata.id"])
        value = f"/{target.entity_set_name}({target_id})"
    ctx.require(entity, "write")
    existing = _existing(ctx, entity, record_id)
    prepared = prepare(ctx, entity, {f"{nav}@odata.bind": value}, creating=False)
    update_record(ctx, entity, record_id, prepared, existing)
    return empty_response(204)
