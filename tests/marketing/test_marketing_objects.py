"""Companies, opportunities, roles, sales persons: describe, query, upsert (spec §7, B2)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, event, select

from crmsync.errors import InvalidValueError, UnknownFieldError
from crmsync.marketing.fields import add_local_field
from crmsync.marketing.objects import ObjectService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import companies, persons


def test_describe_shapes(migrated_engine: Engine) -> None:
    """idField, dedupeFields and searchableFields as Marketo documents them (§7.1)."""
    service = ObjectService(migrated_engine)
    company = service.describe("companies")
    assert company["idField"] == "id" and company["dedupeFields"] == ["externalCompanyId"]
    assert ["company"] in company["searchableFields"]  # type: ignore[operator]
    role = service.describe("opportunities/roles")
    assert role["dedupeFields"] == ["externalOpportunityId", "leadId", "role"]
    names = {f["name"] for f in service.describe("salespersons")["fields"]}  # type: ignore[attr-defined]
    assert {"externalSalesPersonId", "email", "firstName", "lastName"} <= names
    with pytest.raises(InvalidValueError):
        service.describe("spaceships")


def test_upsert_and_query_companies(migrated_engine: Engine) -> None:
    """Upsert by externalCompanyId; query by searchable fields with seq and fields."""
    with migrated_engine.begin() as conn:
        add_local_field(conn, "company", "tier", "Tier", "string")
    service = ObjectService(migrated_engine)
    outcomes = service.upsert(
        "company",
        [
            {"externalCompanyId": "A-1", "company": "Acme", "numberOfEmployees": "50", "tier": "g"},
            {"externalCompanyId": "B-1", "company": "Beta"},
            {"company": "No key"},
            {"externalCompanyId": "A-1", "company": "Again"},
            {"externalCompanyId": "C-1", "size": 3},
        ],
    )
    assert [o.status for o in outcomes] == ["created", "created", "skipped", "skipped", "skipped"]
    assert [o.reasons[0].code for o in outcomes[2:]] == ["1003", "1036", "1006"]
    [again] = service.upsert("company", [{"externalCompanyId": "A-1", "company": "Acme Ltd"}])
    assert again.status == "updated" and again.id == outcomes[0].id
    items, token = service.query(
        "companies",
        "externalCompanyId",
        ["A-1", "B-1", "Z-9"],
        ["company", "numberOfEmployees", "tier"],
    )
    assert token is None
    assert items == [
        {"seq": 0, "company": "Acme Ltd", "numberOfEmployees": 50, "tier": "g"},
        {"seq": 1, "company": "Beta", "numberOfEmployees": None, "tier": None},
    ]
    default, _ = service.query("company", "id", [str(outcomes[1].id)])
    assert set(default[0]) == {"seq", "id", "externalCompanyId", "updatedAt", "createdAt"}
    with pytest.raises(InvalidValueError):
        service.query("company", "industry", ["x"])
    with pytest.raises(UnknownFieldError):
        service.query("company", "company", ["Beta"], ["shoeSize"])


def test_opportunities_roles_and_sales_persons(migrated_engine: Engine) -> None:
    """Opportunities get a marketoGUID; roles dedupe on the compound key; sales persons show
    every populated field by default."""
    service = ObjectService(migrated_engine)
    [opp] = service.upsert(
        "opportunity", [{"externalOpportunityId": "O-1", "name": "Deal", "amount": "1200.50"}]
    )
    assert opp.status == "created"
    [found], _ = service.query(
        "opportunities", "externalOpportunityId", ["O-1"], ["marketoGUID", "name", "amount"]
    )
    assert found["amount"] == 1200.5 and len(str(found["marketoGUID"])) == 36
    [lead] = PersonService(migrated_engine).sync([{"email": "buyer@x.com"}])
    role = {"externalOpportunityId": "O-1", "leadId": lead.id, "role": "Buyer"}
    assert service.upsert("opportunityRole", [role])[0].status == "created"
    assert service.upsert("opportunityRole", [{**role, "isPrimary": True}])[0].status == "updated"
    roles, _ = service.query("opportunityRole", "leadId", [str(lead.id)], ["role", "isPrimary"])
    assert roles == [{"seq": 0, "role": "Buyer", "isPrimary": True}]
    service.upsert("salesperson", [{"externalSalesPersonId": "U-1", "email": "s@x.com"}])
    [person], _ = service.query("salespersons", "email", ["s@x.com"])
    assert person["externalSalesPersonId"] == "U-1" and "firstName" not in person
    assert person["crmIsDeleted"] is False


def test_query_pages(migrated_engine: Engine) -> None:
    """A nextPageToken comes back while more records match."""
    service = ObjectService(migrated_engine)
    service.upsert("team", [{"externalTeamId": f"T-{i}", "name": f"Team {i}"} for i in range(3)])
    keys = [f"T-{i}" for i in range(3)]
    page1, token = service.query("team", "externalTeamId", keys, ["name"], batch_size=2)
    assert token is not None
    page2, end = service.query("team", "externalTeamId", keys, ["name"], 2, token)
    assert end is None
    assert [p["name"] for p in page1 + page2] == ["Team 0", "Team 1", "Team 2"]


def _links(engine: Engine) -> dict[str, tuple[object, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(persons.c.email, persons.c.company_id, persons.c.sales_person_id)
        ).all()
    return {row[0]: (row[1], row[2]) for row in rows}


def test_persons_link_to_their_company_and_sales_person(migrated_engine: Engine) -> None:
    """externalCompanyId / externalSalesPersonId link a person to the records (spec §4.5, B5),
    whichever arrives first."""
    objects = ObjectService(migrated_engine)
    people = PersonService(migrated_engine)
    [acme] = objects.upsert("company", [{"externalCompanyId": "ACME", "company": "Acme"}])
    people.sync(
        [
            {"email": "early@x.com", "externalCompanyId": "ACME"},
            {"email": "waiting@x.com", "externalCompanyId": "LATER", "externalSalesPersonId": "U9"},
        ],
        allow_system_fields=True,
    )
    assert _links(migrated_engine) == {
        "early@x.com": (acme.id, None),
        "waiting@x.com": (None, None),
    }
    [later] = objects.upsert("company", [{"externalCompanyId": "LATER", "company": "Later"}])
    [owner] = objects.upsert("salesperson", [{"externalSalesPersonId": "U9", "email": "u@x.com"}])
    assert _links(migrated_engine)["waiting@x.com"] == (later.id, owner.id)
    people.sync([{"email": "early@x.com", "externalCompanyId": "LATER"}])
    assert _links(migrated_engine)["early@x.com"] == (later.id, None)
    people.sync([{"email": "early@x.com", "externalCompanyId": None}])
    assert _links(migrated_engine)["early@x.com"] == (None, None)


def test_create_only_and_update_only(migrated_engine: Engine) -> None:
    """createOnly skips an existing record (1017); updateOnly skips a missing one (1013)."""
    service = ObjectService(migrated_engine)
    service.upsert("company", [{"externalCompanyId": "E-1", "company": "Exists"}])
    created_only = service.upsert(
        "company",
        [{"externalCompanyId": "E-1", "company": "X"}, {"externalCompanyId": "N-1"}],
        action="createOnly",
    )
    assert [(o.status, [r.code for r in o.reasons]) for o in created_only] == [
        ("skipped", ["1017"]),
        ("created", []),
    ]
    updated_only = service.upsert(
        "company",
        [{"externalCompanyId": "E-1", "company": "Renamed"}, {"externalCompanyId": "M-1"}],
        action="updateOnly",
    )
    assert [(o.status, [r.code for r in o.reasons]) for o in updated_only] == [
        ("updated", []),
        ("skipped", ["1013"]),
    ]
    items, _ = service.query("company", "externalCompanyId", ["E-1", "M-1"], ["company"])
    assert items == [{"seq": 0, "company": "Renamed"}]
    with pytest.raises(InvalidValueError):
        service.upsert("company", [], action="merge")


def test_object_creates_go_to_the_database_as_one_batch(migrated_engine: Engine) -> None:
    """B16: a call creating many companies sends one batched INSERT, not one statement per
    row (SQLite cannot order RETURNING rows, which made the insert row by row); the outcomes
    still carry each record's own id."""
    inserts: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO COMPANIES"):
            inserts.append(statement)

    event.listen(migrated_engine, "before_cursor_execute", count)
    records = [{"externalCompanyId": f"K-{i}", "company": f"Firm {i}"} for i in range(40)]
    outcomes = ObjectService(migrated_engine).upsert("company", records)
    event.remove(migrated_engine, "before_cursor_execute", count)
    assert len(inserts) == 1
    assert [o.status for o in outcomes] == ["created"] * len(records)
    with migrated_engine.connect() as conn:
        rows = conn.execute(select(companies.c.id, companies.c.company)).all()
    names = {row[0]: row[1] for row in rows}
    assert [names[o.id] for o in outcomes if o.id is not None] == [r["company"] for r in records]


