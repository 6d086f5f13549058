"""Applying a planned page of Dynamics changes to the marketing store, in bulk.

Dynamics-origin changes are written **without outbox entries** (echo suppression, B19) but
with activities (built by :mod:`crmsync.marketing.activity_log`): New Lead for a person
created from Dynamics, Change Data Value per field the sync changed, a collision activity per
collision (B24), Delete Lead from Microsoft for a CRM delete (B26) and a sync-error activity
per failing record (B37). Everything happens in the caller's transaction, so the page and
its cursor are committed together.

Writes that a merge leaves for Dynamics (``crm_writes``) are not sent here: the baseline stored
is the one that keeps them pending (``baseline_if_rejected``) and the person is queued in the
outbox, so the push phase sends them with the ETag just read (B25) and nothing is lost if the
process stops in between.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from crmsync.marketing import activity_log
from crmsync.marketing.activity_log import ActivityEntry, write_activities
from crmsync.marketing.campaigns.triggers import record_trigger_events
from crmsync.marketing.fields import FieldCatalog, load_catalog
from crmsync.marketing.person_company import company_change_activities
from crmsync.marketing.persons import normalise_email
from crmsync.marketing.values import utc_now_text
from crmsync.store import outbox
from crmsync.store.id_match import among
from crmsync.store.inserts import chunks, insert_returning_ids
from crmsync.store.tables import companies, now_utc, opportunity_roles
from crmsync.store.updates import execute_many
from crmsync.sync.failures import ErrorReport, record_errors, resolve_errors
from crmsync.sync.foreign_keys import fill_person_fks, link_fk_columns
from crmsync.sync.history import insert_history
from crmsync.sync.links import (
    LOCAL_TABLES,
    LinkRow,
    insert_links,
    load_links,
    save_baselines,
    update_links,
)
from crmsync.sync.mapping import EntityMapping
from crmsync.sync.plan import (
    LinkState,
    PagePlan,
    PlannedCreate,
    PlannedUpdate,
    RecordFailure,
)

SYNC_SOURCE = "Microsoft Dynamics sync"
"""The source named in activities the sync writes."""

EXTERNAL_KEYS = {
    "company": "externalCompanyId",
    "salesperson": "externalSalesPersonId",
    "team": "externalTeamId",
    "opportunity": "externalOpportunityId",
}
"""The unique Dynamics-id column of each one-way local table."""

CUSTOMER_ROLE = "Customer"
"""The role name of a contact that is an opportunity's potential customer (B6)."""


@dataclass(slots=True, kw_only=True)
class RecordCounts:
    """What happened to the records of one or more applied pages, by outcome."""

    created: int = 0
    updated: int = 0
    deleted_flags: int = 0
    skipped: int = 0
    failed: int = 0
    collisions: int = 0

    def add(self, other: RecordCounts) -> None:
        """Add ``other``'s counts to these."""
        self.created += other.created
        self.updated += other.updated
        self.deleted_flags += other.deleted_flags
        self.skipped += other.skipped
        self.failed += other.failed
        self.collisions += other.collisions


@dataclass(slots=True, kw_only=True)
class ApplyCounts(RecordCounts):
    """What applying one or more pages did: the counts, the persons whose merge left values
    for Dynamics (``to_send``), and the persons the pages touched."""

    to_send: int = 0
    person_ids: list[int] = field(default_factory=list)

    def add(self, other: RecordCounts) -> None:
        """Add ``other``'s counts to these."""
        RecordCounts.add(self, other)
        if isinstance(other, ApplyCounts):
            self.to_send += other.to_send


