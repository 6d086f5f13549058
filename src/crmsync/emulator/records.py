"""Reading rows: collections with server paging, single rows, single properties, ``$count``.

Wire shapes follow spec §2d/§2e/§3: every row carries ``@odata.etag`` (``W/"<versionnumber>"``)
and its primary key; lookups appear as ``_x_value``; formatted values and lookup annotations
appear only when ``Prefer: odata.include-annotations`` asks; secured columns read back as null
for users without read access (spec §9). Pages are keyset pages (see :mod:`.query`).
"""

# SQL identifiers here come from validated metadata (SAFE_NAME) and are quoted by q();
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from crmsync.dataverse_codes import ODATA_URI_ERROR, SECURED_QUERY
from crmsync.emulator.context import ApiResponse, RequestContext, empty_response, json_response
from crmsync.emulator.errors import bad_request, forbidden, not_found
from crmsync.emulator.metadata import AttributeDef, EntityDef
from crmsync.emulator.odata import parse_filter, parse_orderby, parse_select, split_top_level
from crmsync.emulator.query import (
    compile_filter,
    decode_skiptoken,
    encode_skiptoken,
    filter_properties,
    is_related_path,
    ordering_for,
    resolve_property,
)
from crmsync.emulator.relationships import OneToMany, collection_navigation
from crmsync.emulator.rendering import Renderer
from crmsync.emulator.storage import q, target_column

COUNT_CAP = 5000
INT64_MAX = 2**63 - 1
KNOWN_OPTIONS = frozenset(
    {
        "$select",
        "$filter",
        "$orderby",
        "$top",
        "$count",
        "$expand",
        "$skiptoken",
        "$deltatoken",
        "$skip",
        "$apply",
        "$format",
    }
)


def selected_attributes(entity: EntityDef, select: str | None) -> list[AttributeDef]:
    """The columns a ``$select`` names (all readable columns when absent)."""
    if select is None:
        return [a for a in entity.attributes.values() if a.valid_for_read]
    chosen: dict[str, AttributeDef] = {}
    for name in parse_select(select):
        if "/" in name:
            raise bad_request(ODATA_URI_ERROR, f"Term '{name}' is not valid in a $select.")
        attribute = resolve_property(entity, name)
        chosen[attribute.logical_name] = attribute
    return list(chosen.values())


def context_select(attributes: Sequence[AttributeDef], select: str | None) -> str:
    """The ``(a,b)`` part of ``@odata.context`` (empty without ``$select``)."""
    if select is None:
        return ""
    return "(" + ",".join(a.wire_name for a in attributes) + ")"


def check_options(query: Mapping[str, str]) -> None:
    """Reject ``$skip`` (spec §3) and unknown system query options (they are case-sensitive)."""
    for name in query:
        if name == "$skip":
            # Where the docs are silent: Dataverse documents $skip as unsupported without the
            # exact answer; the emulator refuses it with a 400 so paging bugs surface early.
            raise bad_request(ODATA_URI_ERROR, "The query parameter $skip is not supported.")
        if name == "$apply":
            # Where the docs are silent for the emulator: aggregation is not implemented; a
            # clear refusal beats a wrong answer.
            raise bad_request(
                ODATA_URI_ERROR, "The emulator does not support $apply (aggregation)."
            )
        if name.startswith("$") and name not in KNOWN_OPTIONS:
            raise bad_request(ODATA_URI_ERROR, f"The query parameter '{name}' is not supported.")


def check_secured_query(ctx: RequestContext, entity: EntityDef, paths: Sequence[str]) -> None:
    """Filtering or ordering on a secured column the caller cannot read -> 0x8004F506."""
    for path in paths:
        related = entity.navigation(path.partition("/")[0])
        if related is not None and is_related_path(entity, path):
            attribute = related[0]  # reading through a lookup needs that lookup readable
        else:
            attribute = resolve_property(entity, path)
        if not ctx.can_read_column(entity.logical_name, attribute.logical_name):
            raise forbidden(
                SECURED_QUERY,
                f"The query contains the secured attribute '{attribute.logical_name}' of entity "
                f"'{entity.logical_name}', which the caller has no permission to read.",
            )


def page_size(ctx: RequestContext) -> int:
    """``odata.maxpagesize`` capped at the configured maximum (5,000)."""
    cap = ctx.config.max_page_size
    wanted = ctx.prefs.max_page_size
    return cap if wanted is None else min(wanted, cap)


