"""The built-in tables of the emulated organization, at their documented types and sizes.

Columns are those of the default Marketo mapping (spec marketo-dynamics-docs Appendix A) plus
the keys, ownership and audit columns every table has, with the MaxLength, ranges, options and
required levels from spec §2b/§2c. ``mkt_*`` columns belong to the Marketo solution (publisher
prefix ``mkt``), so they are custom attributes.
"""

from __future__ import annotations

from collections.abc import Mapping

from crmsync.emulator.metadata import (
    AttributeDef,
    EntityDef,
    OptionDef,
    finish_attribute,
    metadata_id,
)

A = AttributeDef


def _s(name: str, length: int, label: str, *, fmt: str = "Text", level: str = "None") -> A:
    return A(name, "String", label, max_length=length, format_name=fmt, required_level=level)


def _memo(name: str, label: str, length: int = 2000) -> A:
    return A(name, "Memo", label, max_length=length, format_name="TextArea")


def _int(name: str, label: str, low: int, high: int, *, custom: bool = False) -> A:
    return A(name, "Integer", label, min_value=low, max_value=high, is_custom=custom)


def _money(name: str, label: str) -> A:
    return A(name, "Money", label, min_value=0, max_value=100_000_000_000_000, precision=2)


def _bool(name: str, label: str, true: str = "Yes", false: str = "No") -> A:
    return A(name, "Boolean", label, true_label=true, false_label=false, default_value=False)


def _pick(name: str, label: str, options: Mapping[int, str], default: int | None = None) -> A:
    opts = tuple(OptionDef(v, lbl) for v, lbl in options.items())
    return A(name, "Picklist", label, options=opts, default_value=default)


def _date(name: str, label: str, *, read_only: bool = False, custom: bool = False) -> A:
    return A(
        name,
        "DateTime",
        label,
        format_name="DateAndTime",
        valid_for_create=not read_only,
        valid_for_update=not read_only,
        is_custom=custom,
    )


def _lookup(name: str, label: str, *targets: str, kind: str = "Lookup", **extra: object) -> A:
    return A(name, kind, label, targets=tuple(targets), **extra)  # type: ignore[arg-type]


def _state(
    states: Mapping[int, tuple[str, int]], statuses: Mapping[int, tuple[str, int]]
) -> list[A]:
    state_opts = tuple(OptionDef(v, lbl, None, dflt) for v, (lbl, dflt) in states.items())
    status_opts = tuple(OptionDef(v, lbl, st) for v, (lbl, st) in statuses.items())
    return [
        A("statecode", "State", "Status", options=state_opts, required_level="SystemRequired"),
        A("statuscode", "Status", "Status Reason", options=status_opts),
    ]


def _system(entity: str, pk: str, *, owned: bool = True) -> list[A]:
    columns = [
        A(
            pk,
            "Uniqueidentifier",
            entity.capitalize(),
            required_level="SystemRequired",
            is_primary_id=True,
            valid_for_update=False,
        ),
        _date("createdon", "Created On", read_only=True),
        _date("modifiedon", "Modified On", read_only=True),
        _lookup(
            "createdby", "Created By", "systemuser", valid_for_create=False, valid_for_update=False
        ),
        _lookup(
            "modifiedby",
            "Modified By",
            "systemuser",
            valid_for_create=False,
            valid_for_update=False,
        ),
        A(
            "versionnumber",
            "BigInt",
            "Version Number",
            valid_for_create=False,
            valid_for_update=False,
        ),
    ]
    if owned:
        columns.append(
            _lookup(
                "ownerid",
                "Owner",
                "systemuser",
                "team",
                kind="Owner",
                required_level="SystemRequired",
            )
        )
    return columns


