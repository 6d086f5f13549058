"""Pointing local records at each other by their Dynamics ids (B5, B6): a person's company
and sales user, an opportunity's company, and the account behind a contact.

Dynamics names related records by id; locally they are foreign keys, set here in bulk after a
page is applied, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection

from crmsync.store.inserts import chunks
from crmsync.store.tables import companies, crm_links, opportunities, persons, sales_persons


def link_fk_columns(conn: Connection, person_ids: Sequence[int]) -> None:
    """Point persons at their company and sales user by external id (B5, B6)."""
    for part in chunks(sorted(set(person_ids))):
        company = (
            select(companies.c.id)
            .where(companies.c.externalCompanyId == persons.c.externalCompanyId)
            .scalar_subquery()
        )
        seller = (
            select(sales_persons.c.id)
            .where(sales_persons.c.externalSalesPersonId == persons.c.externalSalesPersonId)
            .scalar_subquery()
        )
        conn.execute(
            update(persons)
            .where(persons.c.id.in_(part))
            .values(company_id=company, sales_person_id=seller)
        )


def fill_person_fks(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Set ``company_id`` and ``sales_person_id`` on new person rows from their external ids,
    as :func:`link_fk_columns` would after the insert, with one query per chunk of ids
    instead of an update of every row (B5, B6)."""
    for column, table, key in (
        ("company_id", companies, "externalCompanyId"),
        ("sales_person_id", sales_persons, "externalSalesPersonId"),
    ):
        wanted = sorted({str(row[key]) for row in rows if row.get(key) is not None})
        found: dict[str, int] = {}
        for part in chunks(wanted):
            for local_id, external in conn.execute(
                select(table.c.id, table.c[key]).where(table.c[key].in_(part))
            ):
                found[str(external)] = int(local_id)
        for row in rows:
            external = row.get(key)
            row[column] = found.get(str(external)) if external is not None else None


def link_opportunity_companies(conn: Connection, crm_ids: Sequence[str]) -> None:
    """Point opportunities at their company by external id (B6): the account customer's
    company, or the company of the contact customer's account; none when unknown."""
    company = (
        select(companies.c.id)
        .where(companies.c.externalCompanyId == opportunities.c.externalCompanyId)
        .scalar_subquery()
    )
    for part in chunks(sorted(set(crm_ids))):
        conn.execute(
            update(opportunities)
            .where(opportunities.c.externalOpportunityId.in_(part))
            .values(company_id=company)
        )


def company_of_contacts(conn: Connection, contact_ids: Sequence[str]) -> dict[str, str | None]:
    """The account id of each linked contact's person (for opportunity roles, B6)."""
    found: dict[str, str | None] = {}
    for part in chunks(list(contact_ids)):
        rows = conn.execute(
            select(crm_links.c.crm_id, persons.c.externalCompanyId)
            .select_from(crm_links.join(persons, persons.c.id == crm_links.c.local_id))
            .where(
                and_(
                    crm_links.c.entity == "contact",
                    crm_links.c.local_kind == "person",
                    crm_links.c.crm_id.in_(part),
                )
            )
        )
        for crm_id, company in rows:
            found[crm_id] = company
    return found