def preference_applied(ctx: RequestContext, *, paging: bool = True) -> list[tuple[str, str]]:
    """The ``Preference-Applied`` header echoing the preferences honoured."""
    applied = []
    if ctx.prefs.annotations:
        applied.append(f'odata.include-annotations="{",".join(ctx.prefs.annotations)}"')
    if paging and ctx.prefs.max_page_size is not None:
        applied.append(f"odata.maxpagesize={page_size(ctx)}")
    return [("Preference-Applied", ",".join(applied))] if applied else []


def next_link(ctx: RequestContext, path: str, query: Mapping[str, str], token: str) -> str:
    """``@odata.nextLink``: the same query with a new ``$skiptoken`` (already URL-encoded)."""
    parts = [
        f"{quote(k, safe='$')}={quote(v, safe=',()')}"
        for k, v in query.items()
        if k not in ("$skiptoken",)
    ]
    parts.append(f"$skiptoken={quote(token, safe='')}")
    return f"{ctx.base_url}/{path}?{'&'.join(parts)}"


def list_records(
    ctx: RequestContext,
    entity: EntityDef,
    query: Mapping[str, str],
    *,
    scope: tuple[str, list[Any]] | None = None,
    path: str | None = None,
) -> ApiResponse:
    """``GET /<set>``: filter, order, select, count and page (spec §3).

    ``scope`` is an extra SQL condition (with its parameters) restricting the rows, and
    ``path`` the resource path of the collection, for navigation collections.
    """
    ctx.require(entity, "read")
    check_options(query)
    attributes = selected_attributes(entity, query.get("$select"))
    renderer = Renderer(ctx, entity, attributes)
    params: list[Any] = []
    where = ["1"]
    if scope is not None:
        where[0] = scope[0]
        params.extend(scope[1])
    if "$filter" in query:
        node = parse_filter(query["$filter"])
        check_secured_query(ctx, entity, filter_properties(node))
        where.append(compile_filter(entity, node, params, ctx.catalog))
    orderby = parse_orderby(query["$orderby"]) if "$orderby" in query else []
    check_secured_query(ctx, entity, [name for name, _ in orderby])
    ordering = ordering_for(entity, orderby)
    count_wanted = query.get("$count", "false").lower() == "true"
    filter_params = list(params)
    top: int | None = None
    if "$top" in query and ctx.prefs.max_page_size is None:
        raw_top = query["$top"]
        top = int(raw_top) if raw_top.isascii() and raw_top.isdigit() else -1
        if not 0 <= top <= INT64_MAX:  # $top is an Edm.Int64 (OData URL conventions)
            raise bad_request(
                ODATA_URI_ERROR, f"Invalid value '{query['$top']}' for $top query option found."
            )
    page = 1
    if "$skiptoken" in query:
        page, state = decode_skiptoken(query["$skiptoken"])
        last = state.get("k")
        if not isinstance(last, list) or len(last) != len(ordering.columns):
            raise bad_request(ODATA_URI_ERROR, "The $skiptoken value is not valid.")
        where.append(ordering.after(last, params))
    limit = top if top is not None else page_size(ctx)
    columns = list(renderer.columns)
    columns += [c for c, _ in ordering.columns if c not in columns]
    sql = (
        f"SELECT {', '.join(q(c) for c in columns)} FROM {q(entity.table)} "
        f"WHERE {' AND '.join(where)} "
        f"ORDER BY {ordering.order_sql()} LIMIT ?"
    )
    with ctx.storage.lock:
        rows = ctx.storage.execute(sql, [*params, limit + 1 if top is None else limit]).fetchall()
        more = top is None and len(rows) > limit
        rows = rows[:limit]
        records = renderer.render(rows)
        expand_records(ctx, entity, records, query.get("$expand"))
        total = None
        if count_wanted:
            filter_sql = " AND ".join(where[:2]) if "$filter" in query else "1"
            total = ctx.storage.execute(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {q(entity.table)} "
                f"WHERE {filter_sql} LIMIT ?)",
                [*filter_params, COUNT_CAP + 1],
            ).fetchone()[0]
    payload: dict[str, Any] = {
        "@odata.context": f"{ctx.base_url}/$metadata#{entity.entity_set_name}"
        f"{context_select(attributes, query.get('$select'))}"
    }
    if total is not None:
        payload["@odata.count"] = min(total, COUNT_CAP)
    if ctx.prefs.wants("Microsoft.Dynamics.CRM.totalrecordcount"):
        payload["@Microsoft.Dynamics.CRM.totalrecordcount"] = (
            min(total, COUNT_CAP) if total is not None else -1
        )
    if ctx.prefs.wants("Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"):
        payload["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = bool(
            total is not None and total > COUNT_CAP
        )
    payload["value"] = records
    if more:
        index = {c: i for i, c in enumerate(columns)}
        last_row = rows[-1]
        keys = [last_row[index[column]] for column, _ in ordering.columns]
        token = encode_skiptoken(
            page + 1,
            {"k": keys},
            tracking=False,
            pk=entity.primary_id,
            first=str(rows[0][0]),
            last=str(last_row[0]),
        )
        payload["@odata.nextLink"] = next_link(ctx, path or entity.entity_set_name, query, token)
    return json_response(200, payload, preference_applied(ctx))


