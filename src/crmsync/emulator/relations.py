"""Collection-valued navigation properties of the built-in one-to-many relationships.

``GET accounts(<id>)/Account_Tasks?$select=subject`` (the spec §6 batch example) lists the
rows whose lookup points at the record, paged and queried like any collection. The names are
the relationship schema names Dataverse uses; custom one-to-many relationships
are not exposed as collections (filter on ``_x_value`` instead).
"""

from __future__ import annotations

from collections.abc import Mapping

from crmsync.emulator.context import ApiResponse, RequestContext
from crmsync.emulator.errors import not_found
from crmsync.emulator.metadata import EntityDef
from crmsync.emulator.records import list_records
from crmsync.emulator.storage import q, target_column

# (referenced table, navigation property) -> (referencing table, lookup column)
ONE_TO_MANY: Mapping[tuple[str, str], tuple[str, str]] = {
    ("account", "Account_Tasks"): ("task", "regardingobjectid"),
    ("contact", "Contact_Tasks"): ("task", "regardingobjectid"),
    ("lead", "Lead_Tasks"): ("task", "regardingobjectid"),
    ("opportunity", "Opportunity_Tasks"): ("task", "regardingobjectid"),
    ("campaign", "Campaign_Tasks"): ("task", "regardingobjectid"),
    ("account", "contact_customer_accounts"): ("contact", "parentcustomerid"),
    ("contact", "contact_customer_contacts"): ("contact", "parentcustomerid"),
    ("account", "lead_parent_account"): ("lead", "parentaccountid"),
    ("contact", "lead_parent_contact"): ("lead", "parentcontactid"),
    ("account", "lead_customer_accounts"): ("lead", "customerid"),
    ("contact", "lead_customer_contacts"): ("lead", "customerid"),
    ("account", "opportunity_customer_accounts"): ("opportunity", "customerid"),
    ("contact", "opportunity_customer_contacts"): ("opportunity", "customerid"),
    ("account", "opportunity_parent_account"): ("opportunity", "parentaccountid"),
    ("account", "account_parent_account"): ("account", "parentaccountid"),
    ("account", "account_primary_contact"): ("account", "primarycontactid"),
    ("lead", "contact_originating_lead"): ("contact", "originatingleadid"),
    ("lead", "account_originating_lead"): ("account", "originatingleadid"),
    ("lead", "opportunity_originating_lead"): ("opportunity", "originatingleadid"),
}


def is_collection(entity: EntityDef, name: str) -> bool:
    """Whether ``name`` is a collection-valued navigation property of ``entity``."""
    return (entity.logical_name, name) in ONE_TO_MANY


def related(
    ctx: RequestContext, entity: EntityDef, record_id: str, name: str, query: Mapping[str, str]
) -> ApiResponse:
    """The rows of the referencing table whose lookup points at ``record_id``."""
    ctx.require(entity, "read")
    if not ctx.storage.exists(entity, record_id):
        raise not_found(entity.logical_name, record_id)
    table, column = ONE_TO_MANY[(entity.logical_name, name)]
    referencing = ctx.catalog.require(table)
    attribute = referencing.attributes[column]
    condition = f"{q(column)} = ?"
    params: list[object] = [record_id]
    if attribute.is_polymorphic:
        condition += f" AND {q(target_column(attribute))} = ?"
        params.append(entity.logical_name)
    path = f"{entity.entity_set_name}({record_id})/{name}"
    return list_records(ctx, referencing, query, scope=(condition, params), path=path)
