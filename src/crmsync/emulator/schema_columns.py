"""Column builders for the built-in tables: strings, memos, numbers, choices, lookups, the
system columns every table has, and the person, address and Marketo-solution column groups
that lead and contact share (spec §2b/§2c, marketo-dynamics-docs Appendix A).
"""

from __future__ import annotations

from collections.abc import Mapping

from crmsync.emulator.metadata import AttributeDef, OptionDef

A = AttributeDef


def string(name: str, length: int, label: str, *, fmt: str = "Text", level: str = "None") -> A:
    """A text column of ``length`` characters."""
    return A(name, "String", label, max_length=length, format_name=fmt, required_level=level)


def memo(name: str, label: str, length: int = 2000) -> A:
    """A multi-line text column."""
    return A(name, "Memo", label, max_length=length, format_name="TextArea")


def integer(name: str, label: str, low: int, high: int, *, custom: bool = False) -> A:
    """A whole-number column between ``low`` and ``high``."""
    return A(name, "Integer", label, min_value=low, max_value=high, is_custom=custom)


def money(name: str, label: str) -> A:
    """A currency column with two decimals."""
    return A(name, "Money", label, min_value=0, max_value=100_000_000_000_000, precision=2)


def boolean(name: str, label: str, true: str = "Yes", false: str = "No") -> A:
    """A two-option column, false by default."""
    return A(name, "Boolean", label, true_label=true, false_label=false, default_value=False)


def choice(name: str, label: str, options: Mapping[int, str], default: int | None = None) -> A:
    """A choice (option set) column of ``options``."""
    opts = tuple(OptionDef(v, lbl) for v, lbl in options.items())
    return A(name, "Picklist", label, options=opts, default_value=default)


def date_time(name: str, label: str, *, read_only: bool = False, custom: bool = False) -> A:
    """A date-and-time column; ``read_only`` ones are set by the system."""
    return A(
        name,
        "DateTime",
        label,
        format_name="DateAndTime",
        valid_for_create=not read_only,
        valid_for_update=not read_only,
        is_custom=custom,
    )


def lookup(name: str, label: str, *targets: str, kind: str = "Lookup", **extra: object) -> A:
    """A lookup column pointing at one of ``targets``."""
    return A(name, kind, label, targets=tuple(targets), **extra)  # type: ignore[arg-type]


def state_and_status(
    states: Mapping[int, tuple[str, int]], statuses: Mapping[int, tuple[str, int]]
) -> list[A]:
    """The ``statecode``/``statuscode`` pair, each status reason tied to its state."""
    state_opts = tuple(OptionDef(v, lbl, None, dflt) for v, (lbl, dflt) in states.items())
    status_opts = tuple(OptionDef(v, lbl, st) for v, (lbl, st) in statuses.items())
    return [
        A("statecode", "State", "Status", options=state_opts, required_level="SystemRequired"),
        A("statuscode", "Status", "Status Reason", options=status_opts),
    ]


def system_columns(entity: str, pk: str, *, owned: bool = True) -> list[A]:
    """The columns every table has: its key, owner, created/modified stamps, version."""
    columns = [
        A(
            pk,
            "Uniqueidentifier",
            entity.capitalize(),
            required_level="SystemRequired",
            is_primary_id=True,
            valid_for_update=False,
        ),
        date_time("createdon", "Created On", read_only=True),
        date_time("modifiedon", "Modified On", read_only=True),
        lookup(
            "createdby", "Created By", "systemuser", valid_for_create=False, valid_for_update=False
        ),
        lookup(
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
            lookup(
                "ownerid",
                "Owner",
                "systemuser",
                "team",
                kind="Owner",
                required_level="SystemRequired",
            )
        )
    return columns


LEAD_SOURCE = {
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
INDUSTRY = {
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


def person_columns(mobile_length: int) -> list[A]:
    """Columns lead and contact share (spec §2b/§2c, Appendix A)."""
    return [
        string("salutation", 100, "Salutation"),
        string("firstname", 50, "First Name", level="Recommended"),
        string("middlename", 50, "Middle Name"),
        string("lastname", 50, "Last Name", level="ApplicationRequired"),
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
        string("emailaddress1", 100, "Email", fmt="Email"),
        string("emailaddress2", 100, "Email Address 2", fmt="Email"),
        string("emailaddress3", 100, "Email Address 3", fmt="Email"),
        string("jobtitle", 100, "Job Title"),
        string("telephone1", 50, "Business Phone", fmt="Phone"),
        string("telephone2", 50, "Home Phone", fmt="Phone"),
        string("telephone3", 50, "Other Phone", fmt="Phone"),
        string("mobilephone", mobile_length, "Mobile Phone", fmt="Phone"),
        string("fax", 50, "Fax", fmt="Phone"),
        string("websiteurl", 200, "Website", fmt="Url"),
        memo("description", "Description"),
        *address_columns(),
        boolean("donotemail", "Do not allow Emails", "Do Not Allow", "Allow"),
        boolean("donotbulkemail", "Do not allow Bulk Emails", "Do Not Allow", "Allow"),
        boolean("donotphone", "Do not allow Phone Calls", "Do Not Allow", "Allow"),
        boolean("donotfax", "Do not allow Faxes", "Do Not Allow", "Allow"),
        boolean("donotpostalmail", "Do not allow Mails", "Do Not Allow", "Allow"),
        boolean("donotsendmm", "Marketing Material", "Do Not Send", "Send"),
        boolean("msdyn_gdproptout", "GDPR Optout"),
        choice("preferredcontactmethodcode", "Preferred Method of Contact", _CONTACT_METHOD, 1),
        *marketo_columns(),
    ]


def address_columns() -> list[A]:
    """The first address block shared by leads, contacts and accounts."""
    return [
        string("address1_line1", 250, "Street 1"),
        string("address1_line2", 250, "Street 2"),
        string("address1_line3", 250, "Street 3"),
        string("address1_city", 80, "City"),
        string("address1_stateorprovince", 50, "State/Province"),
        string("address1_postalcode", 20, "ZIP/Postal Code"),
        string("address1_country", 80, "Country/Region"),
    ]


def marketo_columns() -> list[A]:
    """Columns the Marketo solution adds to lead and contact (publisher prefix ``mkt``)."""
    return [
        date_time("mkt_lastinterestingmomentdate", "Last Interesting Moment Date", custom=True),
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
        integer("mkt_relativescore", "Relative Score", 0, 2_147_483_647, custom=True),
        integer("mkt_priority", "Priority", 0, 2_147_483_647, custom=True),
        integer("mkt_urgency", "Urgency", 0, 2_147_483_647, custom=True),
    ]
