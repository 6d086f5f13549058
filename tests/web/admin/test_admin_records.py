"""Companies, opportunities and sales users pages: read-only lists with search and paging,
detail pages linking a company to its people and opportunities, an opportunity to its company,
a sales user to what it owns, and a person back to its company."""

from __future__ import annotations

import re

from admin_harness import SyncedAdmin, text_of
from sqlalchemy import select

from crmsync.store.tables import companies, opportunities, persons, sales_persons


def test_companies_list_search_and_detail_link_people(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    with admin.engine.connect() as conn:
        company_id, name = conn.execute(
            select(companies.c.id, companies.c.company)
            .where(companies.c.id.in_(select(persons.c.company_id)))
            .limit(1)
        ).one()
        person = conn.execute(
            select(persons.c.id, persons.c.firstName).where(persons.c.company_id == company_id)
        ).first()
        total = len(conn.execute(select(companies.c.id)).all())
    assert person is not None and total >= 1
    browser = admin.signed_in()
    listing = admin.page(browser, "/admin/companies")
    assert "Read-only — from Dynamics" in text_of(listing)
    assert len(re.findall(r'href="/admin/companies/\d+"', listing)) == total
    found = admin.page(browser, f"/admin/companies?q={name[:4].lower()}")
    assert f'href="/admin/companies/{company_id}"' in found
    assert "No company matches" in text_of(admin.page(browser, "/admin/companies?q=zzzz-none"))

    page = admin.page(browser, f"/admin/companies/{company_id}")
    assert f'href="/admin/people/{person.id}">{person.firstName} ' in page
    assert "Open in Dynamics" in text_of(page)
    assert "<form" not in page.split("</header>")[1]  # nothing to change here
    person_page = admin.page(browser, f"/admin/people/{person.id}")
    assert f'href="/admin/companies/{company_id}"' in person_page


def test_opportunities_and_sales_users(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    browser = admin.signed_in()
    with admin.engine.begin() as conn:
        company_id = conn.execute(select(companies.c.id).limit(1)).scalar_one()
        conn.execute(
            opportunities.insert().values(
                name="Big renewal",
                externalOpportunityId="0f0e0d0c-0000-4000-8000-000000000001",
                stage="Propose",
                company_id=company_id,
                createdAt="2026-05-03T12:00:00Z",
                updatedAt="2026-05-03T12:00:00Z",
            )
        )
        opportunity = conn.execute(
            select(opportunities.c.id, opportunities.c.name, opportunities.c.company_id).where(
                opportunities.c.company_id.is_not(None)
            )
        ).first()
        user = conn.execute(
            select(sales_persons.c.id, sales_persons.c.email, sales_persons.c.firstName)
        ).first()
    assert opportunity is not None and user is not None
    assert str(opportunity.name) in text_of(admin.page(browser, "/admin/opportunities"))
    page = admin.page(browser, f"/admin/opportunities/{opportunity.id}")
    assert f'href="/admin/companies/{opportunity.company_id}"' in page
    users = text_of(admin.page(browser, f"/admin/sales-users?q={user.email}"))
    assert str(user.email) in users
    assert str(user.firstName) in text_of(admin.page(browser, f"/admin/sales-users/{user.id}"))
    missing = browser.get("/admin/opportunities/999999")
    assert missing.status_code == 404 and "There is no opportunity 999999." in text_of(missing.text)
    assert browser.get("/admin/sales-users/x").status_code == 400
    assert browser.get("/admin/static/admin.css").status_code == 200


def test_person_page_fields_show_the_company_values(synced_admin: SyncedAdmin) -> None:
    """B3: a person of a company shows the company's billing address, main phone and SIC code
    in its own fields, as the Marketo API reads them."""
    admin = synced_admin.admin
    with admin.engine.begin() as conn:
        company_id, person_id = conn.execute(
            select(persons.c.company_id, persons.c.id).where(persons.c.company_id.is_not(None))
        ).first() or (None, None)
        assert company_id is not None
        conn.execute(
            companies.update()
            .where(companies.c.id == company_id)
            .values(billingCity="Bristol", mainPhone="+44 117 000 0000", sicCode="6201")
        )
    browser = admin.signed_in()
    page = admin.page(browser, f"/admin/people/{person_id}")
    own_fields = text_of(page.split("<h2>Company</h2>")[0].split("<h2>Fields</h2>")[1])
    assert "Billing City billingCity Bristol" in own_fields
    assert "Main Phone mainPhone +44 117 000 0000" in own_fields
    assert "SIC Code sicCode 6201" in own_fields
