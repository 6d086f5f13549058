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

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from crmsync.emulator.context import ApiResponse, RequestContext, empty_response, json_response
from crmsync.emulator.errors import (
    ODATA_URI_ERROR,
    SECURED_QUERY,
    bad_request,
    forbidden,
    not_found,
)
from crmsync.emulator.metadata import AttributeDef, EntityDef
from crmsync.emulator.odata import parse_filter, parse_orderby, parse_select
from crmsync.emulator.query import (
    compile_filter,
    decode_skiptoken,
    encode_skiptoken,
    filter_properties,
    ordering_for,
    resolve_property,
)
from crmsync.emulator.storage import q, target_column

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
LOOKUP_NAME = "@Microsoft.Dynamics.CRM.lookuplogicalname"
NAV_NAME = "@Microsoft.Dynamics.CRM.associatednavigationproperty"
COUNT_CAP = 5000
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


def format_value(attribute: AttributeDef, value: Any) -> str | None:
    """The FormattedValue annotation Dataverse sends for a non-lookup column (spec §2e)."""
    kind = attribute.attribute_type
    if value is None or kind in ("String", "Memo", "Uniqueidentifier", "EntityName", "BigInt"):
        return None
    if kind in ("Picklist", "State", "Status"):
        option = attribute.option(int(value))
        return option.label if option else None
    if kind == "Boolean":
        return attribute.true_label if value else attribute.false_label
    if kind == "Integer":
        return f"{int(value):,}"
    if kind == "Money":
        return f"${float(value):,.2f}"
    if kind in ("Decimal", "Double"):
        return f"{float(value):,.2f}"
    if kind == "DateTime":
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        day = f"{moment.month}/{moment.day}/{moment.year}"
        if attribute.format_name == "DateOnly":
            return day
        hour = moment.hour % 12 or 12
        return f"{day} {hour}:{moment.minute:02d} {'PM' if moment.hour >= 12 else 'AM'}"
    return None


_Step = tuple[
    str,
    int,
    int | None,
    bool,
    bool,
    "Callable[[Any], Any] | None",
    "Callable[[Any], str | None] | None",
    AttributeDef,
]


def _date_only(value: Any) -> Any:
    return str(value)[:10]


def _conversion(attribute: AttributeDef) -> Callable[[Any], Any] | None:
    """Stored value -> wire value: booleans from 0/1, DateOnly columns as ``YYYY-MM-DD``."""
    if attribute.attribute_type == "Boolean":
        return bool
    if attribute.attribute_type == "DateTime" and attribute.format_name == "DateOnly":
        # Date-only columns are Edm.Date on the wire.
        return _date_only
    return None


def _formatter(attribute: AttributeDef) -> Callable[[Any], str | None] | None:
    """A fast FormattedValue function for one column (None when it has no formatted value)."""
    kind = attribute.attribute_type
    if kind in ("String", "Memo", "Uniqueidentifier", "EntityName", "BigInt"):
        return None
    if kind in ("Picklist", "State", "Status"):
        labels = {option.value: option.label for option in attribute.options}
        return labels.get
    if kind == "Boolean":
        true_label, false_label = attribute.true_label, attribute.false_label
        return lambda value: true_label if value else false_label
    return lambda value: format_value(attribute, value)


