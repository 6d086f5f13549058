"""Change tracking: ``Prefer: odata.track-changes`` and ``$deltatoken`` reads (spec §4).

* The initial read pages over every row by primary key; only its last page carries
  ``@odata.deltaLink``. The token holds the global row version reached when the read *started*,
  so rows changed while a long initial load pages are sent again by the next delta read.
* A delta read returns rows whose version is above the token's (new and updated look alike,
  ordered by version), then ``$deletedEntity`` tombstones, paged like any query; the upper
  bound is fixed at its first page so paging is stable while writes go on.
* ``$filter``, ``$orderby``, ``$expand`` and ``$top`` are refused with tracking (400).
* Tokens look like Dataverse's (``<version>!<MM/dd/yyyy HH:mm:ss>``) and expire after
  ``delta_token_max_age_days`` or when the runtime's delta epoch moves on (the epoch is appended
  as ``!e<n>`` once it is not zero): 400 ``0x80044352`` ExpiredVersionStamp.
"""

# SQL identifiers here come from validated metadata (SAFE_NAME) and are quoted by q();
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from crmsync.dataverse_codes import EXPIRED_VERSION_STAMP, INVALID_ARGUMENT, ODATA_URI_ERROR
from crmsync.emulator.context import ApiResponse, RequestContext, json_response
from crmsync.emulator.errors import bad_request, invalid
from crmsync.emulator.metadata import EntityDef
from crmsync.emulator.query import decode_skiptoken, encode_skiptoken
from crmsync.emulator.records import (
    check_options,
    context_select,
    page_size,
    preference_applied,
    selected_attributes,
)
from crmsync.emulator.rendering import Renderer
from crmsync.emulator.storage import q

_REJECTED = ("$filter", "$orderby", "$expand", "$top")
_TOKEN_TIME = "%m/%d/%Y %H:%M:%S"  # noqa: S105 - a date format, not a secret


def is_tracking_request(ctx: RequestContext, query: Mapping[str, str]) -> bool:
    """A change-tracking read: ``odata.track-changes`` preferred or a ``$deltatoken`` given."""
    return ctx.prefs.track_changes or "$deltatoken" in query


def mint_token(ctx: RequestContext, version: int) -> str:
    """``<version>!<UTC time>`` (plus ``!e<epoch>`` once delta tokens were expired)."""
    token = f"{version}!{ctx.runtime.clock().strftime(_TOKEN_TIME)}"
    epoch = ctx.runtime.delta_epoch
    return f"{token}!e{epoch}" if epoch else token


def _expired() -> Exception:
    return invalid(
        EXPIRED_VERSION_STAMP,
        "Version stamp associated with the client has expired. Please perform a full sync.",
    )


def read_token(ctx: RequestContext, token: str) -> int:
    """The row version in a delta token; expired or foreign tokens raise the documented 400."""
    parts = token.split("!")
    try:
        version = int(parts[0])
        issued = datetime.strptime(parts[1], _TOKEN_TIME).replace(tzinfo=UTC)
        epoch = int(parts[2][1:]) if len(parts) > 2 else 0
    except (ValueError, IndexError):
        raise bad_request(ODATA_URI_ERROR, f"The delta token '{token}' is not valid.") from None
    max_age = timedelta(days=ctx.config.delta_token_max_age_days)
    if epoch != ctx.runtime.delta_epoch or ctx.runtime.clock() - issued > max_age:
        raise _expired()
    if version > ctx.storage.current_version():
        # A token from before the database was reset: as stale as an expired one.
        raise _expired()
    return version


def _delta_link(
    ctx: RequestContext, entity: EntityDef, query: Mapping[str, str], version: int
) -> str:
    parts = [f"$select={quote(query['$select'], safe=',')}"] if "$select" in query else []
    parts.append(f"$deltatoken={quote(mint_token(ctx, version), safe='')}")
    return f"{ctx.base_url}/{entity.entity_set_name}?{'&'.join(parts)}"


def _next_link(ctx: RequestContext, entity: EntityDef, query: Mapping[str, str], token: str) -> str:
    parts = [f"{k}={quote(v, safe=',')}" for k, v in query.items() if k != "$skiptoken"]
    parts.append(f"$skiptoken={quote(token, safe='')}")
    return f"{ctx.base_url}/{entity.entity_set_name}?{'&'.join(parts)}"


def tracked_read(ctx: RequestContext, entity: EntityDef, query: Mapping[str, str]) -> ApiResponse:
    """Answer an initial or delta change-tracking read."""
    ctx.require(entity, "read")
    check_options(query)
    for option in _REJECTED:
        if option in query:
            raise bad_request(
                INVALID_ARGUMENT,
                f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.',
            )
    if not entity.change_tracking:
        # Where the docs are silent: the exact error for a table without change tracking.
        raise bad_request(
            INVALID_ARGUMENT,
            f"Change tracking is not enabled for the entity '{entity.logical_name}'. Enable "
            "ChangeTrackingEnabled on its EntityDefinition first.",
        )
    attributes = selected_attributes(entity, query.get("$select"))
    renderer = Renderer(ctx, entity, attributes)
    state: dict[str, Any] = {}
    page = 1
    if "$skiptoken" in query:
        page, state = decode_skiptoken(query["$skiptoken"])
    if "$deltatoken" in query:
        since = read_token(ctx, query["$deltatoken"])
        return _delta_page(ctx, entity, query, renderer, since, state, page)
    return _initial_page(ctx, entity, query, renderer, state, page)


