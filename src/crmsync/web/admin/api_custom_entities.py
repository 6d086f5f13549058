"""The admin API's custom-entity endpoints, ``/api/admin/v1/custom-entities...`` (B45): what
the custom-entity pages show, as JSON, enabling a table (audited), and switching a stored entity
on or off (audited).

Enabling a table (``POST /custom-entities``) reads Dynamics (its path and columns) through the
same service as the Custom entities page and ``crmsync entities enable``; when Dynamics cannot
be read it answers 503 with the reason. The other endpoints use only what is stored, so they
answer even while Dynamics cannot be reached.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crmsync.errors import ConfigurationError, CrmsyncError, InputError, RecordNotFoundError
from crmsync.sync.custom_entities import (
    CustomEntityStatus,
    enable,
    entity_status,
    load_entity,
    recent_records,
    stored_entities,
    switch,
)
from crmsync.web.admin.api import Caller, Changer, ErrorBody
from crmsync.web.admin.context import AdminContext

EntityName = Annotated[str, Path(min_length=1, max_length=128)]
LogicalName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_]+$")]


class CustomEntityOut(BaseModel):
    """A custom entity: enabled or not, how its records link, its reading, its records."""

    name: str
    display_name: str
    enabled: bool
    linked_to: str
    path: str
    fields: list[str]
    phase: str
    records: int
    linked: int
    deleted: int
    loaded_at: datetime | None


class CustomRecordOut(BaseModel):
    """One record read from Dynamics."""

    crm_id: str
    person_id: int | None
    company_id: int | None
    values: dict[str, Any]
    deleted: bool
    updated_at: datetime


class CustomEntityDetailOut(CustomEntityOut):
    """A custom entity with its most recently changed records."""

    recent: list[CustomRecordOut]


class CustomEntityEnable(BaseModel):
    """A Dynamics table to enable as a custom entity, with the columns to read."""

    model_config = ConfigDict(extra="forbid")
    name: LogicalName
    fields: list[LogicalName] = Field(
        default_factory=list,
        max_length=500,
        description="Columns to read; empty: the table's name, its own columns, state and dates. "
        "The lookups of its path are always read.",
    )


class CustomEntitySwitch(BaseModel):
    """Whether the entity is read in each sync cycle."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool


def _out(status: CustomEntityStatus) -> dict[str, Any]:
    entity = status.entity
    return {
        "name": entity.name,
        "display_name": entity.display_name,
        "enabled": entity.enabled,
        "linked_to": entity.path.root,
        "path": entity.path.describe(),
        "fields": list(entity.fields),
        "phase": status.phase,
        "records": status.records,
        "linked": status.linked,
        "deleted": status.deleted,
        "loaded_at": entity.loaded_at,
    }


def _refused(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


_ENABLE_ANSWERS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Change tracking is off for the table."},
    503: {"model": ErrorBody, "description": "Dynamics could not be read."},
}


def add_custom_entity_routes(api: FastAPI, ctx: AdminContext) -> None:
    """Add the custom-entity endpoints to the admin API."""

    @api.get("/custom-entities", response_model=list[CustomEntityOut])
    def list_custom_entities(user: Caller) -> list[dict[str, Any]]:
        """Every custom entity ever enabled, with its reading and record counts."""
        with ctx.engine.connect() as conn:
            return [_out(entity_status(conn, e)) for e in stored_entities(conn)]

    @api.post(
        "/custom-entities",
        response_model=CustomEntityOut,
        status_code=201,
        responses=_ENABLE_ANSWERS,
    )
    def enable_custom_entity(
        body: CustomEntityEnable, user: Changer, request: Request
    ) -> Response | Any:
        """Enable a Dynamics table as a custom entity with its fields (audited); the next sync
        cycle loads its records. Enabling one that is enabled already changes its fields."""
        current = AdminContext.of(request)  # the connection in effect now
        try:
            with current.open_dynamics() as client:
                try:
                    entity = enable(
                        ctx.engine, client, body.name, body.fields or None, actor=user.email
                    )
                except ConfigurationError as exc:
                    return _refused(409, "change_tracking_off", exc.message)
        except InputError:
            raise
        except CrmsyncError as exc:
            return _refused(503, "dynamics_unavailable", f"Dynamics could not be read: {exc}")
        with ctx.engine.connect() as conn:
            return _out(entity_status(conn, entity))

    @api.get("/custom-entities/{name}", response_model=CustomEntityDetailOut)
    def get_custom_entity(
        name: EntityName,
        user: Caller,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """One custom entity with its most recently changed records."""
        with ctx.engine.connect() as conn:
            entity = load_entity(conn, name)
            if entity is None:
                raise RecordNotFoundError(f"No custom entity called {name!r}.")
            return {
                **_out(entity_status(conn, entity)),
                "recent": recent_records(conn, entity, limit),
            }

    @api.put("/custom-entities/{name}/enabled", response_model=CustomEntitySwitch)
    def switch_custom_entity(
        name: EntityName, body: CustomEntitySwitch, user: Changer
    ) -> dict[str, bool]:
        """Disable a custom entity (its records stay) or enable it again (audited)."""
        entity = switch(ctx.engine, name, body.enabled, actor=user.email)
        return {"enabled": entity.enabled}