class Renderer:
    """Turns SQL rows of one table into Web API JSON objects for one request."""

    def __init__(
        self, ctx: RequestContext, entity: EntityDef, attributes: Sequence[AttributeDef]
    ) -> None:
        self.ctx = ctx
        self.entity = entity
        self.attributes = list(attributes)
        currency = entity.attributes.get("transactioncurrencyid")
        if (
            currency is not None
            and currency not in self.attributes
            and any(a.attribute_type == "Money" for a in self.attributes)
        ):
            # Documented: selecting a money column also returns _transactioncurrencyid_value.
            self.attributes.append(currency)
        self.columns = [entity.primary_id, "versionnumber"]
        self.formatted = ctx.prefs.formatted
        self.want_logical, self.want_nav = ctx.prefs.lookup_details
        # One precomputed step per column: (wire name, column index, target column index,
        # readable, is lookup, wire conversion or None, formatter or None, attribute).
        self.plan: list[_Step] = []
        for attribute in self.attributes:
            index = len(self.columns)
            self.columns.append(attribute.logical_name)
            target_index = None
            if attribute.is_lookup and attribute.is_polymorphic:
                target_index = len(self.columns)
                self.columns.append(target_column(attribute))
            readable = ctx.can_read_column(entity.logical_name, attribute.logical_name)
            formatter = None
            if self.formatted and not attribute.is_lookup:
                formatter = _formatter(attribute)
            self.plan.append(
                (
                    attribute.wire_name,
                    index,
                    target_index,
                    readable,
                    attribute.is_lookup,
                    _conversion(attribute),
                    formatter,
                    attribute,
                )
            )

    def select_sql(self) -> str:
        """The column list of the SELECT."""
        return ", ".join(q(c) for c in self.columns)

    def render(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """JSON objects for ``rows`` (selected in :meth:`select_sql` order)."""
        records: list[dict[str, Any]] = []
        pending_names: list[tuple[dict[str, Any], str, str, str]] = []
        primary_id = self.entity.primary_id
        formatted, want_nav, want_logical = self.formatted, self.want_nav, self.want_logical
        for row in rows:
            record: dict[str, Any] = {"@odata.etag": f'W/"{row[1]}"'}
            for (
                key,
                index,
                target_index,
                readable,
                lookup,
                convert,
                formatter,
                attribute,
            ) in self.plan:
                value = row[index] if readable else None
                if value is None:
                    record[key] = None
                    continue
                if lookup:
                    target = row[target_index] if target_index is not None else None
                    target = target or attribute.targets[0]
                    if formatted:
                        pending_names.append((record, key + FORMATTED, target, value))
                    if want_nav:
                        record[key + NAV_NAME] = attribute.nav_for_target(target)
                    if want_logical:
                        record[key + LOOKUP_NAME] = target
                elif convert is not None:
                    value = convert(value)
                if formatter is not None:
                    text = formatter(value)
                    if text is not None:
                        record[key + FORMATTED] = text
                record[key] = value
            record[primary_id] = row[0]
            records.append(record)
        if pending_names:
            self._fill_names(pending_names)
        return records

    def _fill_names(self, pending: list[tuple[dict[str, Any], str, str, str]]) -> None:
        wanted: dict[str, set[str]] = {}
        for _, _, target, record_id in pending:
            wanted.setdefault(target, set()).add(record_id)
        names: dict[tuple[str, str], Any] = {}
        for target, ids in wanted.items():
            definition = self.ctx.catalog.get(target)
            if definition is None or not definition.primary_name:
                continue
            id_list = sorted(ids)
            for start in range(0, len(id_list), 500):
                chunk = id_list[start : start + 500]
                cursor = self.ctx.storage.execute(
                    f"SELECT {q(definition.primary_id)}, {q(definition.primary_name)} "
                    f"FROM {q(definition.table)} WHERE {q(definition.primary_id)} IN "
                    f"({', '.join('?' for _ in chunk)})",
                    chunk,
                )
                for record_id, name in cursor:
                    names[(target, record_id)] = name
        for record, key, target, record_id in pending:
            name = names.get((target, record_id))
            if name is not None:
                record[key] = name


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
        where.append(compile_filter(entity, node, params))
    orderby = parse_orderby(query["$orderby"]) if "$orderby" in query else []
    check_secured_query(ctx, entity, [name for name, _ in orderby])
    ordering = ordering_for(entity, orderby)
    count_wanted = query.get("$count", "false").lower() == "true"
    filter_params = list(params)
    top: int | None = None
    if "$top" in query and ctx.prefs.max_page_size is None:
        try:
            top = int(query["$top"])
        except ValueError:
            raise bad_request(
                ODATA_URI_ERROR, f"Invalid value '{query['$top']}' for $top query option found."
            ) from None
        if top < 0:
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
    """``$expand`` of single-valued navigation properties (lookups), with nested ``$select``."""
    if not expand:
        return
    for nav, select in _split_expand(expand):
        found = entity.navigation(nav)
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
    depth, start = 0, 0
    pieces = []
    for index, char in enumerate(text + ","):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            pieces.append(text[start:index].strip())
            start = index + 1
    for piece in pieces:
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
        where = compile_filter(entity, parse_filter(query["$filter"]), params)
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
