"""Updates, upserts, ETags, binds, validation, plug-ins, duplicates, security (spec §5-§10)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from data_plane_support import API, Emulator, running_emulator

from crmsync.emulator.config import PluginRule, default_config


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _error(response: object) -> dict[str, str]:
    return response.json()["error"]  # type: ignore[attr-defined, no-any-return]


def test_update_stamps_modifiedby_modifiedon_and_version(emu: Emulator) -> None:
    """§5: every write stamps modifiedon, modifiedby (the acting user) and versionnumber."""
    lead = emu.create("leads", {"lastname": "Lovelace"})
    before = emu.request("GET", f"leads({lead})?$select=modifiedon,versionnumber").json()
    emu.clock.advance(minutes=5)
    response = emu.request("PATCH", f"leads({lead})", {"jobtitle": "CTO"}, user=emu.salesperson)
    assert response.status_code == 204
    assert response.headers["OData-EntityId"] == f"{API}/leads({lead})"
    after = emu.request(
        "GET", f"leads({lead})?$select=modifiedon,modifiedby,versionnumber,jobtitle"
    ).json()
    assert after["jobtitle"] == "CTO"
    assert after["_modifiedby_value"] == emu.salesperson.systemuserid
    assert after["modifiedon"] > before["modifiedon"]
    assert after["versionnumber"] > before["versionnumber"]
    assert after["@odata.etag"] == f'W/"{after["versionnumber"]}"'


def test_if_match_with_a_stale_etag_is_412_and_changes_nothing(emu: Emulator) -> None:
    """§5 Optimistic concurrency: stale If-Match -> 412 ConcurrencyVersionMismatch."""
    lead = emu.create("leads", {"lastname": "Old"})
    etag = emu.request("GET", f"leads({lead})").headers["ETag"]
    emu.request("PATCH", f"leads({lead})", {"lastname": "Newer"})
    stale = emu.request("PATCH", f"leads({lead})", {"lastname": "Lost"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert _error(stale)["message"] == (
        "The version of the existing record doesn't match the RowVersion property provided."
    )
    assert emu.request("GET", f"leads({lead})/lastname").json()["value"] == "Newer"
    fresh = emu.request("GET", f"leads({lead})").headers["ETag"]
    assert (
        emu.request(
            "PATCH", f"leads({lead})", {"lastname": "Won"}, headers={"If-Match": fresh}
        ).status_code
        == 204
    )
    assert emu.request("DELETE", f"leads({lead})", headers={"If-Match": fresh}).status_code == 412


def test_if_match_star_is_update_only(emu: Emulator) -> None:
    """§5: If-Match: * on a missing row -> 404, nothing created."""
    missing = "11111111-2222-3333-4444-555555555555"
    response = emu.request(
        "PATCH", f"leads({missing})", {"lastname": "X"}, headers={"If-Match": "*"}
    )
    assert response.status_code == 404
    assert emu.request("GET", f"leads({missing})").status_code == 404


def test_if_none_match_star_is_create_only(emu: Emulator) -> None:
    """§5: If-None-Match: * on an existing row -> 412 DuplicateRecord."""
    lead = emu.create("leads", {"lastname": "Here"})
    response = emu.request(
        "PATCH", f"leads({lead})", {"lastname": "X"}, headers={"If-None-Match": "*"}
    )
    assert response.status_code == 412
    assert _error(response)["code"] == "0x80040237"


def test_upsert_answers_201_when_created_and_200_when_updated(emu: Emulator) -> None:
    """§5 Upsert: with return=representation 201 (created) vs 200 (updated), plus ETag."""
    record = "21212121-2121-2121-2121-212121212121"
    prefer = {"Prefer": "return=representation"}
    created = emu.request(
        "PATCH", f"leads({record})?$select=leadid,lastname", {"lastname": "New"}, headers=prefer
    )
    assert created.status_code == 201
    assert created.json()["leadid"] == record
    assert created.headers["ETag"] == created.json()["@odata.etag"]
    updated = emu.request(
        "PATCH", f"leads({record})?$select=leadid,lastname", {"lastname": "Upd"}, headers=prefer
    )
    assert updated.status_code == 200
    assert updated.json()["lastname"] == "Upd"
    plain = emu.request("PATCH", f"leads({record})", {"lastname": "Again"})
    assert plain.status_code == 204
    assert plain.headers["OData-EntityId"] == f"{API}/leads({record})"


def test_delete_then_404(emu: Emulator) -> None:
    """§5 Delete: 204, then the row is gone (404)."""
    lead = emu.create("leads", {"lastname": "Gone"})
    assert emu.request("DELETE", f"leads({lead})").status_code == 204
    assert emu.request("DELETE", f"leads({lead})").status_code == 404
    assert emu.request("GET", f"leads({lead})").status_code == 404


def test_binds_customer_suffixes_owner_teams_and_clearing(emu: Emulator) -> None:
    """§2d: _account/_contact suffixes for customer lookups, ownerid -> teams, bind null clears."""
    account = emu.create("accounts", {"name": "Contoso"})
    contact = emu.create("contacts", {"lastname": "Pal"})
    team = emu.create("teams", {"name": "West Sales"})
    lead = emu.create(
        "leads",
        {
            "lastname": "L",
            "customerid_contact@odata.bind": f"/contacts({contact})",
            "ownerid@odata.bind": f"/teams({team})",
        },
    )
    body = emu.request(
        "GET",
        f"leads({lead})?$select=customerid,ownerid",
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).json()
    assert body["_customerid_value"] == contact
    assert body["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "contact"
    assert body["_ownerid_value"] == team
    assert body["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "team"
    emu.request(
        "PATCH", f"leads({lead})", {"customerid_account@odata.bind": f"{API}/accounts({account})"}
    )
    emu.request(
        "PATCH", f"leads({lead})", {"parentaccountid@odata.bind": f"accounts(accountid={account})"}
    )
    body = emu.request(
        "GET",
        f"leads({lead})?$select=customerid,parentaccountid",
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).json()
    assert (
        body["_customerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"]
        == "customerid_account"
    )
    assert body["_parentaccountid_value"] == account
    emu.request("PATCH", f"leads({lead})", {"parentaccountid@odata.bind": None})
    assert (
        emu.request("GET", f"leads({lead})?$select=parentaccountid").json()[
            "_parentaccountid_value"
        ]
        is None
    )


def test_bind_errors(emu: Emulator) -> None:
    """§10: lookups must point at an existing row of an allowed table."""
    missing = "33333333-3333-3333-3333-333333333333"
    gone = emu.request("POST", "leads", {"parentaccountid@odata.bind": f"/accounts({missing})"})
    assert gone.status_code == 404
    assert _error(gone) == {
        "code": "0x80040217",
        "message": f"account With Id = {missing} Does Not Exist",
    }
    contact = emu.create("contacts", {"lastname": "C"})
    wrong = emu.request("POST", "leads", {"parentaccountid@odata.bind": f"/contacts({contact})"})
    assert wrong.status_code == 400
    assert _error(wrong)["code"] == "0x80048d19"
    direct = emu.request("POST", "leads", {"_parentaccountid_value": missing})
    assert direct.status_code == 400


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"firstname": "x" * 51}, "0x80044331"),
        ({"numberofemployees": 1_000_001}, "0x8004432F"),
        ({"leadsourcecode": 99}, "0x8004431A"),
        ({"firstname": "bad\x07bell"}, "0x80040278"),
        ({"mkt_lastinterestingmomentdate": "1752-12-31T00:00:00Z"}, "0x80040239"),
        ({"nosuchcolumn": 1}, "0x80048d19"),
        ({"numberofemployees": "ten"}, "0x80048d19"),
        ({"statecode": 0, "statuscode": 4}, "0x80040203"),
    ],
)
def test_validation_errors_are_400_with_the_documented_codes(
    emu: Emulator, body: dict[str, object], code: str
) -> None:
    """§10/§7: MaxLength, ranges, option values, characters, dates, unknown properties."""
    response = emu.request("POST", "leads", {"lastname": "V", **body})
    assert response.status_code == 400
    assert _error(response)["code"] == code
    assert emu.request("GET", "leads/$count").text == "0"


def test_string_length_message_matches_the_documented_text(emu: Emulator) -> None:
    """§7: the StringLengthTooLong message names attribute, entity and limit."""
    response = emu.request("POST", "tasks", {"subject": "s" * 201})
    assert _error(response)["message"] == (
        "A validation error occurred.  The length of the 'subject' attribute of the 'task' entity "
        "exceeded the maximum allowed length of '200'."
    )


def test_application_required_email_format_and_read_only_columns_are_not_enforced(
    emu: Emulator,
) -> None:
    """§10: no lastname is fine, any e-mail string is fine, read-only columns are ignored."""
    response = emu.request(
        "POST",
        "leads?$select=fullname,emailaddress1,createdon",
        {
            "firstname": "Only",
            "emailaddress1": "not-an-email",
            "fullname": "Ignored",
            "createdon": "2001-01-01T00:00:00Z",
        },
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["fullname"] == "Only"
    assert body["emailaddress1"] == "not-an-email"
    assert not body["createdon"].startswith("2001")


def test_status_alone_implies_its_state(emu: Emulator) -> None:
    """§10: statuscode must belong to statecode; a lone statuscode sets the matching state."""
    lead = emu.create("leads", {"lastname": "S", "statuscode": 5})
    body = emu.request("GET", f"leads({lead})?$select=statecode,statuscode").json()
    assert (body["statecode"], body["statuscode"]) == (2, 5)


def test_plugin_rules_fail_with_the_plugin_error_shape() -> None:
    """§7/§10: configured plug-in rules answer 400 0x80040265 with their message."""
    config = replace(
        default_config(),
        plugin_rules=(
            PluginRule(
                "lead",
                "telephone1",
                "regex",
                r"^\+?[0-9 ()-]+$",
                "Business phone must contain digits only.",
            ),
            PluginRule("lead", "companyname", "required_on_create", "", "Company is required."),
        ),
    )
    with running_emulator(config) as emu:
        response = emu.request(
            "POST",
            "leads",
            {"lastname": "P", "companyname": "C", "telephone1": "call me"},
            headers={"Prefer": 'odata.include-annotations="*"'},
        )
        assert response.status_code == 400
        error = _error(response)
        assert error["code"] == "0x80040265"
        assert error["message"] == "Business phone must contain digits only."
        assert "@Microsoft.PowerApps.CDS.HelpLink" in error
        missing = emu.request("POST", "leads", {"lastname": "P"})
        assert _error(missing) == {"code": "0x80040265", "message": "Company is required."}
        assert (
            emu.request(
                "POST", "leads", {"lastname": "P", "companyname": "C", "telephone1": "+1 555"}
            ).status_code
            == 204
        )


def test_duplicate_detection_only_when_asked_for(emu: Emulator) -> None:
    """§7: duplicate detection (500 0x80040333) only with SuppressDuplicateDetection: false."""
    emu.create("leads", {"lastname": "A", "emailaddress1": "dup@example.com"})
    assert (
        emu.request(
            "POST", "leads", {"lastname": "B", "emailaddress1": "DUP@example.com"}
        ).status_code
        == 204
    )
    checked = emu.request(
        "POST",
        "leads",
        {"lastname": "C", "emailaddress1": "dup@example.com"},
        headers={"MSCRM.SuppressDuplicateDetection": "false"},
    )
    assert checked.status_code == 500
    assert _error(checked)["code"] == "0x80040333"


def test_field_security_hides_and_protects_secured_columns(emu: Emulator) -> None:
    """§9: secured columns read back null without read access; writes get 403 (F502/F507)."""
    lead = emu.create("leads", {"lastname": "Rich", "revenue": 5_000_000})
    assert emu.request("GET", f"leads({lead})?$select=revenue").json()["revenue"] == 5_000_000
    hidden = emu.request(
        "GET", f"leads({lead})?$select=revenue,lastname", user=emu.salesperson
    ).json()
    assert hidden["revenue"] is None and hidden["lastname"] == "Rich"
    listed = emu.request("GET", "leads?$select=revenue", user=emu.salesperson).json()
    assert listed["value"][0]["revenue"] is None
    create = emu.request("POST", "leads", {"lastname": "X", "revenue": 1}, user=emu.salesperson)
    assert create.status_code == 403 and _error(create)["code"] == "0x8004F502"
    update = emu.request("PATCH", f"leads({lead})", {"revenue": 1}, user=emu.salesperson)
    assert update.status_code == 403 and _error(update)["code"] == "0x8004F507"
    assert emu.request("GET", f"leads({lead})?$select=revenue").json()["revenue"] == 5_000_000


def test_missing_privilege_is_403_privilege_denied(emu: Emulator) -> None:
    """§7/§9: a salesperson may not delete leads or create teams -> 403 0x80040220."""
    lead = emu.create("leads", {"lastname": "Keep"})
    response = emu.request("DELETE", f"leads({lead})", user=emu.salesperson)
    assert response.status_code == 403
    assert _error(response)["code"] == "0x80040220"
    assert "prvDeleteLead" in _error(response)["message"]
    assert emu.request("POST", "teams", {"name": "T"}, user=emu.salesperson).status_code == 403
    assert emu.request("GET", f"leads({lead})").status_code == 200


def test_salesperson_edits_are_attributed_to_the_salesperson(emu: Emulator) -> None:
    """Issue 3 "a salesperson editing a lead": modifiedby and createdby are the acting users."""
    lead = emu.create("leads", {"lastname": "Shared"})
    emu.request("PATCH", f"leads({lead})", {"firstname": "Sam"}, user=emu.salesperson)
    body = emu.request("GET", f"leads({lead})?$select=createdby,modifiedby,fullname").json()
    assert body["_createdby_value"] == emu.app_user.systemuserid
    assert body["_modifiedby_value"] == emu.salesperson.systemuserid
    assert body["fullname"] == "Sam Shared"


def test_filtering_on_a_secured_column_without_read_access_is_refused(emu: Emulator) -> None:
    """§7 QueryContainedSecuredAttributeWithoutAccess (0x8004F506) for $filter and $orderby."""
    emu.create("leads", {"lastname": "Rich", "revenue": 10})
    for query in ("$filter=revenue gt 5", "$orderby=revenue desc"):
        refused = emu.request("GET", f"leads?$select=lastname&{query}", user=emu.salesperson)
        assert refused.status_code == 403
        assert _error(refused)["code"] == "0x8004F506"
        allowed = emu.request("GET", f"leads?$select=lastname&{query}")
        assert allowed.json()["value"][0]["lastname"] == "Rich"


def test_create_multiple_and_update_multiple(emu: Emulator) -> None:
    """§5 bulk messages: CreateMultiple -> 200 Ids; UpdateMultiple -> 204; one transaction."""
    created = emu.request(
        "POST",
        "leads/Microsoft.Dynamics.CRM.CreateMultiple",
        {
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.lead", "lastname": f"Bulk {i}"}
                for i in range(3)
            ]
        },
    )
    assert created.status_code == 200
    body = created.json()
    assert (
        body["@odata.context"] == f"{API}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
    )
    ids = body["Ids"]
    assert len(ids) == 3
    updated = emu.request(
        "POST",
        "leads/Microsoft.Dynamics.CRM.UpdateMultiple",
        {
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": i, "jobtitle": "Bulk"}
                for i in ids
            ]
        },
    )
    assert updated.status_code == 204
    assert emu.request("GET", f"leads({ids[2]})/jobtitle").json()["value"] == "Bulk"
    failing = emu.request(
        "POST",
        "leads/Microsoft.Dynamics.CRM.CreateMultiple",
        {
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.lead", "lastname": "Fine"},
                {"@odata.type": "Microsoft.Dynamics.CRM.lead", "lastname": "x" * 51},
            ]
        },
    )
    assert failing.status_code == 400
    assert emu.request("GET", "leads/$count").text == "3"
    untyped = emu.request("POST", "leads/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": [{}]})
    assert untyped.status_code == 400


def test_deep_insert_creates_the_related_row_and_binds_it(emu: Emulator) -> None:
    """§5 Create: deep insert through a single-valued navigation property, one transaction."""
    lead = emu.create("leads", {"lastname": "Deep", "parentaccountid": {"name": "Nested Co"}})
    body = emu.request(
        "GET",
        f"leads({lead})?$select=parentaccountid",
        headers={"Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'},
    ).json()
    assert body["_parentaccountid_value@OData.Community.Display.V1.FormattedValue"] == "Nested Co"
    failing = emu.request(
        "POST", "leads", {"lastname": "x" * 51, "parentaccountid": {"name": "Orphan"}}
    )
    assert failing.status_code == 400
    names = [row["name"] for row in emu.request("GET", "accounts?$select=name").json()["value"]]
    assert names == ["Nested Co"]
