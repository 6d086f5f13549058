"""Field mapping: the default mapping, field selection and directions (B2, B8, B9, B11, B14)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.dynamics.types import AttributeSchema, AttributeType, EntitySchema, LookupValue
from crmsync.errors import InvalidValueError, ValidationFailedError
from crmsync.sync.mapping import (
    DEFAULT_MAPPING,
    Direction,
    default_mapping,
    default_selection,
    mapping_for_selection,
    rest_name_for,
)

T = AttributeType
USER_ID = "0b3c7f1e-2a4d-4e6f-8a9b-1c2d3e4f5a6b"
ACCOUNT_ID = "9f8e7d6c-5b4a-4321-8fed-cba987654321"

# Examples are timed on a shared machine; their speed is not what these tests check.
NO_DEADLINE = settings(deadline=None)


def _entity(name: str, primary: str, *attributes: AttributeSchema) -> EntitySchema:
    columns = {attr.logical_name: attr for attr in attributes}
    return EntitySchema(name, name + "s", primary, "fullname", True, False, columns)


def _person_columns() -> list[AttributeSchema]:
    return [
        AttributeSchema("createdon", T.DATETIME, valid_for_create=False, valid_for_update=False),
        AttributeSchema("ownerid", T.OWNER, targets=("systemuser", "team")),
        AttributeSchema("firstname", T.STRING, max_length=50),
        AttributeSchema("lastname", T.STRING, max_length=50),
        AttributeSchema("emailaddress1", T.STRING, max_length=100),
        AttributeSchema("donotbulkemail", T.BOOLEAN),
        AttributeSchema("statecode", T.STATE, options={0: "Open", 1: "Qualified"}),
        AttributeSchema("fullname", T.STRING, valid_for_update=False),
        AttributeSchema(
            "mkt_lastinterestingmomentdate", T.DATETIME, is_custom=True, max_length=None
        ),
    ]


LEAD = _entity(
    "lead",
    "leadid",
    AttributeSchema("leadid", T.UNIQUEIDENTIFIER, valid_for_update=False),
    *_person_columns(),
    AttributeSchema("leadsourcecode", T.PICKLIST, options={8: "Web", 10: "Other"}),
    AttributeSchema("revenue", T.MONEY, min_value=0, max_value=1e14),
    AttributeSchema("subject", T.STRING, max_length=300),
    AttributeSchema("companyname", T.STRING, max_length=100),
    # Field security: the sync user cannot read it (B8).
    AttributeSchema("telephone1", T.STRING, max_length=50, is_secured=True, can_read=False),
    # Readable but not updatable by the sync user: syncs from Dynamics only.
    AttributeSchema("jobtitle", T.STRING, max_length=100, can_update=False),
    AttributeSchema("new_favouritecolour", T.STRING, max_length=40, is_custom=True),
    AttributeSchema("new_synctomkto", T.BOOLEAN, is_custom=True),
    AttributeSchema("new_company", T.STRING, max_length=40, is_custom=True),
    AttributeSchema("company", T.STRING, max_length=40, is_custom=True),
    AttributeSchema("new_region", T.LOOKUP, targets=("new_region",), is_custom=True),
    AttributeSchema("entityimage", T.VIRTUAL),
)
CONTACT = _entity(
    "contact",
    "contactid",
    AttributeSchema("contactid", T.UNIQUEIDENTIFIER, valid_for_update=False),
    *_person_columns(),
    AttributeSchema("parentcustomerid", T.CUSTOMER, targets=("account", "contact")),
    AttributeSchema("mkt_leadscore", T.INTEGER, is_custom=True),
    AttributeSchema("new_favouritecolour", T.STRING, max_length=40, is_custom=True),
    AttributeSchema("originatingleadid", T.LOOKUP, targets=("lead",)),
)
ACCOUNT = _entity(
    "account",
    "accountid",
    AttributeSchema("accountid", T.UNIQUEIDENTIFIER),
    AttributeSchema("name", T.STRING, max_length=160),
    AttributeSchema("ownerid", T.OWNER, targets=("systemuser", "team")),
    AttributeSchema("address1_city", T.STRING, max_length=80),
    AttributeSchema("industrycode", T.PICKLIST, options={1: "Accounting"}),
)
OPPORTUNITY = _entity(
    "opportunity",
    "opportunityid",
    AttributeSchema("opportunityid", T.UNIQUEIDENTIFIER),
    AttributeSchema("name", T.STRING, max_length=300),
    AttributeSchema("actualclosedate", T.DATETIME),
    AttributeSchema("customerid", T.CUSTOMER, targets=("account", "contact")),
)


def test_default_lead_mapping_follows_appendix_a() -> None:
    """B9/Appendix A: Email←emailaddress1, Unsubscribed←donotbulkemail, Person Source←…"""
    mapping = default_mapping(LEAD)
    by_field = {m.field: m for m in mapping.fields}
    assert by_field["email"].attribute == "emailaddress1"
    assert by_field["unsubscribed"].attribute == "donotbulkemail"
    assert by_field["leadSource"].attribute == "leadsourcecode"
    assert by_field["leadStatus"].attribute == "statecode"
    assert by_field["microsoftTopic"].attribute == "subject"
    assert by_field["annualRevenue"].attribute == "revenue"
    assert by_field["lastInterestingMomentDate"].attribute == "mkt_lastinterestingmomentdate"
    assert all(m.entity == "lead" for m in mapping.fields)
    assert mapping.two_way


def test_default_mapping_only_maps_columns_that_exist() -> None:
    """B9: the default mapping is restricted to attributes present in the org's metadata."""
    mapping = default_mapping(LEAD)
    assert "address1_city" not in mapping.attributes
    assert "city" not in mapping.field_names
    assert mapping.missing == ()
    # Custom columns are not selected by default, only the Appendix A ones.
    assert "new_favouritecolour" not in mapping.attributes
    assert default_selection(LEAD) == mapping.attributes


