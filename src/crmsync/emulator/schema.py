"""The built-in tables of the emulated organization, at their documented types and sizes.

Columns are those of the default Marketo mapping (spec marketo-dynamics-docs Appendix A) plus
the keys, ownership and audit columns every table has, with the MaxLength, ranges, options and
required levels from spec §2b/§2c. ``mkt_*`` columns belong to the Marketo solution (publisher
prefix ``mkt``), so they are custom attributes.
"""

from __future__ import annotations

from collections.abc import Mapping

from crmsync.emulator.metadata import (
    EntityDef,
    OptionDef,
    finish_attribute,
    metadata_id,
)
from crmsync.emulator.schema_columns import (
    INDUSTRY,
    LEAD_SOURCE,
    A,
    address_columns,
    boolean,
    choice,
    integer,
    lookup,
    memo,
    money,
    person_columns,
    state_and_status,
    string,
    system_columns,
)


def _lead() -> list[A]:
    return [
        *system_columns("lead", "leadid"),
        *person_columns(20),
        string("companyname", 100, "Company Name", level="Recommended"),
        string("subject", 300, "Topic", level="ApplicationRequired"),
        integer("numberofemployees", "No. of Employees", 0, 1_000_000),
        money("revenue", "Annual Revenue"),
        choice("leadsourcecode", "Lead Source", LEAD_SOURCE),
        choice("leadqualitycode", "Rating", {1: "Hot", 2: "Warm", 3: "Cold"}, 2),
        choice("industrycode", "Industry", INDUSTRY),
        *state_and_status(
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
        lookup("parentaccountid", "Parent Account for lead", "account"),
        lookup("parentcontactid", "Parent Contact for lead", "contact"),
        lookup("customerid", "Customer", "account", "contact", kind="Customer"),
        lookup("campaignid", "Source Campaign", "campaign"),
        lookup("qualifyingopportunityid", "Qualifying Opportunity", "opportunity"),
        _currency_lookup(),
    ]


def _contact() -> list[A]:
    return [
        *system_columns("contact", "contactid"),
        *person_columns(50),
        choice("leadsourcecode", "Lead Source", {1: "Default Value"}, 1),
        integer("mkt_leadscore", "Lead Score", -2_147_483_648, 2_147_483_647, custom=True),
        *state_and_status(
            {0: ("Active", 1), 1: ("Inactive", 2)}, {1: ("Active", 0), 2: ("Inactive", 1)}
        ),
        lookup("parentcustomerid", "Company Name", "account", "contact", kind="Customer"),
        lookup("originatingleadid", "Originating Lead", "lead"),
    ]


def _account() -> list[A]:
    return [
        *system_columns("account", "accountid"),
        A(
            "name",
            "String",
            "Account Name",
            max_length=160,
            format_name="Text",
            required_level="ApplicationRequired",
            is_primary_name=True,
        ),
        string("accountnumber", 20, "Account Number"),
        string("telephone1", 50, "Main Phone", fmt="Phone"),
        string("fax", 50, "Fax", fmt="Phone"),
        string("emailaddress1", 100, "Email", fmt="Email"),
        string("websiteurl", 200, "Website", fmt="Url"),
        string("sic", 20, "SIC Code"),
        memo("description", "Description"),
        *address_columns(),
        choice("businesstypecode", "Business Type", {1: "Default Value"}, 1),
        choice("industrycode", "Industry", INDUSTRY),
        money("revenue", "Annual Revenue"),
        integer("numberofemployees", "Number of Employees", 0, 1_000_000_000),
        *state_and_status(
            {0: ("Active", 1), 1: ("Inactive", 2)}, {1: ("Active", 0), 2: ("Inactive", 1)}
        ),
        lookup("primarycontactid", "Primary Contact", "contact"),
        lookup("parentaccountid", "Parent Account", "account"),
        lookup("originatingleadid", "Originating Lead", "lead"),
        _currency_lookup(),
    ]


def _opportunity() -> list[A]:
    return [
        *system_columns("opportunity", "opportunityid"),
        A(
            "name",
            "String",
            "Topic",
            max_length=300,
            format_name="Text",
            required_level="ApplicationRequired",
            is_primary_name=True,
        ),
        integer("closeprobability", "Probability", 0, 100),
        A("actualclosedate", "DateTime", "Actual Close Date", format_name="DateOnly"),
        A("estimatedclosedate", "DateTime", "Est. Close Date", format_name="DateOnly"),
        money("estimatedvalue", "Est. Revenue"),
        money("actualvalue", "Actual Revenue"),
        memo("description", "Description"),
        *state_and_status(
            {0: ("Open", 1), 1: ("Won", 3), 2: ("Lost", 4)},
            {
                1: ("In Progress", 0),
                2: ("On Hold", 0),
                3: ("Won", 1),
                4: ("Canceled", 2),
                5: ("Out-Sold", 2),
            },
        ),
        lookup("customerid", "Potential Customer", "account", "contact", kind="Customer"),
        lookup("parentaccountid", "Account", "account"),
        lookup("parentcontactid", "Contact", "contact"),
        lookup("originatingleadid", "Originating Lead", "lead"),
        lookup("campaignid", "Source Campaign", "campaign"),
        _currency_lookup(),
    ]


def _systemuser() -> list[A]:
    return [
        *system_columns("systemuser", "systemuserid", owned=False),
        string("firstname", 64, "First Name"),
        string("lastname", 64, "Last Name"),
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
        string("internalemailaddress", 100, "Primary Email", fmt="Email"),
        string("domainname", 1024, "User Name"),
        string("title", 128, "Title"),
        A("applicationid", "Uniqueidentifier", "Application ID"),
        boolean("isdisabled", "Status", "Disabled", "Enabled"),
    ]


def _team() -> list[A]:
    return [
        *system_columns("team", "teamid", owned=False),
        A(
            "name",
            "String",
            "Team Name",
            max_length=160,
            format_name="Text",
            required_level="SystemRequired",
            is_primary_name=True,
        ),
        memo("description", "Description"),
        choice("teamtype", "Team Type", {0: "Owner", 1: "Access"}, 0),
        lookup("administratorid", "Administrator", "systemuser"),
    ]


def _campaign() -> list[A]:
    return [
        *system_columns("campaign", "campaignid"),
        A(
            "name",
            "String",
            "Name",
            max_length=128,
            format_name="Text",
            required_level="SystemRequired",
            is_primary_name=True,
        ),
        string("codename", 32, "Campaign Code"),
        memo("description", "Description"),
        choice(
            "typecode",
            "Campaign Type",
            {1: "Advertisement", 2: "Direct Marketing", 3: "Event", 4: "Co-branding", 5: "Other"},
            1,
        ),
        A("actualstart", "DateTime", "Actual Start", format_name="DateOnly"),
        A("actualend", "DateTime", "Actual End", format_name="DateOnly"),
        money("budgetedcost", "Budget Allocated"),
        _currency_lookup(),
        *state_and_status(
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
        *system_columns("list", "listid"),
        A(
            "listname",
            "String",
            "Name",
            max_length=128,
            format_name="Text",
            required_level="SystemRequired",
            is_primary_name=True,
        ),
        string("purpose", 512, "Purpose"),
        memo("description", "Description"),
        boolean("type", "Type", "Dynamic", "Static"),
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
        *state_and_status(
            {0: ("Active", 0), 1: ("Inactive", 1)}, {0: ("Active", 0), 1: ("Inactive", 1)}
        ),
    ]


def _listmember() -> list[A]:
    return [
        *system_columns("listmember", "listmemberid", owned=False),
        lookup("listid", "List", "list", valid_for_update=False),
        lookup(
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
    return lookup("transactioncurrencyid", "Currency", "transactioncurrency")


def _transactioncurrency() -> list[A]:
    return [
        *system_columns("transactioncurrency", "transactioncurrencyid", owned=False),
        A(
            "currencyname",
            "String",
            "Currency Name",
            max_length=100,
            format_name="Text",
            required_level="SystemRequired",
            is_primary_name=True,
        ),
        string("isocurrencycode", 5, "Currency Code", level="SystemRequired"),
        string("currencysymbol", 10, "Currency Symbol", level="SystemRequired"),
        A(
            "exchangerate",
            "Decimal",
            "Exchange Rate",
            min_value=0.0000000001,
            max_value=100_000_000_000,
            precision=10,
            required_level="SystemRequired",
        ),
        *state_and_status(
            {0: ("Active", 1), 1: ("Inactive", 2)}, {1: ("Active", 0), 2: ("Inactive", 1)}
        ),
    ]


def _task() -> list[A]:
    regarding = ("account", "contact", "lead", "opportunity", "campaign")
    return [
        *system_columns("task", "activityid"),
        A(
            "subject",
            "String",
            "Subject",
            max_length=200,
            format_name="Text",
            required_level="SystemRequired",
            is_primary_name=True,
        ),
        memo("description", "Description"),
        A("scheduledend", "DateTime", "Due", format_name="DateAndTime"),
        choice("prioritycode", "Priority", {0: "Low", 1: "Normal", 2: "High"}, 1),
        *state_and_status(
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
        lookup(
            "regardingobjectid",
            "Regarding",
            *regarding,
            nav_names=tuple(f"regardingobjectid_{t}_task" for t in regarding),
        ),
    ]


def _sdkmessage() -> list[A]:
    return [
        *system_columns("sdkmessage", "sdkmessageid", owned=False),
        A(
            "name",
            "String",
            "Name",
            max_length=256,
            format_name="Text",
            valid_for_update=False,
            is_primary_name=True,
        ),
        string("categoryname", 25, "Category Name"),
        boolean("isprivate", "Is Private", "Yes", "No"),
        boolean("isactive", "Is Active", "Yes", "No"),
        boolean("workflowsdkstepenabled", "Workflow Sdk Step Enabled", "Yes", "No"),
        integer("availability", "Availability", 0, 2),
    ]


def _sdkmessagefilter() -> list[A]:
    return [
        *system_columns("sdkmessagefilter", "sdkmessagefilterid", owned=False),
        A(
            "name",
            "String",
            "Name",
            max_length=256,
            format_name="Text",
            valid_for_update=False,
            is_primary_name=True,
        ),
        lookup("sdkmessageid", "SDK Message ID", "sdkmessage", valid_for_update=False),
        A("primaryobjecttypecode", "EntityName", "Primary Object Type Code"),
        A("secondaryobjecttypecode", "EntityName", "Secondary Object Type Code"),
        boolean("iscustomprocessingstepallowed", "Custom Processing Step Allowed", "Yes", "No"),
        boolean("isvisible", "Is Visible", "Yes", "No"),
        boolean("workflowsdkstepenabled", "Workflow Sdk Step Enabled", "Yes", "No"),
        integer("availability", "Availability", 0, 2),
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
    (
        "sdkmessage",
        "SdkMessage",
        "sdkmessages",
        "sdkmessageid",
        "name",
        "Sdk Message",
        "Sdk Messages",
        "OrganizationOwned",
        4606,
        _sdkmessage,
    ),
    (
        "sdkmessagefilter",
        "SdkMessageFilter",
        "sdkmessagefilters",
        "sdkmessagefilterid",
        "name",
        "Sdk Message Filter",
        "Sdk Message Filters",
        "OrganizationOwned",
        4607,
        _sdkmessagefilter,
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
        *system_columns(logical, pk, owned=owned),
        *state_and_status(
            {0: ("Active", 1), 1: ("Inactive", 2)}, {1: ("Active", 0), 2: ("Inactive", 1)}
        ),
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
