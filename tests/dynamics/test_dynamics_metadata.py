"""Metadata and permissions from the documented shapes (spec §9; B8, B43)."""

from __future__ import annotations

from urllib.parse import unquote

import httpx
import pytest
from dynamics_testkit import ORG, error_response, json_response, make_client

from crmsync.dynamics.types import AttributeType, LookupValue
from crmsync.errors import ConfigurationError

USER = "d96e9f55-0000-0000-0000-000000000001"
SECRET_ATTRIBUTE = "f01bef16-0000-0000-0000-000000000003"
HIDDEN_ATTRIBUTE = "f01bef16-0000-0000-0000-000000000004"


def _label(text: str) -> dict[str, object]:
    return {
        "LocalizedLabels": [{"Label": text, "LanguageCode": 1033}],
        "UserLocalizedLabel": {"Label": text, "LanguageCode": 1033},
    }


def _attribute(name: str, kind: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "LogicalName": name,
        "SchemaName": name.title(),
        "AttributeType": kind,
        "AttributeTypeName": {"Value": f"{kind}Type"},
        "DisplayName": _label(name.title()),
        "RequiredLevel": {"Value": "None", "CanBeChanged": True},
        "IsValidForCreate": True,
        "IsValidForUpdate": True,
        "IsValidForRead": True,
        "IsCustomAttribute": False,
        "IsSecured": False,
        "MetadataId": f"meta-{name}",
    }
    row.update(extra)
    return row


ATTRIBUTES = [
    _attribute(
        "leadid",
        "Uniqueidentifier",
        RequiredLevel={"Value": "SystemRequired"},
        IsValidForUpdate=False,
    ),
    _attribute("lastname", "String", RequiredLevel={"Value": "ApplicationRequired"}),
    _attribute("numberofemployees", "Integer"),
    _attribute("revenue", "Money"),
    _attribute("leadsourcecode", "Picklist"),
    _attribute(
        "statecode", "State", RequiredLevel={"Value": "SystemRequired"}, IsValidForCreate=False
    ),
    _attribute("statuscode", "Status"),
    _attribute("ownerid", "Owner"),
    _attribute("customerid", "Customer"),
    _attribute("createdon", "DateTime", IsValidForCreate=False, IsValidForUpdate=False),
    _attribute(
        "new_salary", "Money", IsCustomAttribute=True, IsSecured=True, MetadataId=SECRET_ATTRIBUTE
    ),
    _attribute(
        "new_secret", "String", IsCustomAttribute=True, IsSecured=True, MetadataId=HIDDEN_ATTRIBUTE
    ),
]

CASTS = {
    "StringAttributeMetadata": [
        {"LogicalName": "lastname", "MaxLength": 50},
        {"LogicalName": "new_secret", "MaxLength": 100},
    ],
    "IntegerAttributeMetadata": [
        {"LogicalName": "numberofemployees", "MinValue": 0, "MaxValue": 1000000}
    ],
    "MoneyAttributeMetadata": [
        {"LogicalName": "revenue", "MinValue": 0, "MaxValue": 100000000000000, "Precision": 2},
        {"LogicalName": "new_salary", "MinValue": 0, "MaxValue": 1000000, "Precision": 2},
    ],
    "PicklistAttributeMetadata": [
        {
            "LogicalName": "leadsourcecode",
            "OptionSet": {
                "Options": [
                    {"Value": 8, "Label": _label("Web")},
                    {"Value": 10, "Label": _label("Other")},
                ]
            },
            "GlobalOptionSet": None,
        }
    ],
    "StateAttributeMetadata": [
        {
            "LogicalName": "statecode",
            "OptionSet": {
                "Options": [
                    {"Value": 0, "Label": _label("Open")},
                    {"Value": 1, "Label": _label("Qualified")},
                ]
            },
        }
    ],
    "StatusAttributeMetadata": [
        {
            "LogicalName": "statuscode",
            "OptionSet": {"Options": [{"Value": 1, "Label": _label("New"), "State": 0}]},
        }
    ],
    "LookupAttributeMetadata": [
        {"LogicalName": "ownerid", "Targets": ["systemuser", "team"]},
        {"LogicalName": "customerid", "Targets": ["account", "contact"]},
    ],
}