def test_columns_the_sync_user_cannot_read_are_never_mapped() -> None:
    """B8: a secured column without read privilege is not offered (its nulls would lie)."""
    mapping = default_mapping(LEAD)
    assert "telephone1" not in mapping.attributes
    assert "phone" not in mapping.field_names
    assert mapping.unreadable == ("telephone1",)
    selected = mapping_for_selection(LEAD, ["telephone1", "entityimage", "firstname"])
    assert selected.field_attributes == ("firstname",)
    assert selected.attributes == ("firstname", "statecode")  # a lead's state: engine column
    assert selected.unreadable == ("telephone1", "entityimage")


def test_internal_and_read_only_columns_sync_from_dynamics_only() -> None:
    """R24/B7: createdon, ownerid, primary ids are internal; non-updatable columns only read."""
    mapping = default_mapping(LEAD)
    directions = {m.field: m.direction for m in mapping.fields}
    assert directions["crmCreatedAt"] is Direction.CRM_TO_MARKETING
    assert directions["externalSalesPersonId"] is Direction.CRM_TO_MARKETING
    assert directions["crmLeadId"] is Direction.CRM_TO_MARKETING
    assert directions["title"] is Direction.CRM_TO_MARKETING  # jobtitle: no update privilege
    assert directions["email"] is Direction.BOTH
    assert directions["leadSource"] is Direction.BOTH
    assert mapping.crm_only_fields == {
        "crmCreatedAt",
        "externalSalesPersonId",
        "crmLeadId",
        "title",
    }


def test_a_contacts_parent_customer_links_its_company() -> None:
    """Appendix A: contact parentcustomerid is internal and links the person to the company."""
    mapping = default_mapping(CONTACT)
    company = mapping.for_field("externalCompanyId")
    assert company.attribute == "parentcustomerid"
    assert company.direction is Direction.CRM_TO_MARKETING
    assert mapping.for_field("leadScore").attribute == "mkt_leadscore"
    values = {"parentcustomerid": LookupValue(ACCOUNT_ID, "account")}
    assert mapping.to_marketing(values)["externalCompanyId"] == ACCOUNT_ID
    values = {"parentcustomerid": LookupValue(ACCOUNT_ID, "contact")}
    assert mapping.to_marketing(values)["externalCompanyId"] is None