def _headers(ctx: RequestContext) -> list[tuple[str, str]]:
    applied = preference_applied(ctx)
    if ctx.prefs.track_changes:
        if applied:
            return [("Preference-Applied", applied[0][1] + ",odata.track-changes")]
        return [("Preference-Applied", "odata.track-changes")]
    return applied


def _initial_page(
    ctx: RequestContext,
    entity: EntityDef,
    query: Mapping[str, str],
    renderer: Renderer,
    state: dict[str, Any],
    page: int,
) -> ApiResponse:
    limit = page_size(ctx)
    with ctx.storage.lock:
        upper = int(state.get("u", ctx.storage.current_version()))
        after = state.get("k")
        where, params = ("1", []) if after is None else (f"{q(entity.primary_id)} > ?", [after])
        rows = ctx.storage.execute(
            f"SELECT {renderer.select_sql()} FROM {q(entity.table)} WHERE {where} "
            f"ORDER BY {q(entity.primary_id)} LIMIT ?",
            [*params, limit + 1],
        ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        records = renderer.render(rows)
    select = query.get("$select")
    payload: dict[str, Any] = {
        "@odata.context": f"{ctx.base_url}/$metadata#{entity.entity_set_name}"
        f"{context_select(selected_attributes(entity, select), select)}",
        "value": records,
    }
    if more:
        token = encode_skiptoken(
            page + 1,
            {"k": rows[-1][0], "u": upper},
            tracking=True,
            pk=entity.primary_id,
            first=str(rows[0][0]),
            last=str(rows[-1][0]),
        )
        payload["@odata.nextLink"] = _next_link(ctx, entity, query, token)
    else:
        payload["@odata.deltaLink"] = _delta_link(ctx, entity, query, upper)
    return json_response(200, payload, _headers(ctx))


def _delta_page(
    ctx: RequestContext,
    entity: EntityDef,
    query: Mapping[str, str],
    renderer: Renderer,
    since: int,
    state: dict[str, Any],
    page: int,
) -> ApiResponse:
    limit = page_size(ctx)
    with ctx.storage.lock:
        upper = int(state.get("u", ctx.storage.current_version()))
        phase = state.get("p", "rows")
        cursor = int(state.get("k", since))
        values: list[dict[str, Any]] = []
        last = cursor
        if phase == "rows":
            rows = ctx.storage.execute(
                f"SELECT {renderer.select_sql()} FROM {q(entity.table)} "
                "WHERE versionnumber > ? AND versionnumber <= ? ORDER BY versionnumber LIMIT ?",
                [cursor, upper, limit + 1],
            ).fetchall()
            if len(rows) > limit:
                rows = rows[:limit]
                values = renderer.render(rows)
                return _delta_response(
                    ctx, entity, query, values, page, "rows", int(rows[-1][1]), upper
                )
            values = renderer.render(rows)
            cursor = since
            phase = "tombstones"
        remaining = limit - len(values)
        tombstones = ctx.storage.execute(
            "SELECT id, version FROM _tombstones WHERE entity = ? AND version > ? AND version <= ? "
            "ORDER BY version LIMIT ?",
            [entity.logical_name, cursor, upper, remaining + 1],
        ).fetchall()
        more = len(tombstones) > remaining
        tombstones = tombstones[:remaining]
        deleted_context = f"{ctx.base_url}/$metadata#{entity.entity_set_name}/$deletedEntity"
        for record_id, version in tombstones:
            values.append({"@odata.context": deleted_context, "id": record_id, "reason": "deleted"})
            last = int(version)
    if more:
        return _delta_response(ctx, entity, query, values, page, "tombstones", last, upper)
    return _delta_response(ctx, entity, query, values, page, None, last, upper)


def _delta_response(
    ctx: RequestContext,
    entity: EntityDef,
    query: Mapping[str, str],
    values: list[dict[str, Any]],
    page: int,
    phase: str | None,
    last: int,
    upper: int,
) -> ApiResponse:
    select = context_select(selected_attributes(entity, query.get("$select")), query.get("$select"))
    payload: dict[str, Any] = {
        "@odata.context": f"{ctx.base_url}/$metadata#{entity.entity_set_name}{select}/$delta",
        "value": values,
    }
    if phase is not None:
        token = encode_skiptoken(
            page + 1,
            {"p": phase, "k": last, "u": upper},
            tracking=True,
            pk=entity.primary_id,
            first=str(last),
            last=str(last),
        )
        payload["@odata.nextLink"] = _next_link(ctx, entity, query, token)
    else:
        payload["@odata.deltaLink"] = _delta_link(ctx, entity, query, upper)
    return json_response(200, payload, _headers(ctx))


def count_changes(ctx: RequestContext, entity: EntityDef, token: str) -> int:
    """``GET /<set>/$count?$deltatoken=...``: rows and tombstones changed since the token."""
    since = read_token(ctx, token)
    with ctx.storage.lock:
        rows = ctx.storage.execute(
            f"SELECT COUNT(*) FROM {q(entity.table)} WHERE versionnumber > ?", [since]
        ).fetchone()[0]
        gone = ctx.storage.execute(
            "SELECT COUNT(*) FROM _tombstones WHERE entity = ? AND version > ?",
            [entity.logical_name, since],
        ).fetchone()[0]
    return int(rows) + int(gone)
