"""*Sync Person to Microsoft*: queue the creation of a Dynamics lead or contact for a person
(B31, B33), choosing the record's id before anything is sent.

The push (:mod:`crmsync.sync.push`) later creates the record with exactly that id.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from crmsync.errors import InvalidValueError
from crmsync.store import outbox
from crmsync.store.inserts import chunks
from crmsync.store.tables import crm_links, persons, sales_persons, sync_baselines
from crmsync.sync.links import LinkRow, insert_links, links_of_local, load_baselines
from crmsync.sync.plan import CRM_TYPES

SOURCE = "Sync Person to Microsoft"
"""The source named in the outbox entries this flow action queues."""


def set_sales_user(conn: Connection, person_ids: Sequence[int], owner: str) -> None:
    """Make the synced sales user ``owner`` (a Dynamics user id) the persons' sales user;
    refused with a clear reason when the sync has not read that user."""
    found = conn.execute(
        select(sales_persons.c.id, sales_persons.c.externalSalesPersonId).where(
            sales_persons.c.externalSalesPersonId == owner.strip().lower()
        )
    ).first()
    if found is None:
        raise InvalidValueError(
            f"no sales user {owner!r}: the owner must be a Dynamics user the sync has read"
        )
    for part in chunks(list(person_ids)):
        conn.execute(
            update(persons)
            .where(persons.c.id.in_(part))
            .values(externalSalesPersonId=found[1], sales_person_id=found[0])
        )


@dataclass(frozen=True, slots=True)
class CrmCreateRequest:
    """What :func:`request_crm_create` did: the person's Dynamics record and whether its
    creation was queued now (``False``: the person already has a record, or one queued)."""

    entity: str
    crm_id: str
    queued: bool


def request_crm_create(
    conn: Connection, person_id: int, entity: str = "lead", *, owner: str | None = None
) -> CrmCreateRequest:
    """*Sync Person to Microsoft*: queue the creation of a Dynamics lead (or contact) for a
    person that has none (B31, B33).

    The record id is chosen here and stored as the person's link **before** any request is
    sent, in the caller's transaction; the push phase creates the record with exactly this id,
    so retries, crashes and concurrent cycles never produce a second record.

    A person with a lead or a contact keeps it, whichever ``entity`` asks for: nothing is
    queued and nothing is forced (B31). Unless that record was deleted in Dynamics (the
    person's CRM is-deleted flag): then the dead links and their baselines are dropped and a
    new record is queued, once (B28).

    ``owner`` (a sales user's Dynamics id) becomes the person's sales user, and so the new
    record's owner; it is refused unless that sales user is synced (B2, B5). It changes
    nothing when no record is queued.
    """
    if entity not in CRM_TYPES:
        raise ValueError(f"only leads and contacts are created in Dynamics, not {entity!r}")
    existing = [
        link for link in links_of_local(conn, "person", [person_id]) if link.entity in CRM_TYPES
    ]
    deleted = bool(
        conn.execute(select(persons.c.crmIsDeleted).where(persons.c.id == person_id)).scalar()
    )
    if existing and not deleted:
        return CrmCreateRequest(existing[0].entity, existing[0].crm_id, False)
    for kind in {link.entity for link in existing}:
        ids = [link.crm_id for link in existing if link.entity == kind]
        synced = load_baselines(conn, kind, ids)
        queued = [crm_id for crm_id in ids if crm_id not in synced]
        if queued:
            return CrmCreateRequest(kind, queued[0], False)  # already asked for
        conn.execute(
            delete(crm_links).where(crm_links.c.entity == kind, crm_links.c.crm_id.in_(ids))
        )
        conn.execute(
            delete(sync_baselines).where(
                sync_baselines.c.entity == kind, sync_baselines.c.crm_id.in_(ids)
            )
        )
    if owner is not None:
        set_sales_user(conn, [person_id], owner)
    crm_id = str(uuid.uuid4())
    insert_links(conn, [LinkRow(entity, crm_id, "person", person_id, None)])
    outbox.enqueue(conn, [person_id], operation="create", source=SOURCE)
    return CrmCreateRequest(entity, crm_id, True)


def request_crm_creates(
    conn: Connection, person_ids: Sequence[int], entity: str = "lead", *, owner: str | None = None
) -> dict[int, CrmCreateRequest | InvalidValueError]:
    """:func:`request_crm_create` for many persons at once, in the caller's transaction: a
    handful of set-based statements instead of a few per person (a batch campaign's chunk).

    Answers per person id: what was done, or the refusal (an owner the sync has not read).
    Persons that do not exist are left out. The rare person whose record was deleted in
    Dynamics goes through :func:`request_crm_create` on its own (B28)."""
    if entity not in CRM_TYPES:
        raise ValueError(f"only leads and contacts are created in Dynamics, not {entity!r}")
    ids = list(dict.fromkeys(int(i) for i in person_ids))
    deleted: dict[int, bool] = {}
    for part in chunks(ids):
        for person_id, is_deleted in conn.execute(
            select(persons.c.id, persons.c.crmIsDeleted).where(persons.c.id.in_(part))
        ):
            deleted[int(person_id)] = bool(is_deleted)
    existing: dict[int, LinkRow] = {}
    for found in links_of_local(conn, "person", list(deleted)):
        if found.entity in CRM_TYPES:
            existing.setdefault(found.local_id, found)
    answers: dict[int, CrmCreateRequest | InvalidValueError] = {}
    fresh: list[int] = []
    for person_id, is_deleted in deleted.items():
        link = existing.get(person_id)
        if link is not None and is_deleted:
            try:
                answers[person_id] = request_crm_create(conn, person_id, entity, owner=owner)
            except InvalidValueError as exc:
                answers[person_id] = exc
        elif link is not None:
            answers[person_id] = CrmCreateRequest(link.entity, link.crm_id, False)
        else:
            fresh.append(person_id)
    if fresh and owner is not None:
        try:
            set_sales_user(conn, fresh, owner)
        except InvalidValueError as refusal:
            answers.update({person_id: refusal for person_id in fresh})
            return answers
    links = [LinkRow(entity, str(uuid.uuid4()), "person", person_id, None) for person_id in fresh]
    insert_links(conn, links)
    outbox.enqueue(conn, fresh, operation="create", source=SOURCE)
    for link in links:
        answers[link.local_id] = CrmCreateRequest(entity, link.crm_id, True)
    return answers