@pytest.mark.parametrize("schema", [ACCOUNT, OPPORTUNITY])
def test_one_way_entities_map_every_column_from_dynamics_only(schema: EntitySchema) -> None:
    """B2: account, opportunity (and users, teams) sync one way, Dynamics → marketing."""
    mapping = default_mapping(schema)
    assert not mapping.two_way
    assert mapping.fields
    assert all(m.direction is Direction.CRM_TO_MARKETING for m in mapping.fields)
    with pytest.raises(InvalidValueError, match="from Dynamics only"):
        mapping.to_crm({mapping.fields[0].field: "x"})


def test_opportunity_close_date_and_customer() -> None:
    """Appendix A/B6: close date is a plain date; an account customer is the company."""
    mapping = default_mapping(OPPORTUNITY)
    values = mapping.to_marketing(
        {
            "opportunityid": "4a5b6c7d-1111-4222-8333-944455556666",
            "name": "Big deal",
            "actualclosedate": datetime(2026, 6, 30, tzinfo=UTC),
            "customerid": LookupValue(ACCOUNT_ID, "account"),
        }
    )
    assert values == {
        "externalOpportunityId": "4a5b6c7d-1111-4222-8333-944455556666",
        "name": "Big deal",
        "closeDate": "2026-06-30",
        "externalCompanyId": ACCOUNT_ID,
    }


def test_engine_columns_are_always_read_and_never_mapped_or_written() -> None:
    """B30/B6: a contact's originating lead and an opportunity's customer are read with every
    record whatever the selection, yet originatingleadid never becomes a (writable) field."""
    default = default_mapping(CONTACT)
    assert "originatingleadid" in default.attributes
    assert "originatingleadid" not in default.field_attributes
    assert default.attributes[: len(default.field_attributes)] == default.field_attributes
    assert "originatingleadid" not in default_selection(CONTACT)
    selected = mapping_for_selection(CONTACT, ["firstname", "originatingleadid"])
    assert selected.field_names == ("firstName",)
    assert selected.attributes == ("firstname", "originatingleadid")
    assert selected.missing == selected.unreadable == ()
    with pytest.raises(InvalidValueError):
        selected.to_crm({"originatingleadid": "x"})
    opportunity = mapping_for_selection(OPPORTUNITY, ["name"])
    assert opportunity.attributes == ("name", "customerid")
    assert mapping_for_selection(OPPORTUNITY, ["customerid"]).attributes == ("customerid",)
    # A column the org does not have is not requested (the read would be refused).
    assert default_mapping(LEAD).attributes == default_mapping(LEAD).field_attributes
    no_origin = _entity("contact", "contactid", *_person_columns())
    assert "originatingleadid" not in mapping_for_selection(no_origin, ["firstname"]).attributes


def test_writes_convert_field_by_field() -> None:
    """B37/B38: a value Dynamics would reject is listed with its field; the others convert."""
    mapping = default_mapping(LEAD)
    converted = mapping.convert_writes({"firstName": "x" * 500, "lastName": "Lind"})
    assert converted.values == {"lastname": "Lind"}
    assert converted.rejected_fields == {"firstName"}
    assert converted.code is not None
    assert "firstName" in converted.message
    assert mapping.convert_writes({"lastName": "Lind"}).rejected == ()


def test_selected_custom_columns_get_derived_person_fields() -> None:
    """B11: a readable custom column can be selected; its REST name is derived from its name."""
    mapping = mapping_for_selection(
        LEAD, ["emailaddress1", "new_favouritecolour", "new_synctomkto", "new_region"]
    )
    assert mapping.field_names == ("email", "newFavouritecolour", "newSynctomkto", "newRegion")
    colour = mapping.for_field("newFavouritecolour")
    assert colour.direction is Direction.BOTH
    assert mapping.to_crm({"newFavouritecolour": "teal"}) == {"new_favouritecolour": "teal"}
    # A single-table custom lookup can be written back; it knows its table.
    assert mapping.for_field("newRegion").direction is Direction.BOTH


def test_lead_and_contact_share_a_custom_person_field() -> None:
    """One person holds both lead and contact values, so one name maps to one field."""
    lead = mapping_for_selection(LEAD, ["new_favouritecolour"])
    contact = mapping_for_selection(CONTACT, ["new_favouritecolour"])
    assert lead.field_names == contact.field_names == ("newFavouritecolour",)