def metadata_handler(requests: list[str]):
    def handler(request: httpx.Request) -> httpx.Response:
        url = unquote(str(request.url))
        requests.append(url)
        path = request.url.path
        if "EntityDefinitions" in url:
            assert request.headers["Consistency"] == "Strong"  # §0: fresh metadata caches
        if path.endswith("/WhoAmI"):
            return json_response(
                200,
                {
                    "BusinessUnitId": "ded5a64f-0000",
                    "UserId": USER.upper(),
                    "OrganizationId": "4faf1f34-0000",
                },
            )
        if path.endswith("RetrievePrincipalAttributePrivileges()"):
            assert f"systemusers({USER})" in url
            return json_response(
                200,
                {
                    "AttributePrivileges": [
                        {
                            "AttributeId": SECRET_ATTRIBUTE,
                            "CanCreate": 0,
                            "CanRead": 4,
                            "CanUpdate": 0,
                        }
                    ]
                },
            )
        if path.endswith("RetrieveUserPrivileges"):
            return json_response(
                200,
                {
                    "RolePrivileges": [
                        {
                            "Depth": "Global",
                            "PrivilegeId": "p1",
                            "BusinessUnitId": "b",
                            "PrivilegeName": "prvReadLead",
                        },
                        {
                            "Depth": "Basic",
                            "PrivilegeId": "p2",
                            "BusinessUnitId": "b",
                            "PrivilegeName": "prvWriteLead",
                        },
                        {
                            "Depth": "Local",
                            "PrivilegeId": "p3",
                            "BusinessUnitId": "b",
                            "PrivilegeName": "prvWriteLead",
                        },
                    ]
                },
            )
        if "EntityDefinitions(LogicalName='nothing')" in url:
            return error_response(404, "0x80040217", "Could not find entity")
        if "/Attributes/Microsoft.Dynamics.CRM." in url:
            cast = url.split("/Attributes/Microsoft.Dynamics.CRM.")[1].split("?")[0]
            return json_response(200, {"value": CASTS.get(cast, [])})
        if "/Attributes" in url:
            return json_response(200, {"value": ATTRIBUTES})
        if "EntityDefinitions(LogicalName='lead')" in url:
            return json_response(
                200,
                {
                    "LogicalName": "lead",
                    "SchemaName": "Lead",
                    "EntitySetName": "leads",
                    "PrimaryIdAttribute": "leadid",
                    "PrimaryNameAttribute": "fullname",
                    "ChangeTrackingEnabled": True,
                    "IsCustomEntity": False,
                    "DisplayName": _label("Lead"),
                    "MetadataId": "m-lead",
                },
            )
        return error_response(404, "", f"unexpected {url}")

    return handler


def test_entity_schema_has_types_lengths_options_targets_and_flags() -> None:
    """§9: base attributes plus cast details (MaxLength, ranges, options, targets)."""
    requests: list[str] = []
    schema = make_client(metadata_handler(requests)).entity_schema("lead")

    assert (schema.entity_set_name, schema.primary_id, schema.primary_name) == (
        "leads",
        "leadid",
        "fullname",
    )
    assert schema.change_tracking is True
    assert schema.schema_name == "Lead"
    assert schema.display_name == "Lead"
    attrs = schema.attributes
    assert attrs["lastname"].type is AttributeType.STRING
    assert attrs["lastname"].max_length == 50
    assert attrs["lastname"].required_level == "ApplicationRequired"
    assert (attrs["numberofemployees"].min_value, attrs["numberofemployees"].max_value) == (
        0,
        1000000,
    )
    assert attrs["revenue"].precision == 2
    assert dict(attrs["leadsourcecode"].options) == {8: "Web", 10: "Other"}
    assert dict(attrs["statecode"].options) == {0: "Open", 1: "Qualified"}
    assert dict(attrs["statuscode"].options) == {1: "New"}
    assert attrs["ownerid"].targets == ("systemuser", "team")
    assert attrs["customerid"].type is AttributeType.CUSTOMER
    assert attrs["createdon"].valid_for_update is False
    assert attrs["createdon"].can_update is False
    assert attrs["statecode"].can_create is False
    assert attrs["new_salary"].is_custom and attrs["new_salary"].is_secured
    # Only the casts for types present are requested, and no attribute-less casts.
    casts = [url for url in requests if "/Attributes/Microsoft.Dynamics.CRM." in url]
    assert not any("MemoAttributeMetadata" in url for url in casts)
    assert any(
        "PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options),GlobalOptionSet($select=Options)"
        in url
        for url in casts
    )


def test_secured_columns_follow_the_sync_users_field_permissions() -> None:
    """§9 / B8: a secured column is readable only with CanRead = 4; others are never offered."""
    schema = make_client(metadata_handler([])).entity_schema("lead")
    salary, secret = schema.attributes["new_salary"], schema.attributes["new_secret"]
    assert (salary.can_read, salary.can_update, salary.can_create) == (True, False, False)
    assert (secret.can_read, secret.can_update, secret.can_create) == (False, False, False)
    assert schema.attributes["lastname"].can_read is True