_LEAD_SOURCE = {
    1: "Advertisement",
    2: "Employee Referral",
    3: "External Referral",
    4: "Partner",
    5: "Public Relations",
    6: "Seminar",
    7: "Trade Show",
    8: "Web",
    9: "Word of Mouth",
    10: "Other",
}
_INDUSTRY = {
    1: "Accounting",
    2: "Agriculture and Non-petrol Natural Resource Extraction",
    3: "Broadcasting Printing and Publishing",
    4: "Brokers",
    5: "Building Supply Retail",
    6: "Business Services",
    7: "Consulting",
    8: "Consumer Services",
    9: "Design, Direction and Creative Management",
    10: "Distributors, Dispatchers and Processors",
    11: "Doctor's Offices and Clinics",
    12: "Durable Manufacturing",
    13: "Eating and Drinking Places",
    14: "Entertainment Retail",
    15: "Equipment Rental and Leasing",
    16: "Financial",
    17: "Food and Tobacco Processing",
    18: "Inbound Capital Intensive Processing",
    19: "Inbound Repair and Services",
    20: "Insurance",
    21: "Legal Services",
    22: "Non-Durable Merchandise Retail",
    23: "Outbound Consumer Service",
    24: "Petrochemical Extraction and Distribution",
    25: "Service Retail",
    26: "SIG Affiliations",
    27: "Social Services",
    28: "Special Outbound Trade Contractors",
    29: "Specialty Realty",
    30: "Transportation",
    31: "Utility Creation and Distribution",
    32: "Vehicle Retail",
    33: "Wholesale",
}
_CONTACT_METHOD = {1: "Any", 2: "Email", 3: "Phone", 4: "Fax", 5: "Mail"}


def _person(mobile_length: int) -> list[A]:
    """Columns lead and contact share (spec §2b/§2c, Appendix A)."""
    return [
        _s("salutation", 100, "Salutation"),
        _s("firstname", 50, "First Name", level="Recommended"),
        _s("middlename", 50, "Middle Name"),
        _s("lastname", 50, "Last Name", level="ApplicationRequired"),
        A(
            "fullname",
            "String",
            "Name",
            max_length=160,
            format_name="Text",
            valid_for_create=False,
            valid_for_update=False,
            is_primary_name=True,
        ),
        _s("emailaddress1", 100, "Email", fmt="Email"),
        _s("emailaddress2", 100, "Email Address 2", fmt="Email"),
        _s("emailaddress3", 100, "Email Address 3", fmt="Email"),
        _s("jobtitle", 100, "Job Title"),
        _s("telephone1", 50, "Business Phone", fmt="Phone"),
        _s("telephone2", 50, "Home Phone", fmt="Phone"),
        _s("telephone3", 50, "Other Phone", fmt="Phone"),
        _s("mobilephone", mobile_length, "Mobile Phone", fmt="Phone"),
        _s("fax", 50, "Fax", fmt="Phone"),
        _s("websiteurl", 200, "Website", fmt="Url"),
        _memo("description", "Description"),
        *_address(),
        _bool("donotemail", "Do not allow Emails", "Do Not Allow", "Allow"),
        _bool("donotbulkemail", "Do not allow Bulk Emails", "Do Not Allow", "Allow"),
        _bool("donotphone", "Do not allow Phone Calls", "Do Not Allow", "Allow"),
        _bool("donotfax", "Do not allow Faxes", "Do Not Allow", "Allow"),
        _bool("donotpostalmail", "Do not allow Mails", "Do Not Allow", "Allow"),
        _bool("donotsendmm", "Marketing Material", "Do Not Send", "Send"),
        _bool("msdyn_gdproptout", "GDPR Optout"),
        _pick("preferredcontactmethodcode", "Preferred Method of Contact", _CONTACT_METHOD, 1),
        *_marketo(),
    ]


def _address() -> list[A]:
    return [
        _s("address1_line1", 250, "Street 1"),
        _s("address1_line2", 250, "Street 2"),
        _s("address1_line3", 250, "Street 3"),
        _s("address1_city", 80, "City"),
        _s("address1_stateorprovince", 50, "State/Province"),
        _s("address1_postalcode", 20, "ZIP/Postal Code"),
        _s("address1_country", 80, "Country/Region"),
    ]


