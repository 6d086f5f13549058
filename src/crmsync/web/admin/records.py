"""The one-way records Dynamics owns (companies, opportunities, sales users): what their list
and detail pages read. Each kind is described once by a :class:`RecordKind`; the pages and
templates are shared."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Table, func, or_, select

from crmsync.store.field_specs import (
    COMPANY_FIELDS,
    OPPORTUNITY_FIELDS,
    SALES_PERSON_FIELDS,
    FieldSpec,
)
from crmsync.store.tables import companies, opportunities, persons, sales_persons
from crmsync.web.admin.queries import PAGE_SIZE


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True, slots=True)
class RecordKind:
    """One kind of record: its table, fields, how it is named, searched and listed."""

    path: str  # under /admin/
    title: str  # plural, for headings
    singular: str
    table: Table
    fields: tuple[FieldSpec, ...]
    name_columns: tuple[str, ...]  # REST names joined to name a record
    listed: tuple[tuple[str, str], ...]  # (REST name, heading) of the list's columns
    searched: tuple[str, ...]  # REST names matched by prefix, any case
    crm_id: str  # REST name of the Dynamics id
    dynamics_entity: str  # for "Open in Dynamics"

    def column(self, name: str) -> Column[Any]:
        """The table column with REST name ``name``."""
        found: Column[Any] = self.table.c[name]
        return found

    def name_of(self, row: dict[str, Any]) -> str:
        """How a record is named on pages."""
        parts = [str(row.get(n) or "") for n in self.name_columns]
        return " ".join(p for p in parts if p) or f"({self.singular} {row['id']})"


KINDS: dict[str, RecordKind] = {
    kind.path: kind
    for kind in (
        RecordKind(
            "companies",
            "Companies",
            "company",
            companies,
            COMPANY_FIELDS,
            ("company",),
            (("industry", "Industry"), ("billingCity", "City"), ("billingCountry", "Country")),
            ("company",),
            "externalCompanyId",
            "account",
        ),
        RecordKind(
            "opportunities",
            "Opportunities",
            "opportunity",
            opportunities,
            OPPORTUNITY_FIELDS,
            ("name",),
            (("stage", "Stage"), ("amount", "Amount"), ("closeDate", "Close date")),
            ("name",),
            "externalOpportunityId",
            "opportunity",
        ),
        RecordKind(
            "sales-users",
            "Sales users",
            "sales user",
            sales_persons,
            SALES_PERSON_FIELDS,
            ("firstName", "lastName"),
            (("email", "E-mail"),),
            ("firstName", "lastName", "email"),
            "externalSalesPersonId",
            "systemuser",
        ),
    )
}


def search_records(
    conn: Connection, kind: RecordKind, text: str = "", *, before: int | None = None
) -> list[dict[str, Any]]:
    """A page of records, newest first: all, or those whose name (or e-mail) starts with
    ``text`` in any case, or whose Dynamics id is ``text``."""
    query = select(kind.table).order_by(kind.table.c.id.desc()).limit(PAGE_SIZE)
    if before is not None:
        query = query.where(kind.table.c.id < before)
    term = text.strip().lower()
    if term:
        prefix = _like_prefix(term)
        matches: list[ColumnElement[bool]] = [
            func.lower(kind.column(name)).like(prefix, escape="\\") for name in kind.searched
        ]
        matches.append(kind.column(kind.crm_id) == term)
        query = query.where(or_(*matches))
    return [_keyed(kind.table, row) for row in conn.execute(query)]


def _keyed(table: Table, row: Any) -> dict[str, Any]:
    return {column.key: value for column, value in zip(table.c, row, strict=True)}


@dataclass(frozen=True, slots=True)
class RecordDetail:
    """A record's page: its fields and the records linked to it."""

    record: dict[str, Any]
    fields: list[tuple[str, str, object]]
    company: dict[str, Any] | None
    people: list[dict[str, Any]]
    opportunities: list[dict[str, Any]]
    companies: list[dict[str, Any]]


def record_detail(conn: Connection, kind: RecordKind, record_id: int) -> RecordDetail | None:
    """One record with its fields and links: a company's people and opportunities; an
    opportunity's company; a sales user's people and companies (a page of each)."""
    row = conn.execute(select(kind.table).where(kind.table.c.id == record_id)).first()
    if row is None:
        return None
    record = _keyed(kind.table, row)
    fields = [(s.rest_name, s.display_name, record.get(s.rest_name)) for s in kind.fields]
    people_query = select(
        persons.c.id,
        persons.c.firstName.label("firstName"),
        persons.c.lastName.label("lastName"),
        persons.c.email.label("email"),
    ).order_by(persons.c.id)
    people: list[dict[str, Any]] = []
    linked_opportunities: list[dict[str, Any]] = []
    linked_companies: list[dict[str, Any]] = []
    company = None
    if kind.table is companies:
        people = _rows(conn, people_query.where(persons.c.company_id == record_id))
        linked_opportunities = _rows(
            conn,
            select(opportunities.c.id, opportunities.c.name, opportunities.c.stage)
            .where(opportunities.c.company_id == record_id)
            .order_by(opportunities.c.id),
        )
    elif kind.table is opportunities and record.get("company_id") is not None:
        found = conn.execute(
            select(companies.c.id, companies.c.company).where(
                companies.c.id == record["company_id"]
            )
        ).first()
        company = dict(found._mapping) if found is not None else None
    elif kind.table is sales_persons and record.get("externalSalesPersonId"):
        owner = record["externalSalesPersonId"]
        people = _rows(conn, people_query.where(persons.c.externalSalesPersonId == owner))
        linked_companies = _rows(
            conn,
            select(companies.c.id, companies.c.company)
            .where(companies.c.externalSalesPersonId == owner)
            .order_by(companies.c.id),
        )
    return RecordDetail(record, fields, company, people, linked_opportunities, linked_companies)


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(query.limit(PAGE_SIZE)).mappings()]