def test_schema_turns_typed_reads_and_writes_precise() -> None:
    """With the schema known, `$select` uses `_x_value` for any lookup and binds use its type."""
    requests: list[str] = []
    inner_handler = metadata_handler(requests)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/leads"):
            requests.append(unquote(str(request.url)))
            return json_response(
                200,
                {
                    "value": [
                        {
                            "_customerid_value": "00000000-0000-0000-0000-0000000000cc",
                            "createdon": "2024-01-02T03:04:05Z",
                            "lastname": "2024-01-02T03:04:05Z",
                            "leadid": "00000000-0000-0000-0000-000000000001",
                        }
                    ]
                },
            )
        return inner_handler(request)

    client = make_client(handler)
    client.entity_schema("lead")
    (record,) = client.iter_records("leads", ["customerid", "createdon", "lastname"])
    assert "$select=_customerid_value,createdon,lastname,leadid" in requests[-1]
    assert record.values["lastname"] == "2024-01-02T03:04:05Z"  # a String column stays a string
    assert record.values["createdon"].year == 2024  # type: ignore[union-attr]
    assert record.values["customerid"] == LookupValue("00000000-0000-0000-0000-0000000000cc", "")


def test_who_am_i_and_privileges() -> None:
    """§9: WhoAmI, RetrieveUserPrivileges with depths (change tracking needs Global read)."""
    client = make_client(metadata_handler([]))
    identity = client.who_am_i()
    assert identity.user_id == USER
    privileges = client.user_privileges()
    assert privileges.can("Read", "Lead", "Global")
    assert privileges.depth("prvWriteLead") == "Local"
    assert privileges.can("Write", "Lead")
    assert not privileges.can("Write", "Lead", "Global")
    assert not privileges.can("Delete", "Lead")


def test_change_tracking_flag_and_unknown_table() -> None:
    """§4: ChangeTrackingEnabled per table; an unknown table is a clear configuration error."""
    client = make_client(metadata_handler([]))
    assert client.change_tracking_enabled("lead") is True
    with pytest.raises(ConfigurationError, match="nothing"):
        client.entity_schema("nothing")
    with pytest.raises(ConfigurationError, match="nothing"):
        client.change_tracking_enabled("nothing")


def test_missing_field_permission_function_hides_secured_columns() -> None:
    """B8: when the org cannot say, secured columns count as unreadable (never offered)."""
    inner = metadata_handler([])

    def handler(request: httpx.Request) -> httpx.Response:
        if "RetrievePrincipalAttributePrivileges" in request.url.path:
            return error_response(404, "", "Resource not found for the segment")
        return inner(request)

    schema = make_client(handler).entity_schema("lead")
    assert schema.attributes["new_salary"].can_read is False
    assert schema.attributes["lastname"].can_read is True
    assert ORG in make_client(handler).service_root


def test_connection_check_lists_identity_privileges_tracking_and_hidden_columns() -> None:
    """B43: the checklist: WhoAmI, privileges per table (Global read), change tracking, B8."""
    from crmsync.dynamics.check import check_connection

    report = check_connection(make_client(metadata_handler([])), ["lead", "nothing"])
    by_name = {item.name: item for item in report.items}
    assert by_name["connect and authenticate (WhoAmI)"].ok
    assert USER in by_name["connect and authenticate (WhoAmI)"].detail
    assert not by_name["lead: write privileges (create and update)"].ok  # no prvCreateLead
    assert "prvCreateLead" in by_name["lead: write privileges (create and update)"].detail
    assert (
        "Create and Write on the lead table"
        in by_name["lead: write privileges (create and update)"].fix
    )
    assert by_name["lead: change tracking"].ok
    assert "new_secret" in by_name["lead: secured columns"].detail
    assert "new_salary" not in by_name["lead: secured columns"].detail
    assert not by_name["nothing: metadata"].ok
    assert not report.ok


def test_connection_check_reports_refused_credentials_without_raising() -> None:
    """B43: a refused token is one failed line of the checklist, not a crash."""
    from crmsync.dynamics.check import check_connection

    client = make_client(
        lambda request: error_response(
            401, "0x8005F101", "The requested resource requires authentication."
        )
    )
    report = check_connection(client)
    assert [(item.name, item.ok) for item in report.items] == [
        ("connect and authenticate (WhoAmI)", False)
    ]