def _row_values(
    table: Table, values: Mapping[str, object]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split marketing values into table columns and ``custom`` JSON entries."""
    columns = _columns_of(table)
    if columns.issuperset(values):
        return dict(values), {}
    standard: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for name, value in values.items():
        if name in columns:
            standard[name] = value
        else:
            custom[name] = value
    if "custom" not in columns:
        custom = {}
    return standard, custom


@functools.cache
def _columns_of(table: Table) -> frozenset[str]:
    """The column keys of ``table`` other than ``id`` (``Table.c`` lookups are slow)."""
    return frozenset(column.key for column in table.c if column.key != "id")


def _text(value: object) -> object:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def apply_plan(
    conn: Connection,
    plan: PagePlan,
    mapping: EntityMapping,
    local_kind: str,
    links: Mapping[str, LinkRow],
    *,
    states: Mapping[str, LinkState] | None = None,
    queue_sends: bool = True,
) -> ApplyCounts:
    """Apply ``plan`` (from :func:`~crmsync.sync.plan.plan_page`) in the caller's transaction.

    ``links`` are the stored links of the page's ids and ``states`` what the plan was made
    from (for the old values in Change Data Value activities). With ``queue_sends`` a person
    whose merge left values for Dynamics gets an outbox entry (the push phase sends it).
    """
    counts = ApplyCounts(skipped=len(plan.skipped))
    now = utc_now_text()
    table = LOCAL_TABLES[local_kind]
    is_person = local_kind == "person"
    acts: list[ActivityEntry] = []
    history: list[dict[str, object]] = []
    touched: list[int] = []
    relink: list[int] = []  # persons whose company and sales user need pointing (B5, B6)
    if plan.creates:
        created, adopted = _apply_creates(conn, plan, table, local_kind, links, now, acts)
        touched += created
        relink += adopted
        counts.created = len(plan.creates)
    if plan.updates:
        described = _Described(load_catalog(conn), plan, states or {}) if is_person else None
        company_before = _company_values(conn, plan) if local_kind == "company" else {}
        sends, updated = _apply_updates(
            conn, plan, table, local_kind, links, now, acts, history, described
        )
        touched += [u.local_id for u in plan.updates]
        relink += [u.local_id for u in plan.updates]
        counts.updated = updated
        if company_before:
            acts += _company_activities(conn, plan, company_before, now)
        counts.collisions = len(plan.collisions)
        counts.to_send = len(sends)
        if sends and queue_sends and is_person:
            outbox.enqueue(conn, sends, operation="update", source=SYNC_SOURCE)
    if plan.delete_flags:
        ids = [flag.local_id for flag in plan.delete_flags]
        values: dict[str, Any] = {"crmIsDeleted": True}
        if "updatedAt" in table.c:
            values["updatedAt"] = now
        for part in chunks(ids):
            conn.execute(update(table).where(table.c.id.in_(part)).values(**values))
        if is_person:
            acts += [
                activity_log.delete_lead_from_microsoft(
                    flag.local_id, entity=flag.entity, crm_id=flag.crm_id, when=now
                )
                for flag in plan.delete_flags
            ]
        counts.deleted_flags = len(ids)
    if plan.failures:
        _record_failures(conn, plan.failures, local_kind, now, acts)
        counts.failed = len(plan.failures)
    synced = [c.crm_id for c in plan.creates] + [
        u.crm_id for u in plan.updates if not any(f.crm_id == u.crm_id for f in plan.failures)
    ]
    if synced:
        resolve_errors(conn, plan.entity, synced, "to_marketing")
    if plan.roles:
        _apply_roles(conn, plan, now)
    insert_history(conn, history)
    if is_person and relink:
        link_fk_columns(conn, relink)
    # activities last in the transaction (see crmsync.marketing.activity_log)
    write_activities(conn, acts)
    record_trigger_events(conn, acts)
    if is_person and touched:
        counts.person_ids = touched
    return counts


def _apply_creates(
    conn: Connection,
    plan: PagePlan,
    table: Table,
    local_kind: str,
    links: Mapping[str, LinkRow],
    now: str,
    acts: list[ActivityEntry],
) -> tuple[list[int], list[int]]:
    """Insert the plan's new records (or adopt existing ones by external id), link them and
    store their baselines; returns the ids of every created record and of those adopted."""
    is_person = local_kind == "person"
    existing: dict[str, int] = {}
    key = EXTERNAL_KEYS.get(local_kind)
    if key is not None:
        wanted = [str(c.values.get(key)) for c in plan.creates if c.values.get(key)]
        for part in chunks(wanted):
            query = select(table.c.id, table.c[key]).where(among(conn, table.c[key], part))
            rows = conn.execute(query)
            existing.update({str(external): int(local_id) for local_id, external in rows})
    new_rows: list[dict[str, Any]] = []
    new_creates: list[PlannedCreate] = []
    adopted: list[tuple[PlannedCreate, int]] = []
    for create in plan.creates:
        if key is not None and str(create.values.get(key)) in existing:
            adopted.append((create, existing[str(create.values.get(key))]))
            continue
        standard, custom = _row_values(table, create.values)
        if "createdAt" in table.c:
            standard["createdAt"] = now
            standard["updatedAt"] = now
        if is_person:
            standard["email_key"] = normalise_email(standard.get("email"))
            standard["custom"] = custom or None
        elif "custom" in table.c:
            standard["custom"] = custom or None
        if "marketoGUID" in table.c:
            standard["marketoGUID"] = str(uuid.uuid4())
        new_rows.append(standard)
        new_creates.append(create)
    ids: list[int] = []
    if new_rows and is_person:
        fill_person_fks(conn, new_rows)
    if new_rows:
        # One executemany per set of columns (keeps parameter sets uniform).
        ids = insert_returning_ids(conn, table, new_rows)
    if adopted:
        _update_rows(
            conn,
            table,
            [(local_id, _row_values(table, create.values)[0]) for create, local_id in adopted],
            now,
        )
    pairs = list(zip(new_creates, ids, strict=True)) + adopted
    fresh: list[LinkRow] = []
    moved: list[LinkRow] = []
    for create, local_id in pairs:
        link = LinkRow(plan.entity, create.crm_id, local_kind, local_id, create.etag)
        (moved if create.crm_id in links else fresh).append(link)
        if is_person:
            acts.append(
                activity_log.new_lead(
                    local_id,
                    source=SYNC_SOURCE,
                    lead_source=create.values.get("leadSource"),
                    when=now,
                )
            )
    insert_links(conn, fresh)
    update_links(conn, moved)
    save_baselines(conn, plan.entity, {c.crm_id: c.baseline for c, _ in pairs})
    return [local_id for _, local_id in pairs], [local_id for _, local_id in adopted]


def _update_rows(
    conn: Connection, table: Table, rows: Sequence[tuple[int, Mapping[str, Any]]], now: str
) -> None:
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for local_id, values in rows:
        params = {name: value for name, value in values.items() if name in table.c}
        if not params:
            continue
        if "updatedAt" in table.c:
            params["updatedAt"] = now
        if "email" in params and "email_key" in table.c:
            params["email_key"] = normalise_email(params["email"])
        params["_local_id"] = local_id
        groups.setdefault(frozenset(params), []).append(params)
    for group in groups.values():
        execute_many(conn, update(table).where(table.c.id == bindparam("_local_id")), group)


def _apply_updates(
    conn: Connection,
    plan: PagePlan,
    table: Table,
    local_kind: str,
    links: Mapping[str, LinkRow],
    now: str,
    acts: list[ActivityEntry],
    history: list[dict[str, object]],
    described: _Described | None,
) -> tuple[list[int], int]:
    rows: list[tuple[int, dict[str, Any]]] = []
    custom_updates: dict[int, dict[str, Any]] = {}
    baselines: dict[str, dict[str, object]] = {}
    link_rows: list[LinkRow] = []
    new_links: list[LinkRow] = []
    sends: list[int] = []
    updated = 0
    for item in plan.updates:
        standard, custom = _row_values(table, item.marketing_writes)
        if standard or custom:
            updated += 1
            rows.append((item.local_id, standard))
        if custom:
            custom_updates[item.local_id] = custom
        baselines[item.crm_id] = (
            item.baseline_if_rejected if item.crm_writes else dict(item.new_baseline)
        )
        if item.crm_writes:
            sends.append(item.local_id)
        link = LinkRow(plan.entity, item.crm_id, local_kind, item.local_id, item.etag)
        (link_rows if item.crm_id in links else new_links).append(link)
        if described is not None:
            _update_activities(item, now, acts, history, described)
        else:
            _collision_history(item, history)  # a company, opportunity...: no activity log
    _update_rows(conn, table, [(i, v) for i, v in rows if v], now)
    if custom_updates:
        _merge_custom(conn, table, custom_updates)
    update_links(conn, link_rows)
    insert_links(conn, new_links)
    save_baselines(conn, plan.entity, baselines)
    return sends, updated


def write_local_values(
    conn: Connection, local_kind: str, values: Mapping[int, Mapping[str, Any]]
) -> None:
    """Write marketing field ``values`` onto local records of ``local_kind`` (by id) in bulk,
    standard fields into their columns and custom ones into the ``custom`` JSON (a ``None``
    custom value removes the entry). No activities, no outbox: the values come from
    Dynamics (a quick sync's backfill, B12)."""
    table = LOCAL_TABLES[local_kind]
    rows: list[tuple[int, dict[str, Any]]] = []
    custom_updates: dict[int, dict[str, Any]] = {}
    for local_id, record in values.items():
        standard, custom = _row_values(table, record)
        rows.append((local_id, standard))
        if custom:
            custom_updates[local_id] = custom
    _update_rows(conn, table, [(i, v) for i, v in rows if v], utc_now_text())
    if custom_updates:
        _merge_custom(conn, table, custom_updates)


def _company_values(conn: Connection, plan: PagePlan) -> dict[int, dict[str, object]]:
    """The stored values of the fields this page changes on each company it updates."""
    names = sorted(
        {name for item in plan.updates for name in item.marketing_writes if name in companies.c}
    )
    ids = [item.local_id for item in plan.updates if item.marketing_writes]
    found: dict[int, dict[str, object]] = {}
    if not names or not ids:
        return found
    for part in chunks(ids):
        query = select(companies.c.id, *(companies.c[n] for n in names)).where(
            companies.c.id.in_(part)
        )
        for row in conn.execute(query).mappings():
            found[int(row["id"])] = {n: row[n] for n in names}
    return found


def _company_activities(
    conn: Connection, plan: PagePlan, before: Mapping[int, Mapping[str, object]], now: str
) -> list[ActivityEntry]:
    """R41: a Change Data Value on each person of each company the page changed."""
    changes: dict[int, dict[str, tuple[object, object]]] = {}
    for item in plan.updates:
        old_values = before.get(item.local_id, {})
        changes[item.local_id] = {
            name: (_text(old_values.get(name)), _text(value))
            for name, value in item.marketing_writes.items()
            if name in old_values and _text(old_values.get(name)) != _text(value)
        }
    return company_change_activities(
        conn, changes, reason=f"Changed in Dynamics ({plan.entity})", source=SYNC_SOURCE, when=now
    )


def _merge_custom(conn: Connection, table: Table, updates: Mapping[int, Mapping[str, Any]]) -> None:
    current = {
        int(local_id): dict(custom or {})
        for local_id, custom in conn.execute(
            select(table.c.id, table.c.custom).where(table.c.id.in_(list(updates)))
        )
    }
    params = []
    for local_id, values in updates.items():
        merged = current.get(local_id, {})
        for name, value in values.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        params.append({"_local_id": local_id, "custom": merged or None})
    conn.execute(update(table).where(table.c.id == bindparam("_local_id")), params)


class _Described:
    """What Change Data Value activities name, as the person service does: each field's
    display name and id (the catalog) and the value it had before this sync."""

    def __init__(
        self, catalog: FieldCatalog, plan: PagePlan, states: Mapping[str, LinkState]
    ) -> None:
        self.catalog = catalog
        old_values = {
            crm_id: state.local.values
            for crm_id, state in states.items()
            if state.local is not None
        }
        self._by_person = {u.local_id: old_values.get(u.crm_id, {}) for u in plan.updates}

    def old_value(self, person_id: int, name: str) -> object:
        """The value field ``name`` of ``person_id`` had before this sync."""
        return _text(self._by_person.get(person_id, {}).get(name))


def _update_activities(
    item: PlannedUpdate,
    now: str,
    acts: list[ActivityEntry],
    history: list[dict[str, object]],
    described: _Described,
) -> None:
    for name, value in item.marketing_writes.items():
        acts.append(
            activity_log.change_data_value(
                item.local_id,
                name,
                described.old_value(item.local_id, name),
                _text(value),
                field=described.catalog.get(name),
                reason=f"Changed in Dynamics ({item.entity})",
                source=SYNC_SOURCE,
                when=now,
            )
        )
    for collision in item.collisions:
        acts.append(
            activity_log.sync_collision(
                item.local_id,
                collision.field,
                {
                    "Marketing Value": _text(collision.marketing_value),
                    "CRM Value": _text(collision.crm_value),
                    "Baseline Value": _text(collision.baseline_value),
                    "Winner": "Dynamics" if collision.winner.value == "crm" else "Marketing",
                    "Rule": collision.rule.value,
                    "Description": collision.describe(),
                },
                when=now,
            )
        )
    _collision_history(item, history)


def _collision_history(item: PlannedUpdate, history: list[dict[str, object]]) -> None:
    """B24: every collision of ``item`` in the sync history, whatever the record's kind."""
    stamp = now_utc()
    for collision in item.collisions:
        history.append(
            {
                "kind": "collision",
                "entity": item.entity,
                "status": "decided",
                "started_at": stamp,
                "finished_at": stamp,
                "local_id": item.local_id,
                "crm_id": item.crm_id,
                "api_calls": 0,
                "details": {k: _text(v) for k, v in collision.as_record().items()},
            }
        )


def _record_failures(
    conn: Connection,
    failures: Sequence[RecordFailure],
    local_kind: str,
    now: str,
    acts: list[ActivityEntry],
) -> None:
    reports = [
        ErrorReport(
            f.entity,
            f.direction,
            "update" if f.local_id is not None else "create",
            local_kind if f.local_id is not None else None,
            f.local_id,
            f.crm_id,
            f.code,
            f.message,
        )
        for f in failures
    ]
    record_errors(conn, reports)
    if local_kind != "person":
        return
    acts += [
        activity_log.sync_error(
            f.local_id,
            entity=f.entity,
            crm_id=f.crm_id,
            direction=f.direction,
            code=f.code,
            message=f.message,
            when=now,
        )
        for f in failures
        if f.local_id is not None
    ]


def _apply_roles(conn: Connection, plan: PagePlan, now: str) -> None:
    contact_links = load_links(conn, "contact", sorted({r.contact_crm_id for r in plan.roles}))
    wanted = {
        (role.opportunity_crm_id, contact_links[role.contact_crm_id].local_id)
        for role in plan.roles
        if role.contact_crm_id in contact_links
    }
    if not wanted:
        return
    opportunity_ids = sorted({o for o, _ in wanted})
    existing = {
        (str(o), int(p))
        for o, p in conn.execute(
            select(opportunity_roles.c.externalOpportunityId, opportunity_roles.c.leadId).where(
                opportunity_roles.c.externalOpportunityId.in_(opportunity_ids),
                opportunity_roles.c.role == CUSTOMER_ROLE,
            )
        )
    }
    rows = [
        {
            "marketoGUID": str(uuid.uuid4()),
            "externalOpportunityId": o,
            "leadId": p,
            "role": CUSTOMER_ROLE,
            "isPrimary": True,
            "crmIsDeleted": False,
            "createdAt": now,
            "updatedAt": now,
        }
        for o, p in sorted(wanted)
        if (o, p) not in existing
    ]
    if rows:
        conn.execute(insert(opportunity_roles), rows)
