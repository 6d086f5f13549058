"""Applying one page of Dynamics changes with its cursor, in one transaction (B16, B17).

The page is planned (:func:`~crmsync.sync.plan.plan_page`) against the stored links,
baselines and local values of its records and applied (:func:`~crmsync.sync.apply.apply_plan`);
the entity's link is stored in the same transaction, so a crash repeats at most one page's
work and never skips any. Per-entity special cases live here: a contact is planned against
the leads it was qualified from (B3), an opportunity against its customer contact's account,
and opportunities are pointed at their companies once applied (B6). A full reconciliation
flags linked records Dynamics no longer has as deleted (B17, B26, B29).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext

from sqlalchemy import Engine, select

from crmsync.dynamics.types import CrmChange, CrmDelete, DeltaCursor
from crmsync.store.checkpoints import PagedCheckpoints
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import crm_links, sync_baselines
from crmsync.sync.apply import ApplyCounts, apply_plan
from crmsync.sync.cursors import INITIAL_PHASE, set_cursor
from crmsync.sync.foreign_keys import company_of_contacts, link_opportunity_companies
from crmsync.sync.links import link_states
from crmsync.sync.mapping import EntityMapping
from crmsync.sync.plan import (
    customer_contact_ids,
    local_kind_for,
    originating_lead_ids,
    plan_page,
)


def apply_page(
    engine: Engine,
    mapping: EntityMapping,
    items: Sequence[CrmChange | CrmDelete],
    mappings: Mapping[str, EntityMapping],
    *,
    cursor: DeltaCursor | None = None,
    next_page: str | None = None,
    missing_from: set[str] | None = None,
    checkpoints: PagedCheckpoints | None = None,
) -> ApplyCounts:
    """Plan and apply one page, and store ``cursor`` with it, in one transaction.

    ``next_page`` (an initial read's next link) is stored instead when there is no
    ``cursor`` yet, so a crashed initial read resumes after this page (B16).

    With ``missing_from`` (the ids a full reconciliation saw), linked records not among
    them are flagged deleted in the same transaction (B17, B26, B29).

    With ``checkpoints`` (a long read), SQLite's commit leaves its log to them.
    """
    entity = mapping.entity
    kind = local_kind_for(entity)
    with (
        engine.connect() as conn,
        checkpoints.deferred(conn) if checkpoints is not None else nullcontext(),
        conn.begin(),
    ):
        take_write_lock(conn)
        if missing_from is not None:
            # Only records Dynamics had can be gone: a link with no baseline is a record the
            # sync chose an id for but never created (its create failed or is still queued).
            known = crm_links.join(
                sync_baselines,
                (sync_baselines.c.entity == crm_links.c.entity)
                & (sync_baselines.c.crm_id == crm_links.c.crm_id),
            )
            gone = [
                crm_id
                for (crm_id,) in conn.execute(
                    select(crm_links.c.crm_id)
                    .select_from(known)
                    .where(crm_links.c.entity == entity)
                )
                if crm_id not in missing_from
            ]
            items = [*items, *(CrmDelete(entity, crm_id) for crm_id in gone)]
        ids = [item_id(item) for item in items]
        states, links = link_states(conn, mapping, ids, kind)
        originating = None
        if entity == "contact" and "lead" in mappings:
            lead_ids = originating_lead_ids(items)
            if lead_ids:
                originating, _ = link_states(conn, mapping, lead_ids, "person", entity="lead")
        companies = None
        if entity == "opportunity":
            contact_ids = customer_contact_ids(items)
            if contact_ids:
                companies = company_of_contacts(conn, contact_ids)
        plan = plan_page(
            mapping,
            items,
            states,
            originating_leads=originating,
            contact_companies=companies,
        )
        counts = apply_plan(conn, plan, mapping, kind, links, states=states)
        if entity == "opportunity":
            link_opportunity_companies(
                conn, [item.record.id for item in items if isinstance(item, CrmChange)]
            )
        if cursor is not None:
            set_cursor(conn, entity, cursor.delta_link)
        elif next_page is not None:
            set_cursor(conn, entity, next_page, phase=INITIAL_PHASE)
    return counts


def item_id(item: CrmChange | CrmDelete) -> str:
    """The Dynamics id of a changed or deleted record."""
    return item.record.id if isinstance(item, CrmChange) else item.id
