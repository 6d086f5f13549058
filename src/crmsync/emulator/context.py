"""What one Web API request carries through the data plane: who, where, with which preferences."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from crmsync.dataverse_codes import PRIVILEGE_DENIED
from crmsync.emulator.config import EmulatorConfig, EmulatorUser
from crmsync.emulator.errors import forbidden
from crmsync.emulator.metadata import Catalog, EntityDef
from crmsync.emulator.odata import Preferences
from crmsync.emulator.storage import Storage

_VERBS = {
    "create": "Create",
    "read": "Read",
    "write": "Write",
    "delete": "Delete",
    "append": "Append",
    "appendto": "AppendTo",
}


class RuntimeView(Protocol):
    """The part of the control plane's runtime the data plane reads."""

    delta_epoch: int

    def clock(self) -> datetime:
        """Now, aware UTC."""
        ...

    def current_user(self, user: EmulatorUser) -> EmulatorUser:
        """``user`` with the privileges it holds now (changed through the admin API)."""
        ...


@dataclass(slots=True)
class RequestContext:
    """One request: storage, definitions, acting user, base URL, Prefer and headers.

    ``base_url`` is the service root as the client addressed it (``https://host/api/data/v9.2``);
    ``headers`` has lower-case names; ``content_ids`` maps ``$n`` references inside a batch
    change set to entity paths (``leads(<id>)``).
    """

    storage: Storage
    catalog: Catalog
    config: EmulatorConfig
    runtime: RuntimeView
    user: EmulatorUser
    base_url: str
    prefs: Preferences
    headers: Mapping[str, str]
    content_ids: dict[str, str] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        """The acting user's systemuserid (lower case)."""
        return self.user.systemuserid.lower()

    def header(self, name: str) -> str | None:
        """A request header by lower-case name."""
        return self.headers.get(name)

    def require(self, entity: EntityDef, privilege: str) -> None:
        """Raise the documented 403 PrivilegeDenied when the user lacks ``privilege``."""
        if self.user.can(entity.logical_name, privilege):
            return
        name = f"prv{_VERBS[privilege]}{entity.schema_name}"
        raise forbidden(
            PRIVILEGE_DENIED,
            f"Principal user (Id={self.user_id}, type=8, roleCount=1, privilegeCount=0, "
            f"accessMode=0), is missing {name} privilege on OTC={entity.object_type_code} "
            f"for entity '{entity.logical_name}'. context.Caller={self.user_id}",
        )

    def can_read_column(self, entity: str, attribute: str) -> bool:
        """Field security: False when the column is secured and the user has no read access."""
        if not self.config.is_secured(entity, attribute):
            return True
        return (entity, attribute) in self.user.readable_secured

    def can_write_column(self, entity: str, attribute: str) -> bool:
        """Field security: False when the column is secured and the user may not update it."""
        if not self.config.is_secured(entity, attribute):
            return True
        return (entity, attribute) in self.user.updatable_secured


def privilege_name(entity: EntityDef, privilege: str) -> str:
    """``prvReadLead`` style privilege names (spec §9)."""
    return f"prv{_VERBS[privilege]}{entity.schema_name}"


@dataclass(slots=True)
class ApiResponse:
    """A data-plane answer before it becomes an HTTP (or batch part) response."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    entity_ref: str | None = None  # "leads(<id>)" of a row a write touched ($batch Content-ID)

    def header(self, name: str) -> str | None:
        """First header value by name (case-insensitive)."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


JSON_TYPE = "application/json; odata.metadata=minimal"


def json_response(
    status: int, payload: object, headers: list[tuple[str, str]] | None = None
) -> ApiResponse:
    """A JSON answer with the OData headers Dataverse sends."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return ApiResponse(
        status,
        [("Content-Type", JSON_TYPE), ("OData-Version", "4.0"), *(headers or [])],
        body,
    )


def action_response(ctx: RequestContext, action: str, values: Mapping[str, object]) -> ApiResponse:
    """200 with the ``<action>Response`` complex type a Dataverse action or function answers."""
    return json_response(
        200,
        {
            "@odata.context": f"{ctx.base_url}/$metadata#Microsoft.Dynamics.CRM.{action}Response",
            **values,
        },
    )


def empty_response(status: int = 204, headers: list[tuple[str, str]] | None = None) -> ApiResponse:
    """A bodiless answer (204 No Content, 304 Not Modified)."""
    return ApiResponse(status, [("OData-Version", "4.0"), *(headers or [])])