def _marketo() -> list[A]:
    """Columns the Marketo solution adds to lead and contact (publisher prefix ``mkt``)."""
    return [
        _date("mkt_lastinterestingmomentdate", "Last Interesting Moment Date", custom=True),
        A(
            "mkt_lastinterestingmomentdesc",
            "String",
            "Last Interesting Moment Description",
            max_length=2000,
            format_name="Text",
            is_custom=True,
        ),
        A(
            "mkt_leadinterestingmomentsource",
            "String",
            "Last Interesting Moment Source",
            max_length=100,
            format_name="Text",
            is_custom=True,
        ),
        A(
            "mkt_lastinterestingmomenttype",
            "String",
            "Last Interesting Moment Type",
            max_length=100,
            format_name="Text",
            is_custom=True,
        ),
        _int("mkt_relativescore", "Relative Score", 0, 2_147_483_647, custom=True),
        _int("mkt_priority", "Priority", 0, 2_147_483_647, custom=True),
        _int("mkt_urgency", "Urgency", 0, 2_147_483_647, custom=True),
    ]


def _lead() -> list[A]:
    return [
        *_system("lead", "leadid"),
        *_person(20),
        _s("companyname", 100, "Company Name", level="Recommended"),
        _s("subject", 300, "Topic", level="ApplicationRequired"),
        _int("numberofemployees", "No. of Employees", 0, 1_000_000),
        _money("revenue", "Annual Revenue"),
        _pick("leadsourcecode", "Lead Source", _LEAD_SOURCE),
        _pick("leadqualitycode", "Rating", {1: "Hot", 2: "Warm", 3: "Cold"}, 2),
        _pick("industrycode", "Industry", _INDUSTRY),
        *_state(
            {0: ("Open", 1), 1: ("Qualified", 3), 2: ("Disqualified", 4)},
            {
                1: ("New", 0),
                2: ("Contacted", 0),
                3: ("Qualified", 1),
                4: ("Lost", 2),
                5: ("Cannot Contact", 2),
                6: ("No Longer Interested", 2),
                7: ("Canceled", 2),
            },
        ),
        _lookup("parentaccountid", "Parent Account for lead", "account"),
        _lookup("parentcontactid", "Parent Contact for lead", "contact"),
        _lookup("customerid", "Customer", "account", "contact", kind="Customer"),
        _lookup("campaignid", "Source Campaign", "campaign"),
        _lookup("qualifyingopportunityid", "Qualifying Opportunity", "opportunity"),
        _currency_lookup(),
    ]


def _contact() -> list[A]:
    return [
        *_system("contact", "contactid"),
        *_person(50),
        _pick("leadsourcecode", "Lead Source", {1: "Default Value"}, 1),
        _int("mkt_leadscore", "Lead Score", -2_147_483_648, 2_147_483_647, custom=True),
        *_state({0: ("Active", 1), 1: ("Inactive", 2)}, {1: ("Active", 0), 2: ("Inactive", 1)}),
        _lookup("parentcustomerid", "Company Name", "account", "contact", kind="Customer"),
        _lookup("originatingleadid", "Originating Lead", "lead"),
    ]


def _account() -> list[A]:
    return [
        *_system("account", "accountid"),
        A(
            "name",
            "String",
            "Account Name",
            max_length=160,
            format_name="Text",
            required_level="ApplicationRequired",
            is_primary_name=True,
        ),
        _s("accountnumber", 20, "Account Number"),
        _s("telephone1", 50, "Main Phone", fmt="Phone"),
        _s("fax", 50, "Fax", fmt="Phone"),
        _s("emailaddress1", 100, "Email", fmt="Email"),
        _s("websiteurl", 200, "Website", fmt="Url"),
        _s("sic", 20, "SIC Code"),
        _memo("description", "Description"),
        *_address(),
        _pick("businesstypecode", "Business Type", {1: "Default Value"}, 1),
        _pick("industrycode", "Industry", _INDUSTRY),
        _money("revenue", "Annual Revenue"),
        _int("numberofemployees", "Number of Employees", 0, 1_000_000_000),
        *_state({0: ("Active", 1), 1: ("Inactive", 2)}, {1: ("Active", 0), 2: ("Inactive", 1)}),
        _lookup("primarycontactid", "Primary Contact", "contact"),
        _lookup("parentaccountid", "Parent Account", "account"),
        _lookup("originatingleadid", "Originating Lead", "lead"),
        _currency_lookup(),
    ]


