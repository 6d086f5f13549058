"""Conformance of reads and basic writes with the documented examples (spec §2d, §2e, §3, §5)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from data_plane_support import API, Emulator, running_emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def test_create_answers_204_with_odata_entity_id(emu: Emulator) -> None:
    """§5 Create: 204 No Content + OData-EntityId: [Org]/api/data/v9.2/leads(<id>)."""
    response = emu.request(
        "POST",
        "leads",
        {
            "firstname": "Ada",
            "lastname": "Lovelace",
            "emailaddress1": "ada@example.com",
            "leadsourcecode": 8,
            "ownerid@odata.bind": f"/systemusers({emu.app_user.systemuserid})",
        },
    )
    assert response.status_code == 204
    assert response.content == b""
    entity_id = response.headers["OData-EntityId"]
    assert entity_id.startswith(f"{API}/leads(") and entity_id.endswith(")")
    assert response.headers["OData-Version"] == "4.0"


def test_create_with_representation_answers_201_without_entity_id(emu: Emulator) -> None:
    """§5: Prefer return=representation -> 201, Preference-Applied, body with etag and key."""
    response = emu.request(
        "POST",
        "leads?$select=leadid,modifiedon",
        {"lastname": "Hopper"},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == "return=representation"
    assert "OData-EntityId" not in response.headers
    body = response.json()
    assert body["@odata.context"] == f"{API}/$metadata#leads(leadid,modifiedon)/$entity"
    assert body["@odata.etag"].startswith('W/"')
    assert body["modifiedon"].endswith("Z")
    assert set(body) == {"@odata.context", "@odata.etag", "leadid", "modifiedon"}


def test_client_supplied_key_is_honoured_and_a_repeat_is_duplicate_record(emu: Emulator) -> None:
    """§5 / §7: a known GUID in the body creates that row; the same id again -> 412 0x80040237."""
    record_id = "7eb682f1-ca75-e511-80d4-00155d2a68d1"
    first = emu.request("POST", "leads", {"leadid": record_id, "lastname": "Knuth"})
    assert first.status_code == 204
    assert first.headers["OData-EntityId"] == f"{API}/leads({record_id})"
    again = emu.request("POST", "leads", {"leadid": record_id, "lastname": "Knuth"})
    assert again.status_code == 412
    assert again.json() == {
        "error": {
            "code": "0x80040237",
            "message": "A record with matching key values already exists.",
        }
    }


def test_retrieve_unknown_id_is_404_object_does_not_exist(emu: Emulator) -> None:
    """§3 Retrieve one: unknown id -> 404, 0x80040217, "lead With Id = <id> Does Not Exist"."""
    missing = "00000000-0000-0000-0000-000000000001"
    response = emu.request("GET", f"leads({missing})")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "0x80040217",
        "message": f"lead With Id = {missing} Does Not Exist",
    }


def test_retrieve_one_with_select_has_context_etag_and_key(emu: Emulator) -> None:
    """§3: $select -> only those columns plus @odata.etag and the primary key; ETag header."""
    lead = emu.create("leads", {"firstname": "Grace", "lastname": "Hopper", "jobtitle": "RADM"})
    response = emu.request("GET", f"leads({lead})?$select=firstname,lastname")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == f"{API}/$metadata#leads(firstname,lastname)/$entity"
    assert body["firstname"] == "Grace" and body["lastname"] == "Hopper"
    assert body["leadid"] == lead
    assert "jobtitle" not in body
    assert response.headers["ETag"] == body["@odata.etag"]
    by_named_key = emu.request("GET", f"leads(leadid={lead})?$select=lastname")
    assert by_named_key.json()["lastname"] == "Hopper"


def test_conditional_get_answers_304_while_unchanged(emu: Emulator) -> None:
    """§3: If-None-Match: W/"<v>" -> 304 while the row is unchanged, 200 after a change."""
    lead = emu.create("leads", {"lastname": "Turing"})
    etag = emu.request("GET", f"leads({lead})").headers["ETag"]
    assert emu.request("GET", f"leads({lead})", headers={"If-None-Match": etag}).status_code == 304
    emu.request("PATCH", f"leads({lead})", {"jobtitle": "Mathematician"})
    assert emu.request("GET", f"leads({lead})", headers={"If-None-Match": etag}).status_code == 200


def test_lookup_reads_as_value_property_with_annotations(emu: Emulator) -> None:
    """§2d: lookups read as _x_value; annotations name the navigation property and table."""
    account = emu.create("accounts", {"name": "Contoso"})
    contact = emu.create(
        "contacts",
        {
            "firstname": "Susanna",
            "lastname": "Stubberod",
            "parentcustomerid_account@odata.bind": f"/accounts({account})",
        },
    )
    plain = emu.request("GET", f"contacts({contact})?$select=parentcustomerid").json()
    assert plain["_parentcustomerid_value"] == account
    assert not [k for k in plain if "@" in k and k != "@odata.etag" and k != "@odata.context"]
    annotated = emu.request(
        "GET",
        f"contacts({contact})?$select=parentcustomerid",
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).json()
    prefix = "_parentcustomerid_value@"
    assert (
        annotated[prefix + "Microsoft.Dynamics.CRM.associatednavigationproperty"]
        == "parentcustomerid_account"
    )
    assert annotated[prefix + "Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert annotated[prefix + "OData.Community.Display.V1.FormattedValue"] == "Contoso"


def test_formatted_values_for_choices_booleans_numbers_and_money(emu: Emulator) -> None:
    """§2e: labels and formatted strings only as FormattedValue annotations."""
    lead = emu.create(
        "leads",
        {
            "lastname": "Byron",
            "leadsourcecode": 8,
            "donotemail": False,
            "numberofemployees": 9500,
            "revenue": 100000,
        },
    )
    body = emu.request(
        "GET",
        f"leads({lead})?$select=leadsourcecode,donotemail,numberofemployees,revenue",
        headers={"Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'},
    ).json()
    formatted = "@OData.Community.Display.V1.FormattedValue"
    assert body["leadsourcecode"] == 8 and body["leadsourcecode" + formatted] == "Web"
    assert body["donotemail"] is False and body["donotemail" + formatted] == "Allow"
    assert body["numberofemployees" + formatted] == "9,500"
    assert body["revenue" + formatted] == "$100,000.00"


def test_single_property_get_put_delete(emu: Emulator) -> None:
    """§3/§5: GET /leads(id)/firstname -> {"value"}; PUT sets it; DELETE clears it."""
    lead = emu.create("leads", {"firstname": "Ada", "lastname": "King"})
    got = emu.request("GET", f"leads({lead})/firstname")
    assert got.status_code == 200 and got.json()["value"] == "Ada"
    assert emu.request("PUT", f"leads({lead})/jobtitle", {"value": "CTO"}).status_code == 204
    assert emu.request("GET", f"leads({lead})/jobtitle").json()["value"] == "CTO"
    assert emu.request("DELETE", f"leads({lead})/jobtitle").status_code == 204
    assert emu.request("GET", f"leads({lead})/jobtitle").status_code == 204


def test_ref_disassociates_and_binds_a_lookup(emu: Emulator) -> None:
    """§2d: DELETE /leads(id)/parentaccountid/$ref clears; PUT .../$ref with @odata.id sets."""
    account = emu.create("accounts", {"name": "Fabrikam"})
    lead = emu.create(
        "leads", {"lastname": "Doe", "parentaccountid@odata.bind": f"accounts({account})"}
    )
    assert (
        emu.request("GET", f"leads({lead})?$select=parentaccountid").json()[
            "_parentaccountid_value"
        ]
        == account
    )
    assert emu.request("DELETE", f"leads({lead})/parentaccountid/$ref").status_code == 204
    assert (
        emu.request("GET", f"leads({lead})?$select=parentaccountid").json()[
            "_parentaccountid_value"
        ]
        is None
    )
    put = emu.request(
        "PUT", f"leads({lead})/parentaccountid/$ref", {"@odata.id": f"{API}/accounts({account})"}
    )
    assert put.status_code == 204
    assert (
        emu.request("GET", f"leads({lead})?$select=parentaccountid").json()[
            "_parentaccountid_value"
        ]
        == account
    )


def test_filter_operators_functions_and_literals(emu: Emulator) -> None:
    """§3 $filter: eq/ne/gt, and/or/not, contains/startswith/endswith, null, GUIDs, dates."""
    owner = emu.app_user.systemuserid
    emu.create("leads", {"firstname": "Ann", "lastname": "O'Bryan", "numberofemployees": 10})
    emu.create(
        "leads",
        {
            "firstname": "Bob",
            "lastname": "Smith",
            "numberofemployees": 500,
            "emailaddress1": "bob@contoso.com",
        },
    )
    emu.create("leads", {"firstname": "Cy", "lastname": "Smithers"})

    def names(expression: str) -> list[str]:
        response = emu.request(
            "GET", f"leads?$select=firstname&$orderby=firstname asc&$filter={expression}"
        )
        assert response.status_code == 200, response.text
        return [row["firstname"] for row in response.json()["value"]]

    assert names("lastname eq 'O''Bryan'") == ["Ann"]
    assert names("lastname eq 'SMITH'") == ["Bob"]  # case-insensitive
    assert names("numberofemployees gt 100") == ["Bob"]
    assert names("startswith(lastname,'smith') and not endswith(lastname,'ers')") == ["Bob"]
    assert names("contains(emailaddress1,'contoso') or numberofemployees eq 10") == ["Ann", "Bob"]
    assert names("numberofemployees eq null") == ["Cy"]
    assert names(f"_ownerid_value eq {owner}") == ["Ann", "Bob", "Cy"]
    assert names("createdon gt 2020-01-01T00:00:00Z") == ["Ann", "Bob", "Cy"]
    assert names(
        "Microsoft.Dynamics.CRM.In(PropertyName='firstname',PropertyValues=['Ann','Cy'])"
    ) == ["Ann", "Cy"]


def test_orderby_descending_and_top_without_paging(emu: Emulator) -> None:
    """§3: $orderby desc; $top limits and gives no nextLink."""
    for number in (3, 1, 2):
        emu.create("leads", {"lastname": f"L{number}", "numberofemployees": number})
    response = emu.request("GET", "leads?$select=lastname&$orderby=numberofemployees desc&$top=2")
    body = response.json()
    assert [row["lastname"] for row in body["value"]] == ["L3", "L2"]
    assert "@odata.nextLink" not in body


def test_count_option_and_count_segment(emu: Emulator) -> None:
    """§3 Count: $count=true adds @odata.count; /$count answers text/plain; totalrecordcount."""
    for index in range(3):
        emu.create("accounts", {"name": f"A{index}"})
    body = emu.request(
        "GET",
        "accounts?$select=name&$count=true",
        headers={
            "Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount,'
            'Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"'
        },
    ).json()
    assert body["@odata.count"] == 3
    assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] == 3
    assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is False
    without = emu.request(
        "GET",
        "accounts?$select=name",
        headers={"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount"'},
    ).json()
    assert without["@Microsoft.Dynamics.CRM.totalrecordcount"] == -1
    segment = emu.request("GET", "accounts/$count")
    assert segment.status_code == 200
    assert segment.headers["Content-Type"].startswith("text/plain")
    assert segment.text == "3"


def test_skip_and_unknown_properties_are_rejected(emu: Emulator) -> None:
    """§3: $skip is not supported; an unknown $select property is a 400 OData error."""
    skip = emu.request("GET", "leads?$top=5&$skip=5")
    assert skip.status_code == 400
    assert "$skip" in skip.json()["error"]["message"]
    unknown = emu.request("GET", "leads?$select=nosuchcolumn")
    assert unknown.status_code == 400
    assert unknown.json()["error"] == {
        "code": "0x80060888",
        "message": "Could not find a property named 'nosuchcolumn' on type "
        "'Microsoft.Dynamics.CRM.lead'.",
    }
    assert emu.request("GET", "nosuchset").status_code == 404


def test_expand_single_valued_navigation_property(emu: Emulator) -> None:
    """§3 $expand of a lookup with a nested $select."""
    account = emu.create("accounts", {"name": "Northwind"})
    emu.create(
        "contacts",
        {"lastname": "Fuller", "parentcustomerid_account@odata.bind": f"/accounts({account})"},
    )
    body = emu.request(
        "GET", "contacts?$select=lastname&$expand=parentcustomerid_account($select=name)"
    ).json()
    assert body["value"][0]["parentcustomerid_account"]["name"] == "Northwind"
    assert body["value"][0]["parentcustomerid_account"]["accountid"] == account


def test_collection_methods_that_make_no_sense_are_405(emu: Emulator) -> None:
    """§0 status table: PATCH/DELETE on a collection -> 405."""
    assert emu.request("PATCH", "leads", {"lastname": "x"}).status_code == 405
    assert emu.request("DELETE", "leads").status_code == 405


def test_requests_without_a_token_are_refused(emu: Emulator) -> None:
    """§1: the Web API needs a bearer token (the control plane answers 401)."""
    response = emu.client.get(f"{API}/WhoAmI")
    assert response.status_code == 401


def test_money_columns_carry_the_transaction_currency(emu: Emulator) -> None:
    """§2d: selecting a money column auto-adds _transactioncurrencyid_value (base currency)."""
    lead = emu.create("leads", {"lastname": "Money", "revenue": 1250.5})
    body = emu.request(
        "GET",
        f"leads({lead})?$select=revenue",
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).json()
    assert body["@odata.context"] == f"{API}/$metadata#leads(revenue)/$entity"
    currency = body["_transactioncurrencyid_value"]
    assert (
        body["_transactioncurrencyid_value@OData.Community.Display.V1.FormattedValue"]
        == "US Dollar"
    )
    usd = emu.request("GET", f"transactioncurrencies({currency})?$select=isocurrencycode").json()
    assert usd["isocurrencycode"] == "USD"
    other = emu.create(
        "transactioncurrencies",
        {
            "currencyname": "Euro",
            "isocurrencycode": "EUR",
            "currencysymbol": "€",
            "exchangerate": 0.9,
        },
    )
    account = emu.create(
        "accounts",
        {
            "name": "Euro Co",
            "revenue": 10,
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({other})",
        },
    )
    assert (
        emu.request("GET", f"accounts({account})?$select=revenue").json()[
            "_transactioncurrencyid_value"
        ]
        == other
    )


def test_date_only_columns_read_as_dates(emu: Emulator) -> None:
    """§2e: date-time columns are UTC ISO-8601; date-only columns are plain dates."""
    opportunity = emu.create(
        "opportunities",
        {
            "name": "Deal",
            "estimatedclosedate": "2026-03-31",
            "actualclosedate": "2026-04-02T00:00:00Z",
        },
    )
    body = emu.request(
        "GET", f"opportunities({opportunity})?$select=estimatedclosedate,actualclosedate,createdon"
    ).json()
    assert body["estimatedclosedate"] == "2026-03-31"
    assert body["actualclosedate"] == "2026-04-02"
    assert body["createdon"].endswith("Z") and "T" in body["createdon"]
    found = emu.request(
        "GET", "opportunities?$select=name&$filter=estimatedclosedate eq 2026-03-31"
    )
    assert [row["name"] for row in found.json()["value"]] == ["Deal"]


def test_collection_valued_navigation_lists_the_referencing_rows(emu: Emulator) -> None:
    """§6 example GET accounts(<id>)/Account_Tasks; customer lookups split by target table."""
    account = emu.create("accounts", {"name": "Parent"})
    other = emu.create("accounts", {"name": "Other"})
    emu.create(
        "contacts",
        {"lastname": "Child", "parentcustomerid_account@odata.bind": f"/accounts({account})"},
    )
    emu.create(
        "contacts",
        {"lastname": "Elsewhere", "parentcustomerid_account@odata.bind": f"/accounts({other})"},
    )
    emu.create(
        "tasks",
        {"subject": "Call", "regardingobjectid_account_task@odata.bind": f"/accounts({account})"},
    )
    tasks = emu.request("GET", f"accounts({account})/Account_Tasks?$select=subject").json()
    assert [row["subject"] for row in tasks["value"]] == ["Call"]
    assert tasks["@odata.context"] == f"{API}/$metadata#tasks(subject)"
    contacts = emu.request(
        "GET", f"accounts({account})/contact_customer_accounts?$select=lastname"
    ).json()
    assert [row["lastname"] for row in contacts["value"]] == ["Child"]
    missing = emu.request("GET", "accounts(00000000-0000-0000-0000-0000000000ee)/Account_Tasks")
    assert missing.status_code == 404


def test_alternate_key_syntax_without_a_defined_key_is_400(emu: Emulator) -> None:
    """§5 Alternate keys: none exist by default; a non-key column in the URL is a 400."""
    response = emu.request("GET", "leads(emailaddress1='ada@example.com')")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.lead'."
    )
    user = emu.app_user.systemuserid
    named = emu.request("GET", f"systemusers(systemuserid={user})")
    assert named.status_code == 400  # §2a: principal tables refuse the named-key syntax
    assert emu.request("GET", f"systemusers({user})?$select=fullname").status_code == 200