def expand_records(
    ctx: RequestContext, entity: EntityDef, records: list[dict[str, Any]], expand: str | None
) -> None:
    """``$expand`` of navigation properties with a nested ``$select``: single-valued ones
    (lookups) give the related row or null, collection-valued ones (one-to-many relationships,
    "Join tables using OData") the array of rows that point at the record."""
    if not expand:
        return
    for nav, select in _split_expand(expand):
        found = entity.navigation(nav)
        relationship = collection_navigation(ctx.catalog, entity.logical_name, nav)
        if found is None and relationship is not None:
            _expand_collection(ctx, entity, records, nav, relationship, select)
            continue
        if found is None:
            raise bad_request(
                ODATA_URI_ERROR,
                f"Could not find a property named '{nav}' on type "
                f"'Microsoft.Dynamics.CRM.{entity.logical_name}'.",
            )
        attribute, target_name = found
        target = ctx.catalog.require(target_name)
        ctx.require(target, "read")
        renderer = Renderer(ctx, target, selected_attributes(target, select))
        links = _lookup_values(ctx, entity, records, attribute)
        ids = sorted({value for value in links.values() if value})
        related: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = ctx.storage.execute(
                f"SELECT {renderer.select_sql()} FROM {q(target.table)} "
                f"WHERE {q(target.primary_id)} IN ({', '.join('?' for _ in chunk)})",
                chunk,
            ).fetchall()
            for rendered in renderer.render(rows):
                related[rendered[target.primary_id]] = rendered
        for record in records:
            value = links.get(record[entity.primary_id])
            record[nav] = related.get(value) if value else None


def _expand_collection(
    ctx: RequestContext,
    entity: EntityDef,
    records: list[dict[str, Any]],
    nav: str,
    relationship: OneToMany,
    select: str | None,
) -> None:
    referencing = ctx.catalog.require(relationship.referencing_entity)
    ctx.require(referencing, "read")
    attribute = referencing.attributes[relationship.referencing_attribute]
    renderer = Renderer(ctx, referencing, selected_attributes(referencing, select))
    children: dict[str, list[dict[str, Any]]] = {r[entity.primary_id]: [] for r in records}
    ids = list(children)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        condition = f"{q(attribute.logical_name)} IN ({', '.join('?' for _ in chunk)})"
        params: list[object] = list(chunk)
        if attribute.is_polymorphic:
            condition += f" AND {q(target_column(attribute))} = ?"
            params.append(entity.logical_name)
        parents = dict(
            ctx.storage.execute(
                f"SELECT {q(referencing.primary_id)}, {q(attribute.logical_name)} "
                f"FROM {q(referencing.table)} WHERE {condition} "
                f"ORDER BY {q(referencing.primary_id)}",
                params,
            ).fetchall()
        )
        child_ids = list(parents)
        for first in range(0, len(child_ids), 500):
            part = child_ids[first : first + 500]
            rows = ctx.storage.execute(
                f"SELECT {renderer.select_sql()} FROM {q(referencing.table)} "
                f"WHERE {q(referencing.primary_id)} IN ({', '.join('?' for _ in part)}) "
                f"ORDER BY {q(referencing.primary_id)}",
                part,
            ).fetchall()
            for rendered in renderer.render(rows):
                children[parents[rendered[referencing.primary_id]]].append(rendered)
    for record in records:
        record[nav] = children[record[entity.primary_id]]


def _lookup_values(
    ctx: RequestContext, entity: EntityDef, records: list[dict[str, Any]], attribute: AttributeDef
) -> dict[str, str | None]:
    """Row id -> lookup value, read from the rows when the lookup was not selected."""
    key = f"_{attribute.logical_name}_value"
    if all(key in record for record in records):
        return {record[entity.primary_id]: record[key] for record in records}
    found: dict[str, str | None] = {}
    ids = [record[entity.primary_id] for record in records]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = ctx.storage.execute(
            f"SELECT {q(entity.primary_id)}, {q(attribute.logical_name)} FROM {q(entity.table)} "
            f"WHERE {q(entity.primary_id)} IN ({', '.join('?' for _ in chunk)})",
            chunk,
        )
        found.update({row[0]: row[1] for row in rows})
    return found