def _opportunity() -> list[A]:
    return [
        *_system("opportunity", "opportunityid"),
        A(
            "name",
            "String",
            "Topic",
            max_length=300,
            format_name="Text",
            required_level="ApplicationRequired",
            is_primary_name=True,
        ),
        _int("closeprobability", "Probability", 0, 100),
        A("actualclosedate", "DateTime", "Actual Close Date", format_name="DateOnly"),
        A("estimatedclosedate", "DateTime", "Est. Close Date", format_name="DateOnly"),
        _money("estimatedvalue", "Est. Revenue"),
        _money("actualvalue", "Actual Revenue"),
        _memo("description", "Description"),
        *_state(
            {0: ("Open", 1), 1: ("Won", 3), 2: ("Lost", 4)},
            {
                1: ("In Progress", 0),
                2: ("On Hold", 0),
                3: ("Won", 1),
                4: ("Canceled", 2),
                5: ("Out-Sold", 2),
            },
        ),
        _lookup("customerid", "Potential Customer", "account", "contact", kind="Customer"),
        _lookup("parentaccountid", "Account", "account"),
        _lookup("parentcontactid", "Contact", "contact"),
        _lookup("originatingleadid", "Originating Lead", "lead"),
        _lookup("campaignid", "Source Campaign", "campaign"),
        _currency_lookup(),
    ]


def _systemuser() -> list[A]:
    return [
        *_system("systemuser", "systemuserid", owned=False),
        _s("firstname", 64, "First Name"),
        _s("lastname", 64, "Last Name"),
        A(
            "fullname",
            "String",
            "Full Name",
            max_length=200,
            format_name="Text",
            valid_for_create=False,
            valid_for_update=False,
            is_primary_name=True,
        ),
        _s("internalemailaddress", 100, "Primary Email", fmt="Email"),
        _s("domainname", 1024, "User Name"),
        _s("title", 128, "Title"),
        A("applicationid", "Uniqueidentifier", "Application ID"),
        _bool("isdisabled", "Status", "Disabled", "Enabled"),
    ]


def _team() -> list[A]:
    return [
        *_system("team", "teamid", owned=False),
        A(
            "name",
            "String",
            "Team Name",
            max_length=160,
            format_name="Text",
            required_level="SystemRequired",
            is_primary_name=True,
        ),
        _memo("description", "Description"),
        _pick("teamtype", "Team Type", {0: "Owner", 1: "Access"}, 0),
        _lookup("administratorid", "Administrator", "systemuser"),
    ]


def _campaign() -> list[A]:
    return [
        *_system("campaign", "campaignid"),
        A(
            "name",
            "String",
            "Name",
            max_length=128,
            format_name="Text",
            required_level="SystemRequired",
            is_primary_name=True,
        ),
        _s("codename", 32, "Campaign Code"),
        _memo("description", "Description"),
        _pick(
            "typecode",
            "Campaign Type",
            {1: "Advertisement", 2: "Direct Marketing", 3: "Event", 4: "Co-branding", 5: "Other"},
            1,
        ),
        A("actualstart", "DateTime", "Actual Start", format_name="DateOnly"),
        A("actualend", "DateTime", "Actual End", format_name="DateOnly"),
        _money("budgetedcost", "Budget Allocated"),
        _currency_lookup(),
        *_state(
            {0: ("Active", 0), 1: ("Inactive", 6)},
            {
                0: ("Proposed", 0),
                1: ("Ready To Launch", 0),
                2: ("Launched", 0),
                3: ("Completed", 0),
                4: ("Canceled", 0),
                5: ("Suspended", 0),
                6: ("Inactive", 1),
            },
        ),
    ]


