"""Standard field specifications of the marketing objects.

Each spec is ``(rest_name, display_name, data_type, length, read_only)``. The position of a spec
in its tuple (1-based, plus the object's id base) is the field's stable numeric id, as Marketo's
describe reports it, so specs are only ever appended, never reordered or removed. The store
builds one SQL column per spec (named in snake_case, keyed by the REST name); the marketing
field catalog (:mod:`crmsync.marketing.fields`) exposes them with their metadata.

Data types are Marketo's: string, text, email, phone, url, integer, float, currency, boolean,
date, datetime, score, percent, reference. Dates are stored as ``YYYY-MM-DD`` text and
date-times as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC) text: exactly the wire format, lexically ordered.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class FieldSpec(NamedTuple):
    """One standard field: REST name, display name, Marketo data type, length, read-only."""

    rest_name: str
    display_name: str
    data_type: str
    length: int | None
    read_only: bool


def _s(name: str, display: str, length: int = 255) -> FieldSpec:
    return FieldSpec(name, display, "string", length, False)


def _t(name: str, display: str, data_type: str, read_only: bool = False) -> FieldSpec:
    length = 255 if data_type in {"email", "phone", "url", "reference"} else None
    return FieldSpec(name, display, data_type, length, read_only)


DATA_TYPES: frozenset[str] = frozenset(
    {
        "string",
        "text",
        "email",
        "phone",
        "url",
        "integer",
        "float",
        "currency",
        "boolean",
        "date",
        "datetime",
        "score",
        "percent",
        "reference",
    }
)

PERSON_FIELDS: tuple[FieldSpec, ...] = (
    _t("id", "Id", "integer", read_only=True),
    _t("email", "Email Address", "email"),
    _s("salutation", "Salutation"),
    _s("firstName", "First Name"),
    _s("middleName", "Middle Name"),
    _s("lastName", "Last Name"),
    _s("title", "Job Title"),
    _t("phone", "Phone Number", "phone"),
    _t("mobilePhone", "Mobile Phone Number", "phone"),
    _t("fax", "Fax Number", "phone"),
    _t("address", "Address", "text"),
    _s("city", "City"),
    _s("state", "State"),
    _s("country", "Country"),
    _s("postalCode", "Postal Code"),
    _s("company", "Company Name"),
    _t("website", "Website", "url"),
    _t("annualRevenue", "Annual Revenue", "currency"),
    _t("numberOfEmployees", "Num Employees", "integer"),
    _s("industry", "Industry"),
    _s("leadSource", "Lead Source"),
    _s("leadStatus", "Lead Status"),
    _s("statusReason", "Status Reason"),
    _t("personNotes", "Person Notes", "text"),
    _t("doNotCall", "Do Not Call", "boolean"),
    _t("unsubscribed", "Unsubscribed", "boolean"),
    _s("rating", "Lead Rating"),
    _t("leadScore", "Lead Score", "score"),
    _t("relativeScore", "Relative Score", "score"),
    _t("priority", "Priority", "score"),
    _t("urgency", "Urgency", "score"),
    _s("microsoftAddress2", "Address Line 2"),
    _s("microsoftAddress3", "Address Line 3"),
    _t("microsoftDoNotEmail", "Do Not Email (Microsoft)", "boolean"),
    _t("microsoftDoNotFax", "Do Not Fax (Microsoft)", "boolean"),
    _t("microsoftDoNotSendMarketingMaterial", "Do Not Send Marketing Materials", "boolean"),
    _t("microsoftHomePhone", "Home Phone", "phone"),
    _s("microsoftPreferredMethodOfContact", "Preferred Method of Contact"),
    _s("microsoftTopic", "Topic"),
    _t("lastInterestingMomentDate", "Last Interesting Moment Date", "datetime"),
    _s("lastInterestingMomentDesc", "Last Interesting Moment Desc", 2000),
    _s("lastInterestingMomentSource", "Last Interesting Moment Source"),
    _s("lastInterestingMomentType", "Last Interesting Moment Type"),
    _t("createdAt", "Created At", "datetime", read_only=True),
    _t("updatedAt", "Updated At", "datetime", read_only=True),
    FieldSpec("crmType", "CRM Type", "string", 20, True),
    _t("crmCreatedAt", "CRM Created Date", "datetime", read_only=True),
    _t("crmIsDeleted", "CRM Is Deleted", "boolean", read_only=True),
    FieldSpec("crmLeadId", "CRM Lead Id", "string", 64, True),
    FieldSpec("crmContactId", "CRM Contact Id", "string", 64, True),
    _s("externalCompanyId", "External Company Id"),
    _s("externalSalesPersonId", "External Sales Person Id"),
    _t("dateOfBirth", "Date of Birth", "date"),
    _s("department", "Department"),
    _s("doNotCallReason", "Do Not Call Reason"),
    _s("leadRole", "Role"),
    _t("unsubscribedReason", "Unsubscribed Reason", "text"),
    _t("emailInvalid", "Email Invalid", "boolean"),
    _s("emailInvalidCause", "Email Invalid Cause"),
    _t("leadPartitionId", "Lead Partition Id", "integer", read_only=True),
    # Company fields on a person (B3, R40): a person of a company shows the company's values.
    _t("billingStreet", "Billing Address", "text"),
    _s("billingCity", "Billing City"),
    _s("billingState", "Billing State"),
    _s("billingPostalCode", "Billing Postal Code"),
    _s("billingCountry", "Billing Country"),
    _t("mainPhone", "Main Phone", "phone"),
    _s("sicCode", "SIC Code"),
)

COMPANY_FIELDS: tuple[FieldSpec, ...] = (
    _t("id", "Id", "integer", read_only=True),
    _s("company", "Company Name"),
    _s("externalCompanyId", "External Company Id"),
    _t("billingStreet", "Billing Address", "text"),
    _s("billingCity", "Billing City"),
    _s("billingState", "Billing State"),
    _s("billingCountry", "Billing Country"),
    _s("billingPostalCode", "Billing Postal Code"),
    _s("microsoftBillingAddress2", "Billing Address Line 2"),
    _s("microsoftBillingAddress3", "Billing Address Line 3"),
    _t("mainPhone", "Main Phone", "phone"),
    _s("businessType", "Business Type"),
    _s("microsoftAccountNumber", "Account Number"),
    _s("microsoftCompanyStatus", "Company Status"),
    _t("annualRevenue", "Annual Revenue", "currency"),
    _t("companyNotes", "Company Notes", "text"),
    _s("industry", "Industry"),
    _s("sicCode", "SIC Code"),
    _t("website", "Website", "url"),
    _t("numberOfEmployees", "Num Employees", "integer"),
    _t("crmIsDeleted", "CRM Is Deleted", "boolean", read_only=True),
    _s("externalSalesPersonId", "External Sales Person Id"),
    _t("createdAt", "Created At", "datetime", read_only=True),
    _t("updatedAt", "Updated At", "datetime", read_only=True),
)

OPPORTUNITY_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("marketoGUID", "Marketo GUID", "string", 36, True),
    _s("externalOpportunityId", "External Opportunity Id"),
    _s("name", "Name"),
    _t("description", "Description", "text"),
    _s("stage", "Stage"),
    _t("amount", "Amount", "currency"),
    _t("probability", "Probability", "percent"),
    _t("closeDate", "Close Date", "date"),
    _s("externalCompanyId", "External Company Id"),
    _s("externalSalesPersonId", "External Sales Person Id"),
    _t("crmIsDeleted", "CRM Is Deleted", "boolean", read_only=True),
    _t("createdAt", "Created At", "datetime", read_only=True),
    _t("updatedAt", "Updated At", "datetime", read_only=True),
)

OPPORTUNITY_ROLE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("marketoGUID", "Marketo GUID", "string", 36, True),
    _s("externalOpportunityId", "External Opportunity Id"),
    _t("leadId", "Lead Id", "integer"),
    _s("role", "Role"),
    _t("isPrimary", "Is Primary", "boolean"),
    _t("crmIsDeleted", "CRM Is Deleted", "boolean", read_only=True),
    _t("createdAt", "Created At", "datetime", read_only=True),
    _t("updatedAt", "Updated At", "datetime", read_only=True),
)

SALES_PERSON_FIELDS: tuple[FieldSpec, ...] = (
    _t("id", "Id", "integer", read_only=True),
    _s("externalSalesPersonId", "External Sales Person Id"),
    _t("email", "Email Address", "email"),
    _s("firstName", "First Name"),
    _s("lastName", "Last Name"),
    _t("crmIsDeleted", "CRM Is Deleted", "boolean", read_only=True),
    _t("createdAt", "Created At", "datetime", read_only=True),
    _t("updatedAt", "Updated At", "datetime", read_only=True),
)

TEAM_FIELDS: tuple[FieldSpec, ...] = (
    _t("id", "Id", "integer", read_only=True),
    _s("externalTeamId", "External Team Id"),
    _s("name", "Name"),
    _t("crmIsDeleted", "CRM Is Deleted", "boolean", read_only=True),
    _t("createdAt", "Created At", "datetime", read_only=True),
    _t("updatedAt", "Updated At", "datetime", read_only=True),
)

OBJECT_FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "person": PERSON_FIELDS,
    "company": COMPANY_FIELDS,
    "opportunity": OPPORTUNITY_FIELDS,
    "opportunityRole": OPPORTUNITY_ROLE_FIELDS,
    "salesperson": SALES_PERSON_FIELDS,
    "team": TEAM_FIELDS,
}

# Field ids: standard fields of object k get ``ID_BASE[k] + position``; custom fields get
# ``CUSTOM_FIELD_ID_BASE + row id`` so that ids never collide across objects.
ID_BASE: dict[str, int] = {
    "person": 0,
    "company": 1000,
    "opportunity": 2000,
    "opportunityRole": 3000,
    "salesperson": 4000,
    "team": 5000,
}
CUSTOM_FIELD_ID_BASE = 100_000

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def column_name(rest_name: str) -> str:
    """The SQL column name of a REST field name: ``firstName`` → ``first_name``."""
    return _CAMEL.sub(r"_\1", rest_name).lower()
