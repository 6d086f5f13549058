"""Custom objects through the Marketo REST API (B45): pages of a query follow
``nextPageToken``, an unknown filter or field is refused with its code, deleted records are
flagged, and an account-linked entity shows ``companyId``."""

from __future__ import annotations

import datetime as dt

from marketo_harness import MarketoHarness
from sqlalchemy import insert

from crmsync.store.tables import companies, custom_entities, custom_object_rows, persons

STAMP = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def _entity(marketo: MarketoHarness, name: str, target: str) -> None:
    with marketo.engine.begin() as conn:
        conn.execute(
            insert(custom_entities).values(
                name=name,
                display_name=name.title(),
                entity_set=f"{name}s",
                primary_id=f"{name}id",
                path=[{"entity": name, "attribute": "new_parentid", "target": target}],
                fields=[
                    {"name": "new_parentid", "displayName": "Parent", "dataType": "string"},
                    {"name": "new_level", "displayName": "Level", "dataType": "integer"},
                ],
                enabled=True,
                created_at=STAMP,
                updated_at=STAMP,
            )
        )


def _row(marketo: MarketoHarness, name: str, crm_id: str, **link: object) -> None:
    deleted = bool(link.pop("deleted", False))
    with marketo.engine.begin() as conn:
        conn.execute(
            insert(custom_object_rows).values(
                entity=name,
                crm_id=crm_id,
                values={"new_parentid": "p-1", "new_level": len(crm_id)},
                crm_is_deleted=deleted,
                created_at=STAMP,
                updated_at=STAMP,
                **link,
            )
        )


def test_query_pages_errors_and_flags(marketo: MarketoHarness) -> None:
    _entity(marketo, "new_subscription", "contact")
    with marketo.engine.begin() as conn:
        person = conn.execute(insert(persons).values(email="a@example.com")).inserted_primary_key[0]
    for n in range(5):
        _row(marketo, "new_subscription", f"s-{n}", person_id=person, deleted=n == 4)

    first = marketo.get(
        "/rest/v1/customobjects/new_subscription.json",
        {"filterType": "leadId", "filterValues": str(person), "batchSize": "3"},
    )
    assert [r["marketoGUID"] for r in first["result"]] == ["s-0", "s-1", "s-2"]
    assert first["result"][0] == {
        "seq": 0,
        "marketoGUID": "s-0",
        "new_subscriptionid": "s-0",
        "leadId": person,
        "new_parentid": "p-1",
        "new_level": 3,
        "deletedInDynamics": False,
        "createdAt": "2026-03-01T09:30:00Z",
        "updatedAt": "2026-03-01T09:30:00Z",
    }
    second = marketo.get(
        "/rest/v1/customobjects/new_subscription.json",
        {
            "filterType": "leadId",
            "filterValues": str(person),
            "batchSize": "3",
            "nextPageToken": first["nextPageToken"],
        },
    )
    assert [r["marketoGUID"] for r in second["result"]] == ["s-3", "s-4"]
    assert second["result"][1]["deletedInDynamics"] is True
    assert "nextPageToken" not in second

    by_lookup = marketo.get(
        "/rest/v1/customobjects/new_subscription.json",
        {"filterType": "new_parentid", "filterValues": "P-1", "fields": "new_level"},
    )
    assert by_lookup["result"][0] == {"seq": 0, "marketoGUID": "s-0", "new_level": 3}

    bad_filter = marketo.get(
        "/rest/v1/customobjects/new_subscription.json",
        {"filterType": "new_level", "filterValues": "3"},
    )
    assert bad_filter["errors"][0]["code"] == "1003"
    assert "Invalid filterType 'new_level'" in bad_filter["errors"][0]["message"]
    bad_field = marketo.get(
        "/rest/v1/customobjects/new_subscription.json",
        {"filterType": "leadId", "filterValues": str(person), "fields": "shoeSize"},
    )
    assert bad_field["errors"][0] == {"code": "1006", "message": "Field 'shoeSize' not found"}
    missing = marketo.get("/rest/v1/customobjects/new_subscription.json", {"filterType": "leadId"})
    assert missing["errors"][0]["code"] == "701"


def test_an_account_linked_entity_points_at_its_company(marketo: MarketoHarness) -> None:
    _entity(marketo, "new_contract", "account")
    with marketo.engine.begin() as conn:
        company = conn.execute(insert(companies).values(company="Contoso")).inserted_primary_key[0]
    _row(marketo, "new_contract", "c-1", company_id=company)
    (summary,) = marketo.get("/rest/v1/customobjects.json", {"names": "new_contract"})["result"]
    assert summary["relationships"] == [
        {"field": "companyId", "type": "parent", "relatedTo": {"name": "Company", "field": "id"}}
    ]
    assert summary["dedupeFields"] == ["new_contractid"]
    found = marketo.get(
        "/rest/v1/customobjects/new_contract.json",
        {"filterType": "companyId", "filterValues": str(company)},
    )
    assert found["result"][0]["companyId"] == company
    (described,) = marketo.get("/rest/v1/customobjects/new_contract/describe.json")["result"]
    assert [f["name"] for f in described["fields"]] == [
        "marketoGUID",
        "new_contractid",
        "companyId",
        "new_parentid",
        "new_level",
        "deletedInDynamics",
        "createdAt",
        "updatedAt",
    ]