def _list() -> list[A]:
    return [
        *_system("list", "listid"),
        A(
            "listname",
            "String",
            "Name",
            max_length=128,
            format_name="Text",
            required_level="SystemRequired",
            is_primary_name=True,
        ),
        _s("purpose", 512, "Purpose"),
        _memo("description", "Description"),
        _bool("type", "Type", "Dynamic", "Static"),
        A(
            "createdfromcode",
            "Picklist",
            "Targeted At",
            options=(OptionDef(1, "Account"), OptionDef(2, "Contact"), OptionDef(4, "Lead")),
            required_level="SystemRequired",
            default_value=4,
        ),
        A(
            "membercount",
            "Integer",
            "Member Count",
            min_value=0,
            max_value=2_147_483_647,
            valid_for_create=False,
            valid_for_update=False,
        ),
        *_state({0: ("Active", 0), 1: ("Inactive", 1)}, {0: ("Active", 0), 1: ("Inactive", 1)}),
    ]


def _listmember() -> list[A]:
    return [
        *_system("listmember", "listmemberid", owned=False),
        _lookup("listid", "List", "list", valid_for_update=False),
        _lookup(
            "entityid",
            "Member",
            "account",
            "contact",
            "lead",
            valid_for_update=False,
            nav_names=("entityid_account", "entityid_contact", "entityid_lead"),
        ),
        A(
            "name",
            "String",
            "Name",
            max_length=100,
            format_name="Text",
            valid_for_create=False,
            valid_for_update=False,
            is_primary_name=True,
        ),
    ]


BASE_CURRENCY_ID = metadata_id("transactioncurrency", "USD")


def _currency_lookup() -> A:
    return _lookup("transactioncurrencyid", "Currency", "transactioncurrency")


def _transactioncurrency() -> list[A]:
    return [
        *_system("transactioncurrency", "transactioncurrencyid", owned=False),
        A(
            "currencyname",
            "String",
            "Currency Name",
            max_length=100,
            format_name="Text",
            required_level="SystemRequired",
            is_primary_name=True,
        ),
        _s("isocurrencycode", 5, "Currency Code", level="SystemRequired"),
        _s("currencysymbol", 10, "Currency Symbol", level="SystemRequired"),
        A(
            "exchangerate",
            "Decimal",
            "Exchange Rate",
            min_value=0.0000000001,
            max_value=100_000_000_000,
            precision=10,
            required_level="SystemRequired",
        ),
        *_state({0: ("Active", 1), 1: ("Inactive", 2)}, {1: ("Active", 0), 2: ("Inactive", 1)}),
    ]


def _task() -> list[A]:
    regarding = ("account", "contact", "lead", "opportunity", "campaign")
    return [
        *_system("task", "activityid"),
        A(
            "subject",
            "String",
            "Subject",
            max_length=200,
            format_name="Text",
            required_level="SystemRequired",
            is_primary_name=True,
        ),
        _memo("description", "Description"),
        A("scheduledend", "DateTime", "Due", format_name="DateAndTime"),
        _pick("prioritycode", "Priority", {0: "Low", 1: "Normal", 2: "High"}, 1),
        *_state(
            {0: ("Open", 2), 1: ("Completed", 5), 2: ("Canceled", 6)},
            {
                2: ("Not Started", 0),
                3: ("In Progress", 0),
                4: ("Waiting on someone else", 0),
                7: ("Deferred", 0),
                5: ("Completed", 1),
                6: ("Canceled", 2),
            },
        ),
        _lookup(
            "regardingobjectid",
            "Regarding",
            *regarding,
            nav_names=tuple(f"regardingobjectid_{t}_task" for t in regarding),
        ),
    ]


