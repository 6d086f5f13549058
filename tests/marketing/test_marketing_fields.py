"""The field catalog and value coercion (issue 2 §3; spec marketo-rest §4.1, §4.13)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from crmsync.errors import InvalidValueError, UnknownFieldError
from crmsync.marketing.fields import (
    FieldDef,
    add_local_field,
    coerce_value,
    load_catalog,
    standard_fields,
)

REQUIRED_PERSON_FIELDS = [
    "id",
    "email",
    "salutation",
    "firstName",
    "middleName",
    "lastName",
    "title",
    "phone",
    "mobilePhone",
    "fax",
    "address",
    "city",
    "state",
    "country",
    "postalCode",
    "company",
    "website",
    "annualRevenue",
    "numberOfEmployees",
    "industry",
    "leadSource",
    "leadStatus",
    "statusReason",
    "personNotes",
    "doNotCall",
    "unsubscribed",
    "rating",
    "leadScore",
    "relativeScore",
    "priority",
    "urgency",
    "microsoftAddress2",
    "microsoftAddress3",
    "microsoftDoNotEmail",
    "microsoftDoNotFax",
    "microsoftDoNotSendMarketingMaterial",
    "microsoftHomePhone",
    "microsoftPreferredMethodOfContact",
    "microsoftTopic",
    "lastInterestingMomentDate",
    "lastInterestingMomentDesc",
    "lastInterestingMomentSource",
    "lastInterestingMomentType",
    "createdAt",
    "updatedAt",
    "crmType",
    "crmCreatedAt",
    "crmIsDeleted",
    "crmLeadId",
    "crmContactId",
    "externalCompanyId",
    "externalSalesPersonId",
]


def _field(data_type: str, length: int | None = None) -> FieldDef:
    return FieldDef("person", "f", "F", data_type, length, False, False)


def test_person_catalog_has_the_mapped_and_system_fields(migrated_engine: Engine) -> None:
    """Every field the default Dynamics mapping targets exists; B7 system fields are read-only."""
    with migrated_engine.connect() as conn:
        catalog = load_catalog(conn, "person")
    names = {f.rest_name for f in catalog.fields}
    assert set(REQUIRED_PERSON_FIELDS) <= names
    for name in ("id", "createdAt", "updatedAt", "crmType", "crmCreatedAt", "crmIsDeleted"):
        assert catalog.require(name).read_only
    assert not catalog.require("email").read_only
    assert catalog.require("EMAIL").data_type == "email"
    assert catalog.get("nope") is None
    with pytest.raises(UnknownFieldError):
        catalog.require("nope")
    ids = [f.field_id for f in catalog.fields]
    assert len(set(ids)) == len(ids)


def test_add_local_field_and_refusals(migrated_engine: Engine) -> None:
    """Marketing-only fields get ids in the custom range; clashes and bad types are refused."""
    with migrated_engine.begin() as conn:
        added = add_local_field(conn, "person", "favouriteColour", "Favourite colour", "string")
    assert added.is_custom and added.length == 255 and added.field_id > 100_000
    with migrated_engine.begin() as conn:
        assert load_catalog(conn).require("favouritecolour") == added
        for name, kind in (
            ("FAVOURITECOLOUR", "string"),
            ("email", "string"),
            ("x", "color"),
            ("1bad", "string"),
            ("ok", "integer"),
        ):
            with pytest.raises(InvalidValueError):
                add_local_field(conn, "person", name, "X", kind, 10 if name == "ok" else None)
        with pytest.raises(InvalidValueError):  # its table has no custom values
            add_local_field(conn, "opportunityRole", "whatever", "X", "string")
        company_field = add_local_field(conn, "company", "tier", "Tier", "integer")
        deal_field = add_local_field(conn, "opportunity", "dealNote", "Deal note", "string")
        opportunity_catalog = load_catalog(conn, "opportunity")
    assert company_field.length is None
    assert opportunity_catalog.require("dealNote") == deal_field


@pytest.mark.parametrize(
    ("data_type", "raw", "stored"),
    [
        ("string", "abc", "abc"),
        ("string", 12, "12"),
        ("email", " a@b.com ", "a@b.com"),
        ("integer", "7", 7),
        ("integer", 7.0, 7),
        ("score", -3, -3),
        ("float", "2.5", 2.5),
        ("currency", 3, 3.0),
        ("boolean", "TRUE", True),
        ("boolean", 0, False),
        ("boolean", "no", False),
        ("date", "2024-02-29", "2024-02-29"),
        ("date", "2024-02-29T10:00:00Z", "2024-02-29"),
        ("datetime", "2024-01-01", "2024-01-01T00:00:00Z"),
        ("datetime", "2024-01-01T10:00:00-0200", "2024-01-01T12:00:00Z"),
        ("integer", "", None),
        ("boolean", None, None),
    ],
)
def test_coerce_value_accepts(data_type: str, raw: object, stored: object) -> None:
    """Values arrive as Marketo clients send them and are stored in wire format."""
    assert coerce_value(_field(data_type, 255 if data_type == "string" else None), raw) == stored


@pytest.mark.parametrize(
    ("data_type", "raw"),
    [
        ("integer", "seven"),
        ("integer", True),
        ("integer", 1.5),
        ("float", "nan"),
        ("boolean", "maybe"),
        ("date", "2024-13-01"),
        ("datetime", "yesterday"),
        ("email", "not-an-address"),
        ("email", "é@x.com"),
        ("string", {"a": 1}),
        ("string", True),
    ],
)
def test_coerce_value_refuses_with_a_reason(data_type: str, raw: object) -> None:
    """A wrong type is an InvalidValueError naming the field and the required type."""
    with pytest.raises(InvalidValueError, match=f"Required of type '{data_type}'"):
        coerce_value(_field(data_type, 255), raw)


def test_length_is_enforced() -> None:
    """A string longer than the field's length is refused."""
    with pytest.raises(InvalidValueError, match="longer than 3"):
        coerce_value(_field("string", 3), "abcd")


def test_standard_fields_of_every_object() -> None:
    """Companies, opportunities, roles, sales persons and teams have catalogs too."""
    for object_type in ("company", "opportunity", "opportunityRole", "salesperson", "team"):
        assert standard_fields(object_type)
    with pytest.raises(UnknownFieldError):
        standard_fields("spaceship")
