"""Functions and actions: WhoAmI, RetrieveAvailableLanguages, RetrieveUserPrivileges,
RetrievePrincipalAttributePrivileges, QualifyLead (spec §9, §12).

Where the docs are silent: privilege ids are stable GUIDs derived from the privilege name;
every privilege is reported at depth ``Global`` (the emulator has no business-unit hierarchy);
users present as rows but absent from the configuration (seeded salespeople) hold no privileges.
"""

# SQL identifiers here come from validated metadata (SAFE_NAME) and are quoted by q();
# every value is a bound parameter.

from __future__ import annotations

from typing import Any

from crmsync.dataverse_codes import INVALID_ARGUMENT
from crmsync.emulator.config import EmulatorUser
from crmsync.emulator.context import (
    ApiResponse,
    RequestContext,
    action_response,
    json_response,
    privilege_name,
)
from crmsync.emulator.errors import bad_request, invalid, json_object, not_found
from crmsync.emulator.metadata import EntityDef, metadata_id
from crmsync.emulator.storage import iso
from crmsync.emulator.validation import parse_reference
from crmsync.emulator.writes import insert_record

_PRIVILEGES = ("create", "read", "write", "delete", "append", "appendto")


def who_am_i(ctx: RequestContext) -> ApiResponse:
    """``GET WhoAmI`` -> BusinessUnitId, UserId, OrganizationId."""
    return action_response(
        ctx,
        "WhoAmI",
        {
            "BusinessUnitId": ctx.config.business_unit_id,
            "UserId": ctx.user_id,
            "OrganizationId": ctx.config.organization_id,
        },
    )


# The organization version RetrieveAvailableLanguages reports (a current Dataverse build).
ORGANIZATION_VERSION = "9.2.25063.00000"


def retrieve_available_languages(ctx: RequestContext) -> ApiResponse:
    """``GET RetrieveAvailableLanguages`` -> the provisioned languages (English, 1033) and the
    organization version ("RetrieveAvailableLanguages Function", Web API function reference)."""
    return action_response(
        ctx,
        "RetrieveAvailableLanguages",
        {"LocaleIds": [1033], "OrganizationVersion": ORGANIZATION_VERSION},
    )


def _user(ctx: RequestContext, user_id: str) -> EmulatorUser | None:
    systemuser = ctx.catalog.require("systemuser")
    ctx.require(systemuser, "read")
    if not ctx.storage.exists(systemuser, user_id):
        raise not_found("systemuser", user_id)
    user = ctx.config.user_by_id(user_id)
    return None if user is None else ctx.runtime.current_user(user)


def retrieve_user_privileges(ctx: RequestContext, user_id: str) -> ApiResponse:
    """``GET systemusers(<id>)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges``."""
    user = _user(ctx, user_id)
    privileges: list[dict[str, Any]] = []
    if user is not None:
        for entity in ctx.catalog:
            for privilege in _PRIVILEGES:
                if user.can(entity.logical_name, privilege):
                    name = privilege_name(entity, privilege)
                    privileges.append(
                        {
                            "Depth": "Global",
                            "PrivilegeId": metadata_id("privilege", name),
                            "BusinessUnitId": ctx.config.business_unit_id,
                            "PrivilegeName": name,
                        }
                    )
    return action_response(
        ctx,
        "RetrieveUserPrivileges",
        {
            "RolePrivileges": privileges,
        },
    )


def retrieve_attribute_privileges(ctx: RequestContext, user_id: str) -> ApiResponse:
    """``GET systemusers(<id>)/Microsoft.Dynamics.CRM.RetrievePrincipalAttributePrivileges()``.

    One entry per secured column: 4 = allowed, 0 = not allowed (spec §9).
    """
    user = _user(ctx, user_id)
    entries = []
    for entity_name, attribute_name in sorted(ctx.config.secured_attributes):
        entity = ctx.catalog.get(entity_name)
        attribute = entity.attributes.get(attribute_name) if entity else None
        if attribute is None:
            continue
        readable = user is not None and (entity_name, attribute_name) in user.readable_secured
        updatable = user is not None and (entity_name, attribute_name) in user.updatable_secured
        entries.append(
            {
                "AttributeId": attribute.meta_id,
                "CanCreate": 4 if updatable else 0,
                "CanRead": 4 if readable else 0,
                "CanUpdate": 4 if updatable else 0,
            }
        )
    return action_response(
        ctx,
        "RetrievePrincipalAttributePrivileges",
        {
            "AttributePrivileges": entries,
        },
    )


