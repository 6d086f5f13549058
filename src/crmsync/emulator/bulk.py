"""Bulk messages: ``CreateMultiple``, ``UpdateMultiple`` and ``UpsertMultiple`` (spec §5).

``POST /<set>/Microsoft.Dynamics.CRM.CreateMultiple`` with ``{"Targets": [...]}`` answers
``200 {"Ids": [...]}``; ``UpdateMultiple`` (each target carries its primary key) answers 204.
Every target needs ``@odata.type`` naming the table. On standard tables the request is one
transaction: any error rolls every target back (the request-level transaction does that).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from crmsync.dataverse_codes import INVALID_ARGUMENT
from crmsync.emulator import keys
from crmsync.emulator.context import (
    ApiResponse,
    RequestContext,
    action_response,
    empty_response,
)
from crmsync.emulator.errors import bad_request, not_found
from crmsync.emulator.jsontext import loads_strict
from crmsync.emulator.metadata import EntityDef
from crmsync.emulator.validation import parse_guid, prepare
from crmsync.emulator.writes import fetch_for_write, insert_record, update_record

_REFERENCE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$")


def _targets(entity: EntityDef, body: bytes) -> list[dict[str, Any]]:
    try:
        payload = loads_strict(body or b"{}")
    except ValueError:
        raise bad_request(INVALID_ARGUMENT, "The request body is not valid JSON.") from None
    targets = payload.get("Targets") if isinstance(payload, dict) else None
    if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
        raise bad_request(INVALID_ARGUMENT, "The parameter 'Targets' must be an array of objects.")
    expected = f"Microsoft.Dynamics.CRM.{entity.logical_name}"
    for target in targets:
        kind = str(target.get("@odata.type", "")).lstrip("#")
        if kind != expected:
            raise bad_request(
                INVALID_ARGUMENT,
                f'Each target needs "@odata.type": "{expected}" (found \'{kind or "none"}\').',
            )
    return targets


def create_multiple(ctx: RequestContext, entity: EntityDef, body: bytes) -> ApiResponse:
    """Create every target; answer their ids in order."""
    ids = [insert_record(ctx, entity, target) for target in _targets(entity, body)]
    return action_response(
        ctx,
        "CreateMultiple",
        {
            "Ids": ids,
        },
    )


def update_multiple(ctx: RequestContext, entity: EntityDef, body: bytes) -> ApiResponse:
    """Update every target (each names its primary key); 404 for a missing row."""
    ctx.require(entity, "write")
    for target in _targets(entity, body):
        record_id = parse_guid(str(target.get(entity.primary_id, "")))
        if record_id is None:
            raise bad_request(
                INVALID_ARGUMENT, f"Each target of UpdateMultiple needs its {entity.primary_id}."
            )
        existing = fetch_for_write(ctx, entity, record_id)
        if existing is None:
            raise not_found(entity.logical_name, record_id)
        values = {k: v for k, v in target.items() if k != entity.primary_id}
        update_record(
            ctx, entity, record_id, prepare(ctx, entity, values, creating=False), existing
        )
    return empty_response(204)


def _upsert_id(ctx: RequestContext, entity: EntityDef, target: dict[str, Any]) -> str | None:
    """The row a target of UpsertMultiple names: ``@odata.id`` (``leads(<id>)``) or its key."""
    reference = target.get("@odata.id")
    if isinstance(reference, str):
        match = _REFERENCE.match(reference.rsplit("/", 1)[-1])
        key = match.group(2) if match and match.group(1) == entity.entity_set_name else None
        if key is not None and "=" in key:
            name, _, value = key.partition("=")
            if name.strip() != entity.primary_id:
                values = keys.parse_key(entity, key)
                found = keys.find(ctx, entity, values)
                target.update(
                    {k: v for k, v in keys.as_body(ctx, entity, values).items() if k not in target}
                )
                return found if found is not None else str(uuid.uuid4())
            key = value
        record_id = parse_guid(key.strip()) if key is not None else None
        if record_id is None:
            raise bad_request(
                INVALID_ARGUMENT,
                f"The @odata.id '{reference}' does not name a {entity.logical_name} by its key.",
            )
        return record_id
    if entity.primary_id in target:
        record_id = parse_guid(str(target[entity.primary_id]))
        if record_id is None:
            raise bad_request(INVALID_ARGUMENT, f"The {entity.primary_id} is not a GUID.")
        return record_id
    return None


def upsert_multiple(ctx: RequestContext, entity: EntityDef, body: bytes) -> ApiResponse:
    """Create or update every target in one transaction; answer the ids in order.

    A target names its row with ``@odata.id`` or its primary key; a missing row is created
    with that id, an existing one updated ("Use bulk operation messages", UpsertMultiple).
    """
    ids: list[str] = []
    for target in _targets(entity, body):
        record_id = _upsert_id(ctx, entity, target)
        values = {k: v for k, v in target.items() if k not in ("@odata.id", entity.primary_id)}
        existing = fetch_for_write(ctx, entity, record_id) if record_id is not None else None
        if existing is None:
            ids.append(insert_record(ctx, entity, values, record_id))
            continue
        assert record_id is not None
        ctx.require(entity, "write")
        prepared = prepare(ctx, entity, values, creating=False)
        update_record(ctx, entity, record_id, prepared, existing)
        ids.append(record_id)
    return action_response(ctx, "UpsertMultiple", {"Ids": ids})
