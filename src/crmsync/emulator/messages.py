"""The functions and actions (SDK messages) the emulator serves, described once.

``$metadata`` declares them from this list (Web API Function and Action references,
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/functions and
.../actions), and the ``sdkmessage`` / ``sdkmessagefilter`` rows are seeded from it, so a
client that asks "does this org have CreateMultiple for lead?" (the query in "Use bulk
operation messages", https://learn.microsoft.com/power-apps/developer/data-platform/
bulk-operations) gets the answer the emulator lives up to.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmsync.emulator.metadata import Catalog, metadata_id
from crmsync.emulator.storage import Storage

# Tables the bulk messages are available for (every built-in table but the intersect).
BULK_TABLES = ("account", "campaign", "contact", "lead", "list", "opportunity", "task")
CRUD_MESSAGES = ("Create", "Retrieve", "RetrieveMultiple", "Update", "Delete", "Upsert")


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter of a function or action: name, EDM type, nullable."""

    name: str
    type: str
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """A function (GET) or action (POST) of the Web API.

    ``bound_to`` is the binding parameter's type (``mscrm.lead``,
    ``Collection(mscrm.crmbaseentity)``) or empty for an unbound operation; ``tables`` lists
    the tables its sdkmessagefilter rows name (empty: one row with primary object ``none``).
    """

    name: str
    kind: str  # "Function" or "Action"
    parameters: tuple[Parameter, ...] = ()
    returns: str = ""
    bound_to: str = ""
    tables: tuple[str, ...] = ()


_TARGETS = Parameter("Targets", "Collection(mscrm.crmbaseentity)")
_ENTITY_COLLECTION = "Collection(mscrm.crmbaseentity)"

SERVED: tuple[Message, ...] = (
    Message("WhoAmI", "Function", returns="mscrm.WhoAmIResponse"),
    Message(
        "RetrieveAvailableLanguages",
        "Function",
        returns="mscrm.RetrieveAvailableLanguagesResponse",
    ),
    Message(
        "RetrieveUserPrivileges",
        "Function",
        returns="mscrm.RetrieveUserPrivilegesResponse",
        bound_to="mscrm.systemuser",
        tables=("systemuser",),
    ),
    Message(
        "RetrievePrincipalAttributePrivileges",
        "Function",
        returns="mscrm.RetrievePrincipalAttributePrivilegesResponse",
        bound_to="mscrm.systemuser",
        tables=("systemuser",),
    ),
    Message(
        "QualifyLead",
        "Action",
        (
            Parameter("CreateAccount", "Edm.Boolean"),
            Parameter("CreateContact", "Edm.Boolean"),
            Parameter("CreateOpportunity", "Edm.Boolean"),
            Parameter("OpportunityCurrencyId", "mscrm.transactioncurrency", nullable=True),
            Parameter("OpportunityCustomerId", "mscrm.crmbaseentity", nullable=True),
            Parameter("SourceCampaignId", "mscrm.crmbaseentity", nullable=True),
            Parameter("Status", "Edm.Int32"),
        ),
        returns=_ENTITY_COLLECTION,
        bound_to="mscrm.lead",
        tables=("lead",),
    ),
    Message(
        "CreateMultiple",
        "Action",
        (_TARGETS,),
        returns="mscrm.CreateMultipleResponse",
        bound_to=_ENTITY_COLLECTION,
        tables=BULK_TABLES,
    ),
    Message(
        "UpdateMultiple", "Action", (_TARGETS,), bound_to=_ENTITY_COLLECTION, tables=BULK_TABLES
    ),
    Message(
        "UpsertMultiple",
        "Action",
        (_TARGETS,),
        returns="mscrm.UpsertMultipleResponse",
        bound_to=_ENTITY_COLLECTION,
        tables=BULK_TABLES,
    ),
    Message(
        "AddMemberList",
        "Action",
        (Parameter("ListId", "Edm.Guid"), Parameter("EntityId", "Edm.Guid")),
        returns="mscrm.AddMemberListResponse",
        tables=("list",),
    ),
    Message(
        "AddListMembersList",
        "Action",
        (Parameter("ListId", "Edm.Guid"), Parameter("MemberIds", "Collection(Edm.Guid)")),
        tables=("list",),
    ),
    Message(
        "RemoveMemberList",
        "Action",
        (Parameter("ListId", "Edm.Guid"), Parameter("EntityId", "Edm.Guid")),
        tables=("list",),
    ),
)