def qualify_lead(ctx: RequestContext, lead_id: str, body: bytes) -> ApiResponse:
    """``POST leads(<id>)/Microsoft.Dynamics.CRM.QualifyLead``.

    Creates the requested account/contact/opportunity with ``originatingleadid`` set, links
    them (contact under the account; opportunity's customer is the account, else the contact,
    else ``OpportunityCustomerId``), then sets the lead to state Qualified with ``Status``.
    """
    leads = ctx.catalog.require("lead")
    params = json_object(body, "The QualifyLead parameters", plural=True)
    for required in ("CreateAccount", "CreateContact", "CreateOpportunity", "Status"):
        if required not in params:
            raise bad_request(INVALID_ARGUMENT, f"The parameter '{required}' is required.")
    lead = ctx.storage.fetch(leads, lead_id)
    if lead is None:
        raise not_found("lead", lead_id)
    ctx.require(leads, "write")
    status = params["Status"]
    option = leads.attributes["statuscode"].option(status) if isinstance(status, int) else None
    if option is None or option.state != 1:
        raise invalid(
            INVALID_ARGUMENT,
            f"{status} is not a valid status code for state code LeadState.Qualified.",
        )
    if lead["statecode"] != 0:
        raise invalid(
            INVALID_ARGUMENT, "The lead is already closed. Only an open lead can be qualified."
        )
    created: list[dict[str, Any]] = []
    lead_ref = f"/leads({lead_id})"
    with ctx.storage.atomic():
        account_id = contact_id = None
        if params["CreateAccount"] and lead.get("companyname"):
            account_id = insert_record(
                ctx,
                ctx.catalog.require("account"),
                _copy(
                    lead,
                    {
                        "companyname": "name",
                        "telephone1": "telephone1",
                        "websiteurl": "websiteurl",
                        **_ADDRESS,
                    },
                )
                | {"originatingleadid@odata.bind": lead_ref},
            )
            created.append(
                {"@odata.type": "#Microsoft.Dynamics.CRM.account", "accountid": account_id}
            )
        if params["CreateContact"]:
            body_contact = _copy(lead, {name: name for name in _PERSON}) | {
                "originatingleadid@odata.bind": lead_ref
            }
            if account_id:
                body_contact["parentcustomerid_account@odata.bind"] = f"/accounts({account_id})"
            contact_id = insert_record(ctx, ctx.catalog.require("contact"), body_contact)
            created.append(
                {"@odata.type": "#Microsoft.Dynamics.CRM.contact", "contactid": contact_id}
            )
        opportunity_id = None
        if params["CreateOpportunity"]:
            opportunity = {
                "name": lead.get("subject") or lead.get("fullname") or "Opportunity",
                "originatingleadid@odata.bind": lead_ref,
            }
            customer = params.get("OpportunityCustomerId@odata.bind")
            if account_id:
                opportunity["customerid_account@odata.bind"] = f"/accounts({account_id})"
            elif contact_id:
                opportunity["customerid_contact@odata.bind"] = f"/contacts({contact_id})"
            elif isinstance(customer, str):
                target, target_id = parse_reference(ctx, customer)
                opportunity[f"customerid_{target.logical_name}@odata.bind"] = (
                    f"/{target.entity_set_name}({target_id})"
                )
            opportunity_id = insert_record(ctx, ctx.catalog.require("opportunity"), opportunity)
            created.append(
                {
                    "@odata.type": "#Microsoft.Dynamics.CRM.opportunity",
                    "opportunityid": opportunity_id,
                }
            )
        _close_lead(ctx, leads, lead_id, status, opportunity_id)
    return json_response(
        200,
        {
            "@odata.context": f"{ctx.base_url}/$metadata#Collection("
            "Microsoft.Dynamics.CRM.crmbaseentity)",
            "value": created,
        },
    )


_PERSON = (
    "salutation",
    "firstname",
    "middlename",
    "lastname",
    "emailaddress1",
    "jobtitle",
    "telephone1",
    "telephone2",
    "mobilephone",
    "fax",
    "websiteurl",
    "description",
    "address1_line1",
    "address1_line2",
    "address1_line3",
    "address1_city",
    "address1_stateorprovince",
    "address1_postalcode",
    "address1_country",
    "donotemail",
    "donotbulkemail",
    "donotphone",
    "donotfax",
    "donotpostalmail",
    "donotsendmm",
    "preferredcontactmethodcode",
)
_ADDRESS = {name: name for name in _PERSON if name.startswith("address1_")}


def _copy(lead: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    copied: dict[str, Any] = {}
    for source, target in mapping.items():
        value = lead.get(source)
        if value is None:
            continue
        if source.startswith("donot"):
            value = bool(value)
        copied[target] = value
    return copied


def _close_lead(
    ctx: RequestContext, leads: EntityDef, lead_id: str, status: int, opportunity_id: str | None
) -> None:
    changes: dict[str, Any] = {
        "statecode": 1,
        "statuscode": status,
        "modifiedon": iso(ctx.runtime.clock()),
        "modifiedby": ctx.user_id,
        "versionnumber": ctx.storage.next_version(),
    }
    if opportunity_id:
        changes["qualifyingopportunityid"] = opportunity_id
    ctx.storage.update(leads, lead_id, changes)