def _split_expand(text: str) -> list[tuple[str, str | None]]:
    items: list[tuple[str, str | None]] = []
    for piece in (part.strip() for part in split_top_level(text, ",")):
        if "(" in piece:
            nav, _, options = piece.partition("(")
            select = None
            for option in options.rstrip(")").split(";"):
                name, _, value = option.partition("=")
                if name.strip() == "$select":
                    select = value
                else:
                    raise bad_request(
                        ODATA_URI_ERROR, f"The option '{name}' is not supported inside $expand."
                    )
            items.append((nav.strip(), select))
        elif piece:
            items.append((piece, None))
    return items


def retrieve(
    ctx: RequestContext, entity: EntityDef, record_id: str, query: Mapping[str, str]
) -> ApiResponse:
    """``GET /<set>(<id>)`` with ``$select``/``$expand``; 304 on a matching If-None-Match."""
    ctx.require(entity, "read")
    check_options(query)
    attributes = selected_attributes(entity, query.get("$select"))
    renderer = Renderer(ctx, entity, attributes)
    with ctx.storage.lock:
        row = ctx.storage.execute(
            f"SELECT {renderer.select_sql()} FROM {q(entity.table)} "
            f"WHERE {q(entity.primary_id)} = ?",
            [record_id],
        ).fetchone()
        if row is None:
            raise not_found(entity.logical_name, record_id)
        etag = f'W/"{row[1]}"'
        if_none_match = ctx.header("if-none-match")
        if if_none_match == etag and "$expand" not in query and not ctx.prefs.annotations:
            return empty_response(304, [("ETag", etag)])
        record = renderer.render([row])[0]
        expand_records(ctx, entity, [record], query.get("$expand"))
    payload = {
        "@odata.context": f"{ctx.base_url}/$metadata#{entity.entity_set_name}"
        f"{context_select(attributes, query.get('$select'))}/$entity",
        **record,
    }
    return json_response(200, payload, [("ETag", etag), *preference_applied(ctx, paging=False)])


def get_property(ctx: RequestContext, entity: EntityDef, record_id: str, name: str) -> ApiResponse:
    """``GET /<set>(<id>)/<property>`` -> ``{"value": ...}``; 204 when the value is null."""
    ctx.require(entity, "read")
    navigation = entity.navigation(name)
    if navigation is not None:
        attribute, _ = navigation
    else:
        found = entity.attribute_by_wire_name(name)
        if found is None or not found.valid_for_read:
            raise bad_request(
                ODATA_URI_ERROR,
                f"Could not find a property named '{name}' on type "
                f"'Microsoft.Dynamics.CRM.{entity.logical_name}'.",
            )
        attribute = found
    renderer = Renderer(ctx, entity, [attribute])
    with ctx.storage.lock:
        row = ctx.storage.execute(
            f"SELECT {renderer.select_sql()} FROM {q(entity.table)} "
            f"WHERE {q(entity.primary_id)} = ?",
            [record_id],
        ).fetchone()
    if row is None:
        raise not_found(entity.logical_name, record_id)
    record = renderer.render([row])[0]
    if navigation is not None:
        related = record.get(f"_{attribute.logical_name}_value")
        if related is None:
            return empty_response(204)
        target = ctx.catalog.require(navigation[1])
        return retrieve(ctx, target, str(related), {})
    value = record.get(attribute.wire_name)
    if value is None:
        return empty_response(204)
    return json_response(
        200,
        {
            "@odata.context": f"{ctx.base_url}/$metadata#"
            f"{entity.entity_set_name}({record_id})/{name}",
            "value": value,
        },
    )


def count_records(ctx: RequestContext, entity: EntityDef, query: Mapping[str, str]) -> ApiResponse:
    """``GET /<set>/$count`` -> ``text/plain`` number (capped at 5,000 like ``$count``)."""
    ctx.require(entity, "read")
    params: list[Any] = []
    where = "1"
    if "$filter" in query:
        where = compile_filter(entity, parse_filter(query["$filter"]), params, ctx.catalog)
    with ctx.storage.lock:
        total = ctx.storage.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {q(entity.table)} WHERE {where} LIMIT ?)",
            [*params, COUNT_CAP],
        ).fetchone()[0]
    return ApiResponse(
        200,
        [("Content-Type", "text/plain; charset=utf-8"), ("OData-Version", "4.0")],
        str(total).encode(),
    )