# logical, schema, set, pk, primary name, display, display plural, ownership, object type code
_TABLES = (
    ("lead", "Lead", "leads", "leadid", "fullname", "Lead", "Leads", "UserOwned", 4, _lead),
    (
        "contact",
        "Contact",
        "contacts",
        "contactid",
        "fullname",
        "Contact",
        "Contacts",
        "UserOwned",
        2,
        _contact,
    ),
    (
        "account",
        "Account",
        "accounts",
        "accountid",
        "name",
        "Account",
        "Accounts",
        "UserOwned",
        1,
        _account,
    ),
    (
        "opportunity",
        "Opportunity",
        "opportunities",
        "opportunityid",
        "name",
        "Opportunity",
        "Opportunities",
        "UserOwned",
        3,
        _opportunity,
    ),
    (
        "systemuser",
        "SystemUser",
        "systemusers",
        "systemuserid",
        "fullname",
        "User",
        "Users",
        "BusinessOwned",
        8,
        _systemuser,
    ),
    ("team", "Team", "teams", "teamid", "name", "Team", "Teams", "BusinessOwned", 9, _team),
    (
        "campaign",
        "Campaign",
        "campaigns",
        "campaignid",
        "name",
        "Campaign",
        "Campaigns",
        "UserOwned",
        4400,
        _campaign,
    ),
    (
        "list",
        "List",
        "lists",
        "listid",
        "listname",
        "Marketing List",
        "Marketing Lists",
        "UserOwned",
        4300,
        _list,
    ),
    (
        "listmember",
        "ListMember",
        "listmembers",
        "listmemberid",
        "name",
        "Marketing List Member",
        "Marketing List Members",
        "None",
        4301,
        _listmember,
    ),
    ("task", "Task", "tasks", "activityid", "subject", "Task", "Tasks", "UserOwned", 4212, _task),
    (
        "transactioncurrency",
        "TransactionCurrency",
        "transactioncurrencies",
        "transactioncurrencyid",
        "currencyname",
        "Currency",
        "Currencies",
        "OrganizationOwned",
        9105,
        _transactioncurrency,
    ),
)


def builtin_entities(change_tracking: Mapping[str, bool]) -> list[EntityDef]:
    """The out-of-the-box tables, with change tracking switched per the configuration."""
    entities = []
    for logical, schema, set_name, pk, name, label, plural, owner, otc, columns in _TABLES:
        attributes = {}
        for column in columns():
            finished = finish_attribute(logical, column)
            attributes[finished.logical_name] = finished
        entities.append(
            EntityDef(
                logical_name=logical,
                schema_name=schema,
                entity_set_name=set_name,
                primary_id=pk,
                primary_name=name,
                display_name=label,
                display_collection_name=plural,
                ownership=owner,
                object_type_code=otc,
                change_tracking=bool(change_tracking.get(logical, False)),
                attributes=attributes,
                meta_id=metadata_id(logical),
            )
        )
    return entities


def custom_entity(header: Mapping[str, object]) -> EntityDef:
    """A new custom table with the system columns Dataverse gives every table.

    ``header`` holds logical_name, schema_name, entity_set_name, display names, ownership,
    object type code, change tracking and MetadataId (as persisted by the storage).
    """
    logical = str(header["logical_name"])
    pk = f"{logical}id"
    owned = header.get("ownership", "UserOwned") == "UserOwned"
    columns = [
        *_system(logical, pk, owned=owned),
        *_state({0: ("Active", 1), 1: ("Inactive", 2)}, {1: ("Active", 0), 2: ("Inactive", 1)}),
    ]
    attributes = {}
    for column in columns:
        finished = finish_attribute(logical, column)
        attributes[finished.logical_name] = finished
    return EntityDef(
        logical_name=logical,
        schema_name=str(header["schema_name"]),
        entity_set_name=str(header["entity_set_name"]),
        primary_id=pk,
        primary_name=str(header.get("primary_name", "")),
        display_name=str(header.get("display_name", logical)),
        display_collection_name=str(header.get("display_collection_name", logical)),
        ownership=str(header.get("ownership", "UserOwned")),
        object_type_code=int(header.get("object_type_code", 10000)),  # type: ignore[call-overload]
        is_custom=True,
        change_tracking=bool(header.get("change_tracking", False)),
        attributes=attributes,
        meta_id=str(header.get("meta_id") or metadata_id(logical)),
    )
