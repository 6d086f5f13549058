"""A person's company fields (B3, R40, R41).

A person linked to a company (a contact's account) shows the company's values in its company
fields: they are read from the one shared company row, not from the person. An edit of one of
those fields on such a person changes the company row, so every person of it shows the new
value; the edit is local (companies sync one way, from Dynamics) and the next Dynamics update
of the account overwrites it. Each change of a company's fields, from either side, writes a
Change Data Value activity on each of its people, unless the company has more than
:data:`MAX_LOGGED_PERSONS` of them (R41: the data still changes, the per-person log does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from crmsync.marketing.activity_log import ActivityEntry, change_data_value
from crmsync.marketing.fields import load_catalog
from crmsync.store.tables import companies, persons

__all__ = [
    "MAX_LOGGED_PERSONS",
    "SHARED_FIELDS",
    "company_change_activities",
    "person_column",
    "persons_with_company",
]

# person field -> the company field it shows (Appendix A maps both to the same account field)
SHARED_FIELDS: Mapping[str, str] = {
    "company": "company",
    "industry": "industry",
    "website": "website",
    "annualRevenue": "annualRevenue",
    "numberOfEmployees": "numberOfEmployees",
    "billingStreet": "billingStreet",
    "billingCity": "billingCity",
    "billingState": "billingState",
    "billingPostalCode": "billingPostalCode",
    "billingCountry": "billingCountry",
    "mainPhone": "mainPhone",
    "sicCode": "sicCode",
}
_PERSON_FIELD_OF: Mapping[str, str] = {company: person for person, company in SHARED_FIELDS.items()}
MAX_LOGGED_PERSONS = 5000

# Change Data Value: (old, new) per changed company field
FieldChanges = Mapping[str, tuple[object, object]]


def persons_with_company() -> Any:
    """``persons`` left-joined to their company: the FROM of :func:`person_column` reads."""
    return persons.outerjoin(companies, companies.c.id == persons.c.company_id)


def person_column(name: str) -> ColumnElement[Any]:
    """What field ``name`` of a person shows: the company's value for a shared field of a
    person that has a company, else the person's own column (select from
    :func:`persons_with_company`)."""
    company_field = SHARED_FIELDS.get(name)
    if company_field is None:
        return persons.c[name]
    return case(
        (persons.c.company_id.is_not(None), companies.c[company_field]),
        else_=persons.c[name],
    )


def company_change_activities(
    conn: Connection,
    changes: Mapping[int, FieldChanges],
    *,
    reason: str,
    source: str,
    when: str,
) -> list[ActivityEntry]:
    """Change Data Value activities on each person of each changed company (R41), naming the
    person's field where the person shows it, else the company's. A company with more than
    :data:`MAX_LOGGED_PERSONS` persons gets none."""
    wanted = {company_id: fields for company_id, fields in changes.items() if fields}
    if not wanted:
        return []
    person_catalog = load_catalog(conn, "person")
    company_catalog = load_catalog(conn, "company")
    entries: list[ActivityEntry] = []
    for company_id, fields in wanted.items():
        people = list(
            conn.execute(
                select(persons.c.id)
                .where(persons.c.company_id == company_id)
                .order_by(persons.c.id)
                .limit(MAX_LOGGED_PERSONS + 1)
            ).scalars()
        )
        if len(people) > MAX_LOGGED_PERSONS:
            continue
        for company_field, (old, new) in fields.items():
            name = _PERSON_FIELD_OF.get(company_field, company_field)
            field = person_catalog.get(name) if name in SHARED_FIELDS else None
            field = field or company_catalog.get(company_field)
            entries += [
                change_data_value(
                    int(person_id),
                    name,
                    old,
                    new,
                    field=field,
                    reason=reason,
                    source=source,
                    when=when,
                )
                for person_id in people
            ]
    return entries