def test_derived_names_never_take_a_standard_field() -> None:
    """A custom column named like a standard field gets a ``crm`` prefix, not its field."""
    mapping = mapping_for_selection(LEAD, ["companyname", "company", "new_company"])
    assert mapping.for_field("crmCompany").attribute == "company"
    assert mapping.for_field("newCompany").attribute == "new_company"
    assert mapping.for_field("company").attribute == "companyname"


def test_selected_columns_deleted_in_dynamics_are_reported_not_fatal() -> None:
    """B14: a selected column missing from metadata is listed; the rest keeps syncing."""
    mapping = mapping_for_selection(LEAD, ["firstname", "new_gone", "FirstName", "lastname"])
    assert mapping.field_attributes == ("firstname", "lastname")
    assert mapping.attributes == ("firstname", "lastname", "statecode")  # engine column
    assert mapping.missing == ("new_gone",)


def test_records_convert_through_the_mapping_both_ways() -> None:
    """A lead row reads as marketing values and a marketing write converts back, validated."""
    mapping = default_mapping(LEAD)
    row = {
        "leadid": "11111111-2222-4333-8444-555555555555",
        "firstname": "Ada",
        "emailaddress1": "ada@example.com",
        "donotbulkemail": True,
        "leadsourcecode": 8,
        "statecode": 0,
        "ownerid": LookupValue(USER_ID, "systemuser"),
        "createdon": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "revenue": 1250.5,
    }
    values = mapping.to_marketing(row)
    assert values["firstName"] == "Ada"
    assert values["unsubscribed"] is True
    assert values["leadSource"] == "Web"
    assert values["leadStatus"] == "Open"
    assert values["externalSalesPersonId"] == USER_ID
    assert values["crmCreatedAt"] == "2026-01-02T03:04:05Z"
    assert values["lastName"] is None  # every mapped field is present
    assert set(values) == set(mapping.field_names)
    # Reads carry the primary key as the record id, not as a value.
    del row["leadid"]
    assert mapping.to_marketing(row)["crmLeadId"] is None
    assert mapping.to_marketing(row, "11111111-2222-4333-8444-555555555555") == values
    writes = mapping.to_crm({"leadSource": "Other", "unsubscribed": False, "firstName": ""})
    assert writes == {"leadsourcecode": 10, "donotbulkemail": False, "firstname": None}
    with pytest.raises(ValidationFailedError):
        mapping.to_crm({"firstName": "x" * 51})
    with pytest.raises(InvalidValueError, match="no mapped field"):
        mapping.to_crm({"favouriteFood": "soup"})


def test_every_default_entity_has_a_mapping() -> None:
    """The engine syncs these six entities (B1, B2)."""
    assert set(DEFAULT_MAPPING) == {
        "lead",
        "contact",
        "account",
        "opportunity",
        "systemuser",
        "team",
    }
    for entries in DEFAULT_MAPPING.values():
        fields = [name for _, name, _ in entries]
        assert len(fields) == len(set(fields))


@pytest.mark.parametrize(
    ("logical", "rest"),
    [
        ("new_favouritecolour", "newFavouritecolour"),
        ("cr5a1_lead_grade", "cr5a1LeadGrade"),
        ("telephone3", "telephone3"),
        ("new__odd_", "newOdd"),
    ],
)
def test_rest_names_are_derived_deterministically(logical: str, rest: str) -> None:
    """B11: the documented rule, on examples."""
    assert rest_name_for(logical) == rest


@NO_DEADLINE
@given(st.from_regex(r"[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,8}){0,3}", fullmatch=True))
def test_derived_names_are_identifiers(logical: str) -> None:
    """Any logical name yields a camelCase identifier, the same one every time."""
    name = rest_name_for(logical)
    assert re.fullmatch(r"[a-z][A-Za-z0-9]*", name)
    assert name == rest_name_for(logical.upper())
    assert name.lower() == logical.replace("_", "")


def test_a_blank_name_is_refused() -> None:
    with pytest.raises(InvalidValueError):
        rest_name_for("__")
