"""Companies, opportunities, roles, sales persons and the CRM-sync rule (spec §7)."""

from __future__ import annotations

from marketo_harness import MarketoHarness

from crmsync.store.key_values import set_sync_enabled


def _enable_sync(marketo: MarketoHarness, enabled: bool) -> None:
    with marketo.engine.begin() as conn:
        set_sync_enabled(conn, enabled)


def test_company_writes_and_reads_while_sync_is_disabled(marketo: MarketoHarness) -> None:
    """§7.1: createOrUpdate by externalCompanyId, query with seq, describe."""
    synced = marketo.post_json(
        "/rest/v1/companies.json",
        {
            "input": [
                {"externalCompanyId": "C1", "company": "Contoso"},
                {"externalCompanyId": "C2", "company": "Fabrikam", "shoeSize": 1},
            ]
        },
    )
    assert synced["result"][0]["status"] == "created"
    assert synced["result"][0]["seq"] == 0
    assert synced["result"][1]["reasons"][0]["code"] == "1006"
    found = marketo.http.post(
        "/rest/v1/companies.json",
        params={"_method": "GET"},
        data={
            "filterType": "externalCompanyId",
            "filterValues": "C1,C2",
            "fields": ["company", "externalCompanyId"],
        },
        headers=marketo.auth,
    ).json()
    assert found["result"] == [{"seq": 0, "company": "Contoso", "externalCompanyId": "C1"}]
    create_only = marketo.post_json(
        "/rest/v1/companies.json",
        {"action": "createOnly", "input": [{"externalCompanyId": "C1", "company": "Again"}]},
    )
    assert create_only["result"][0]["reasons"][0]["code"] == "1017"
    update_only = marketo.post_json(
        "/rest/v1/companies.json",
        {"action": "updateOnly", "input": [{"externalCompanyId": "C9", "company": "Nobody"}]},
    )
    assert update_only["result"][0]["reasons"][0]["code"] == "1013"
    bad_action = marketo.post_json(
        "/rest/v1/companies.json", {"action": "merge", "input": [{"externalCompanyId": "C1"}]}
    )
    assert bad_action["errors"][0]["code"] == "1003"
    described = marketo.get("/rest/v1/companies/describe.json")["result"][0]
    assert described["dedupeFields"] == ["externalCompanyId"]
    assert ["company"] in described["searchableFields"]


def test_crm_sync_enabled_blocks_writes_with_1018_but_not_reads(marketo_db: MarketoHarness) -> None:
    """§7.2 / §10.10: with the CRM sync on, writes are 1018 and roles are 1018 entirely."""
    marketo_db.post_json(
        "/rest/v1/salespersons.json",
        {"input": [{"externalSalesPersonId": "S1", "email": "s1@example.com"}]},
    )
    _enable_sync(marketo_db, True)
    for path in (
        "/rest/v1/companies.json",
        "/rest/v1/opportunities.json",
        "/rest/v1/salespersons.json",
        "/rest/v1/opportunities/roles.json",
    ):
        refused = marketo_db.post_json(path, {"input": [{"externalCompanyId": "X"}]})
        assert refused["errors"] == [{"code": "1018", "message": "CRM Enabled"}], path
    deleted = marketo_db.post_json("/rest/v1/companies/delete.json", {"input": [{"id": 1}]})
    assert deleted["errors"][0]["code"] == "1018"
    people = marketo_db.get(
        "/rest/v1/salespersons.json", {"filterType": "externalSalesPersonId", "filterValues": "S1"}
    )
    assert people["result"][0]["email"] == "s1@example.com"
    assert marketo_db.get("/rest/v1/opportunities/describe.json")["success"] is True
    roles = marketo_db.get("/rest/v1/opportunities/roles/describe.json")
    assert roles["errors"][0]["code"] == "1018"
    _enable_sync(marketo_db, False)
    assert marketo_db.get("/rest/v1/opportunities/roles/describe.json")["success"] is True


def test_opportunity_roles_compound_key_query(marketo_db: MarketoHarness) -> None:
    """§7.1: roles queried by (externalOpportunityId, leadId, role) in a tunnelled JSON body."""
    marketo_db.post_json(
        "/rest/v1/opportunities.json", {"input": [{"externalOpportunityId": "O1", "name": "Deal"}]}
    )
    leads = marketo_db.post_json(  # a role's lead must exist (§7.1)
        "/rest/v1/leads.json", {"input": [{"email": "b@example.com"}, {"email": "u@example.com"}]}
    )
    buyer, user = (item["id"] for item in leads["result"])
    marketo_db.post_json(
        "/rest/v1/opportunities/roles.json",
        {
            "input": [
                {"externalOpportunityId": "O1", "leadId": buyer, "role": "Buyer"},
                {"externalOpportunityId": "O1", "leadId": user, "role": "User"},
            ]
        },
    )
    found = marketo_db.post_json(
        "/rest/v1/opportunities/roles.json",
        {
            "filterType": "dedupeFields",
            "fields": ["role", "leadId"],
            "input": [{"externalOpportunityId": "O1", "leadId": user, "role": "User"}],
        },
        params={"_method": "GET"},
    )
    assert [(item["leadId"], item["role"]) for item in found["result"]] == [(user, "User")]
    bad_filter = marketo_db.get(
        "/rest/v1/opportunities.json", {"filterType": "name", "filterValues": "Deal"}
    )
    assert bad_filter["errors"][0]["code"] == "1003"