# Complex types the responses use: name -> (property, EDM type) pairs.
RESPONSE_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "WhoAmIResponse": (
        ("BusinessUnitId", "Edm.Guid"),
        ("UserId", "Edm.Guid"),
        ("OrganizationId", "Edm.Guid"),
    ),
    "RetrieveAvailableLanguagesResponse": (
        ("LocaleIds", "Collection(Edm.Int32)"),
        ("OrganizationVersion", "Edm.String"),
    ),
    "RolePrivilege": (
        ("Depth", "Edm.String"),
        ("PrivilegeId", "Edm.Guid"),
        ("BusinessUnitId", "Edm.Guid"),
        ("PrivilegeName", "Edm.String"),
    ),
    "RetrieveUserPrivilegesResponse": (("RolePrivileges", "Collection(mscrm.RolePrivilege)"),),
    "AttributePrivilege": (
        ("AttributeId", "Edm.Guid"),
        ("CanCreate", "Edm.Int32"),
        ("CanRead", "Edm.Int32"),
        ("CanUpdate", "Edm.Int32"),
    ),
    "RetrievePrincipalAttributePrivilegesResponse": (
        ("AttributePrivileges", "Collection(mscrm.AttributePrivilege)"),
    ),
    "CreateMultipleResponse": (("Ids", "Collection(Edm.Guid)"),),
    "UpsertMultipleResponse": (("Ids", "Collection(Edm.Guid)"),),
    "AddMemberListResponse": (("Id", "Edm.Guid"),),
}


def message_names() -> list[str]:
    """Every message with an sdkmessage row: the CRUD messages and the served operations."""
    return [*CRUD_MESSAGES, *(m.name for m in SERVED)]


def _filter_tables(catalog: Catalog, message: str) -> tuple[str, ...]:
    for served in SERVED:
        if served.name == message:
            return served.tables or ("none",)
    return tuple(e.logical_name for e in catalog if not e.logical_name.startswith("sdkmessage"))


def ensure_sdk_messages(storage: Storage, acting_user: str) -> None:
    """Insert the ``sdkmessage`` and ``sdkmessagefilter`` rows that are missing.

    Ids are derived from the names, so the rows are the same on every start; called on start
    and after a custom table is created (its CRUD and bulk message filters).
    """
    catalog = storage.catalog
    messages = catalog.require("sdkmessage")
    filters = catalog.require("sdkmessagefilter")
    new_messages: list[dict[str, object]] = []
    new_filters: list[dict[str, object]] = []
    for name in message_names():
        message_id = metadata_id("sdkmessage", name)
        if not storage.exists(messages, message_id):
            new_messages.append(
                {
                    "sdkmessageid": message_id,
                    "name": name,
                    "categoryname": "Custom" if name not in CRUD_MESSAGES else name,
                    "isprivate": False,
                    "isactive": True,
                    "workflowsdkstepenabled": name in CRUD_MESSAGES,
                    "availability": 2,
                }
            )
        tables = _filter_tables(catalog, name)
        if name in ("CreateMultiple", "UpdateMultiple", "UpsertMultiple"):
            tables = tuple(t for t in (*tables, *(e.logical_name for e in catalog if e.is_custom)))
        for table in tables:
            filter_id = metadata_id("sdkmessagefilter", name, table)
            if storage.exists(filters, filter_id):
                continue
            new_filters.append(
                {
                    "sdkmessagefilterid": filter_id,
                    "name": f"{name} {table}",
                    "sdkmessageid": message_id,
                    "primaryobjecttypecode": table,
                    "secondaryobjecttypecode": "none",
                    "iscustomprocessingstepallowed": True,
                    "isvisible": True,
                    "workflowsdkstepenabled": name in CRUD_MESSAGES,
                    "availability": 2,
                }
            )
    if new_messages:
        storage.insert_many("sdkmessage", new_messages, acting_user=acting_user)
    if new_filters:
        storage.insert_many("sdkmessagefilter", new_filters, acting_user=acting_user)