def test_roles_need_their_opportunity_and_lead(migrated_engine: Engine) -> None:
    """§7.1: a role's referenced opportunity and lead must exist; a missing one skips that
    record alone (1013 opportunity, 1004 lead), the others in the call are written."""
    service = ObjectService(migrated_engine)
    service.upsert("opportunity", [{"externalOpportunityId": "O-1", "name": "Deal"}])
    [lead] = PersonService(migrated_engine).sync([{"email": "buyer@x.com"}])
    assert lead.id is not None
    outcomes = service.upsert(
        "opportunityRole",
        [
            {"externalOpportunityId": "O-1", "leadId": lead.id, "role": "Buyer"},
            {"externalOpportunityId": "NO-SUCH", "leadId": lead.id, "role": "Buyer"},
            {"externalOpportunityId": "O-1", "leadId": lead.id + 99, "role": "Buyer"},
            {"externalOpportunityId": "O-1", "leadId": 2**62, "role": "User"},
        ],
    )
    assert [o.status for o in outcomes] == ["created", "skipped", "skipped", "skipped"]
    assert [o.reasons[0].code for o in outcomes[1:]] == ["1013", "1004", "1003"]
    updated = service.upsert(
        "opportunityRole",
        [{"externalOpportunityId": "NO-SUCH", "leadId": lead.id, "role": "Buyer"}],
        action="updateOnly",
    )
    assert updated[0].reasons[0].code == "1013"
    roles, _ = service.query("opportunityRole", "externalOpportunityId", ["O-1", "NO-SUCH"])
    assert [(r["externalOpportunityId"], r["leadId"]) for r in roles] == [("O-1", lead.id)]
