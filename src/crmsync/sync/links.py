"""Links between Dynamics records and local records, their baselines, and the local values a
page is planned against (``crm_links``, ``sync_baselines``).

Each function costs one statement (or one ``executemany``) per chunk of ids whatever the
number of records, in the caller's transaction, so the cycle's cost grows with the changes,
not with the database (DESIGN principle 3). On PostgreSQL the push's reads and writes take
their ids as one array parameter (:mod:`crmsync.store.id_match`), a single statement.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    String,
    Table,
    bindparam,
    delete,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement, TextClause
from sqlalchemy.sql.selectable import FromClause

from crmsync.store.db import json_text
from crmsync.store.id_match import id_conditions
from crmsync.store.inserts import insert_many
from crmsync.store.tables import (
    companies,
    crm_links,
    now_utc,
    opportunities,
    persons,
    sales_persons,
    sync_baselines,
    teams,
)
from crmsync.store.updates import execute_many
from crmsync.sync.mapping import EntityMapping
from crmsync.sync.plan import LinkState, LocalRecord

LOCAL_TABLES: Mapping[str, Table] = {
    "person": persons,
    "company": companies,
    "salesperson": sales_persons,
    "team": teams,
    "opportunity": opportunities,
}
"""The marketing table each local kind lives in."""


@dataclass(frozen=True, slots=True)
class LinkRow:
    """One stored link between a Dynamics record and a local record."""

    entity: str
    crm_id: str
    local_kind: str
    local_id: int
    etag: str | None


def load_links(conn: Connection, entity: str, crm_ids: Sequence[str]) -> dict[str, LinkRow]:
    """The links of ``entity`` records among ``crm_ids``, by Dynamics id."""
    return {link.crm_id: link for link, _ in _links_joined(conn, entity, crm_ids, None)}


def _links_joined(
    conn: Connection,
    entity: str,
    crm_ids: Sequence[str],
    baseline: ColumnElement[Any] | None,
) -> Iterator[tuple[LinkRow, Any]]:
    """The links of ``entity`` records among ``crm_ids``, each with ``baseline`` (a column of
    its baseline row, outer-joined; ``None`` for no join) read beside it."""
    columns: list[ColumnElement[Any]] = [
        crm_links.c.crm_id,
        crm_links.c.local_kind,
        crm_links.c.local_id,
        crm_links.c.etag,
    ]
    source: FromClause = crm_links
    if baseline is not None:
        columns.append(baseline)
        source = crm_links.outerjoin(
            sync_baselines,
            (sync_baselines.c.entity == crm_links.c.entity)
            & (sync_baselines.c.crm_id == crm_links.c.crm_id),
        )
    for matching in id_conditions(conn, crm_links.c.crm_id, list(crm_ids)):
        query = select(*columns).select_from(source).where(crm_links.c.entity == entity, matching)
        for row in conn.execute(query).all():
            crm_id, kind, local_id, etag = row[:4]
            extra = row[4] if baseline is not None else None
            yield LinkRow(entity, crm_id, kind, int(local_id), etag), extra


def links_of_local(conn: Connection, local_kind: str, local_ids: Sequence[int]) -> list[LinkRow]:
    """Every link of the given local records (a person may have a lead and a contact)."""
    found: list[LinkRow] = []
    for matching in id_conditions(conn, crm_links.c.local_id, list(local_ids)):
        rows = conn.execute(
            select(
                crm_links.c.entity,
                crm_links.c.crm_id,
                crm_links.c.local_id,
                crm_links.c.etag,
            ).where(crm_links.c.local_kind == local_kind, matching)
        )
        for entity, crm_id, local_id, etag in rows:
            found.append(LinkRow(entity, crm_id, local_kind, int(local_id), etag))
    return found


def load_baselines(
    conn: Connection, entity: str, crm_ids: Sequence[str]
) -> dict[str, dict[str, object]]:
    """The baselines of ``entity`` records among ``crm_ids``, by Dynamics id."""
    found: dict[str, dict[str, object]] = {}
    for matching in id_conditions(conn, sync_baselines.c.crm_id, list(crm_ids)):
        rows = conn.execute(
            select(sync_baselines.c.crm_id, sync_baselines.c["values"]).where(
                sync_baselines.c.entity == entity, matching
            )
        )
        for crm_id, values in rows:
            found[crm_id] = dict(values or {})
    return found


def save_baselines(
    conn: Connection, entity: str, baselines: Mapping[str, Mapping[str, object]]
) -> None:
    """Replace the baselines of the given records (delete, then one ``executemany``)."""
    if not baselines:
        return
    ids = list(baselines)
    for matching in id_conditions(conn, sync_baselines.c.crm_id, ids):
        conn.execute(delete(sync_baselines).where(sync_baselines.c.entity == entity, matching))
    stamp = now_utc()
    insert_many(
        conn,
        sync_baselines,
        [
            {
                "entity": entity,
                "crm_id": crm_id,
                "values": values if values.__class__ is dict else dict(values),
                "updated_at": stamp,
            }
            for crm_id, values in baselines.items()
        ],
    )


def linked_baselines(
    conn: Connection, entity: str, crm_ids: Sequence[str]
) -> dict[str, tuple[LinkRow, dict[str, object] | None]]:
    """The links of ``entity`` records among ``crm_ids`` with each one's baseline (``None``
    when it has none), by Dynamics id."""
    return {
        link.crm_id: (link, None if values is None else dict(values))
        for link, values in _links_joined(conn, entity, crm_ids, sync_baselines.c["values"])
    }


def links_with_baseline(
    conn: Connection, entity: str, crm_ids: Sequence[str]
) -> dict[str, tuple[LinkRow, bool]]:
    """The links of ``entity`` records among ``crm_ids``, each with whether it has a baseline
    (without reading the baselines themselves), by Dynamics id."""
    return {
        link.crm_id: (link, stored is not None)
        for link, stored in _links_joined(conn, entity, crm_ids, sync_baselines.c.crm_id)
    }


def patch_baselines(
    conn: Connection, entity: str, patches: Mapping[str, Mapping[str, object]]
) -> None:
    """Set the given fields in the stored baselines of ``entity`` records (by Dynamics id),
    keeping their other fields, in the database (one driver ``executemany`` per set of
    fields): the baselines are neither read nor rewritten whole. A ``None`` is stored as
    JSON null."""
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    sqlite = conn.dialect.name == "sqlite"
    for crm_id, values in patches.items():
        names = tuple(sorted(values))
        if not names:
            continue
        if sqlite:
            params = {f"v{n}": json_text(values[name]) for n, name in enumerate(names)}
        else:
            params = {"patch": json_text({name: values[name] for name in names})}
        groups.setdefault(names, []).append({**params, "_crm_id": crm_id})
    column = sync_baselines.c["values"]
    stamp = now_utc()
    for names, rows in groups.items():
        if sqlite:
            paths: list[ColumnElement[object]] = []
            for n, name in enumerate(names):
                paths += [literal(f'$."{name}"'), func.json(bindparam(f"v{n}"))]
            patched: ColumnElement[object] | TextClause = func.json_set(column, *paths)
        else:  # the fields as one object, merged over the stored one
            patched = text(
                'CAST(CAST(sync_baselines."values" AS jsonb) || CAST(:patch AS jsonb) AS json)'
            )
        statement = (
            update(sync_baselines)
            .where(
                sync_baselines.c.entity == entity,
                sync_baselines.c.crm_id == bindparam("_crm_id"),
            )
            .values({column.key: patched, "updated_at": stamp})
        )
        execute_many(conn, statement, rows)


def insert_links(conn: Connection, rows: Sequence[LinkRow]) -> None:
    """Insert new links in one ``executemany``."""
    if not rows:
        return
    stamp = now_utc()
    insert_many(
        conn,
        crm_links,
        [
            {
                "entity": row.entity,
                "crm_id": row.crm_id,
                "local_kind": row.local_kind,
                "local_id": row.local_id,
                "etag": row.etag,
                "created_at": stamp,
                "updated_at": stamp,
            }
            for row in rows
        ],
    )


def update_links(conn: Connection, rows: Sequence[LinkRow]) -> None:
    """Point existing links at (possibly new) local records and store their ETags (on
    PostgreSQL one ``UPDATE ... FROM unnest(...)`` for all of them, else one
    ``executemany``)."""
    if not rows:
        return
    stamp = now_utc()
    if conn.dialect.name == "postgresql":
        _update_links_from_arrays(conn, rows, stamp)
        return
    conn.execute(
        update(crm_links)
        .where(
            crm_links.c.entity == bindparam("_entity"),
            crm_links.c.crm_id == bindparam("_crm_id"),
        )
        .values(local_id=bindparam("local_id"), etag=bindparam("etag"), updated_at=stamp),
        [
            {"_entity": r.entity, "_crm_id": r.crm_id, "local_id": r.local_id, "etag": r.etag}
            for r in rows
        ],
    )


def _update_links_from_arrays(conn: Connection, rows: Sequence[LinkRow], stamp: object) -> None:
    """:func:`update_links` on PostgreSQL: the rows as four arrays, one statement. A link
    given twice takes its last row, as the ``executemany`` would leave it."""
    last = {(row.entity, row.crm_id): row for row in rows}
    given = (
        func.unnest(
            bindparam("entities", [k[0] for k in last], ARRAY(String)),
            bindparam("crm_ids", [k[1] for k in last], ARRAY(String)),
            bindparam("local_ids", [r.local_id for r in last.values()], ARRAY(BigInteger)),
            bindparam("etags", [r.etag for r in last.values()], ARRAY(String)),
        )
        .table_valued("entity", "crm_id", "local_id", "etag")
        .render_derived(name="given")
    )
    conn.execute(
        update(crm_links)
        .where(crm_links.c.entity == given.c.entity, crm_links.c.crm_id == given.c.crm_id)
        .values(local_id=given.c.local_id, etag=given.c.etag, updated_at=stamp)
    )


def local_values(
    conn: Connection,
    kind: str,
    ids: Sequence[int],
    fields: Sequence[str],
    *,
    lock: bool = True,
) -> dict[int, LocalRecord]:
    """The local records ``ids`` of ``kind`` with the mapped ``fields`` (custom ones from the
    ``custom`` JSON column) and, for persons, the CRM type. Persons are locked for the
    caller's transaction on PostgreSQL (a merge applies to them) unless ``lock`` is false
    (a reader that writes nothing back to them from these values, such as the push)."""
    table = LOCAL_TABLES[kind]
    columns = [table.c.id]
    standard = [name for name in fields if name in table.c]
    columns += [table.c[name] for name in standard]
    custom_fields = [name for name in fields if name not in table.c]
    has_custom = "custom" in table.c and bool(custom_fields)
    if has_custom:
        columns.append(table.c.custom)
    is_person = kind == "person"
    if is_person and "crmType" not in standard:
        columns.append(table.c.crmType)
    found: dict[int, LocalRecord] = {}
    for matching in id_conditions(conn, table.c.id, list(ids)):
        query = select(*columns).where(matching)
        if lock and is_person and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        for row in conn.execute(query).mappings():
            values: dict[str, object] = {name: row[table.c[name]] for name in standard}
            if has_custom:
                custom = row["custom"] or {}
                for name in custom_fields:
                    values[name] = custom.get(name)
            crm_type = row[table.c.crmType] if is_person else None
            found[int(row["id"])] = LocalRecord(int(row["id"]), values, crm_type)
    return found


def link_states(
    conn: Connection,
    mapping: EntityMapping,
    crm_ids: Sequence[str],
    local_kind: str,
    *,
    entity: str | None = None,
) -> tuple[dict[str, LinkState], dict[str, LinkRow]]:
    """The :class:`LinkState` of every linked id among ``crm_ids`` (for ``plan_page``), and
    the raw links. A link whose local record is gone gets ``local=None`` (B27). ``entity``
    reads another entity's links with ``mapping``'s fields (a contact's originating leads)."""
    linked_entity = entity or mapping.entity
    links = load_links(conn, linked_entity, crm_ids)
    if not links:
        return {}, {}
    baselines = load_baselines(conn, linked_entity, list(links))
    locals_ = local_values(
        conn, local_kind, sorted({link.local_id for link in links.values()}), mapping.field_names
    )
    states = {
        crm_id: LinkState(locals_.get(link.local_id), baselines.get(crm_id), etag=link.etag)
        for crm_id, link in links.items()
    }
    return states, links
