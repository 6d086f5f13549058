"""The admin API's Fields and Setup endpoints: what the Fields and Setup pages do, through the
same services (:func:`crmsync.sync.selection.save_selection`,
:func:`crmsync.web.admin.pages_setup.change_connection`), with the same checks.

When Dynamics cannot be read, the Fields endpoints answer 503 with the reason. The connection
is answered without its secrets: only whether one is set.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crmsync.errors import CrmsyncError, InputError
from crmsync.sync.connection import ConnectionChange, is_saved
from crmsync.sync.policy import NEVER_BLANK, SyncRule
from crmsync.sync.selection import ColumnInfo, save_selection
from crmsync.web.admin.api import Caller, Changer, ErrorBody
from crmsync.web.admin.context import AdminContext
from crmsync.web.admin.pages_fields import read_columns
from crmsync.web.admin.pages_setup import CheckLine, change_connection, run_checklist

SyncedTable = Literal["systemuser", "team", "account", "lead", "contact", "opportunity"]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_]+$")]
Text = Annotated[str, Field(max_length=2000)]


class ColumnOut(BaseModel):
    """A Dynamics column: what it is, whether and how it syncs."""

    attribute: str
    display_name: str
    type: str
    max_length: int | None
    required_level: str
    can_sync: bool
    state: Literal["synced", "quick_sync_queued", "missing", "not_synced", "cannot_sync"]
    marketing_field: str | None
    sync_rule: str | None
    never_blank: bool


class ColumnAdd(BaseModel):
    """A column to start syncing, onto an existing marketing field or a new one to match."""

    model_config = ConfigDict(extra="forbid")
    column: Name
    marketing_field: Name | None = None


class ColumnRule(BaseModel):
    """Which side owns a selected column, and whether a blank value may overwrite."""

    model_config = ConfigDict(extra="forbid")
    rule: SyncRule = SyncRule.ENTITY_DEFAULT
    never_blank: bool = False


class SelectionChange(BaseModel):
    """Changes to a table's selection; saving with none reads the schema again."""

    model_config = ConfigDict(extra="forbid")
    add: list[ColumnAdd] = Field(default_factory=list, max_length=500)
    remove: list[Name] = Field(default_factory=list, max_length=500)
    rules: dict[Name, ColumnRule] = Field(default_factory=dict, max_length=500)


class SelectionSaved(BaseModel):
    """What saving changed."""

    entity: str
    added: list[str]
    removed: list[str]
    rules_changed: list[str]
    quick_sync: bool


class ConnectionOut(BaseModel):
    """The Dynamics connection in effect, secrets reduced to whether they are set."""

    url: str
    tenant: str
    authority: str
    auth_mode: str
    client_id: str
    client_secret_set: bool
    saved_by_admin: bool
    secret_problem: str | None = Field(
        None, description="Why the saved client secret cannot be decrypted, and what to do."
    )


class ConnectionIn(BaseModel):
    """A new connection; an empty ``client_secret`` keeps the secret in use."""

    model_config = ConfigDict(extra="forbid")
    url: Text
    tenant: Text = ""
    auth_mode: Literal["client_credentials", "password", "adfs"]
    client_id: Text
    client_secret: Text = ""


class CheckOut(BaseModel):
    """One line of the Validate checklist, with what to do when it failed."""

    name: str
    ok: bool
    finding: str
    fix: str


class ChecklistOut(BaseModel):
    """The Validate checklist."""

    passed: int
    failed: int
    checks: list[CheckOut]


class ConnectionSaved(ChecklistOut):
    """A connection change: saved or not, why, and the checklist it went through."""

    saved: bool
    message: str
    changed: list[str]


def _state(column: ColumnInfo) -> str:
    if column.status == "missing":
        return "missing"
    if column.status == "quick_sync":
        return "quick_sync_queued"
    if column.status is not None:
        return "synced"
    return "not_synced" if column.can_sync else "cannot_sync"


def _column_out(column: ColumnInfo) -> dict[str, Any]:
    return {
        "attribute": column.attribute,
        "display_name": column.display_name,
        "type": column.type,
        "max_length": column.max_length,
        "required_level": column.required_level,
        "can_sync": column.can_sync,
        "state": _state(column),
        "marketing_field": column.marketing_field,
        "sync_rule": column.sync_rule,
        "never_blank": column.never_blank,
    }


def _checklist(lines: list[CheckLine]) -> dict[str, Any]:
    passed = sum(1 for line in lines if line.ok)
    return {
        "passed": passed,
        "failed": len(lines) - passed,
        "checks": [{"name": x.name, "ok": x.ok, "finding": x.finding, "fix": x.fix} for x in lines],
    }


def _unavailable(reason: str) -> JSONResponse:
    message = f"Dynamics could not be read: {reason}"
    return JSONResponse({"error": {"code": "dynamics_unavailable", "message": message}}, 503)


_UNAVAILABLE: dict[int | str, dict[str, Any]] = {503: {"model": ErrorBody}}


def add_setup_routes(api: FastAPI) -> None:
    """Add the Fields and Setup endpoints to the admin API (the context is the API's own,
    ``api.state.admin``)."""

    @api.get("/fields/{entity}", response_model=list[ColumnOut], responses=_UNAVAILABLE)
    def list_columns(entity: Annotated[SyncedTable, Path()], user: Caller, request: Request) -> Any:
        """The table's columns the sync user can see, with type, state, field and rule."""
        columns, problem = read_columns(AdminContext.of(request), entity)
        if problem is not None:
            return _unavailable(problem)
        return [_column_out(c) for c in columns]

    @api.put("/fields/{entity}", response_model=SelectionSaved, responses=_UNAVAILABLE)
    def save_columns(
        entity: Annotated[SyncedTable, Path()],
        body: SelectionChange,
        user: Changer,
        request: Request,
    ) -> Any:
        """Save the table's selection (B8–B14, B46): the schema is read again, added columns
        are filled by a quick sync, and every change is audited."""
        ctx = AdminContext.of(request)
        add = [
            f"{a.column}={a.marketing_field}" if a.marketing_field else a.column for a in body.add
        ]
        rules = {
            name: rule.rule.value + (f",{NEVER_BLANK}" if rule.never_blank else "")
            for name, rule in body.rules.items()
        }
        try:
            with ctx.open_dynamics() as client, ctx.engine.begin() as conn:
                saved = save_selection(
                    conn,
                    client,
                    entity,
                    add=add,
                    remove=body.remove,
                    rules=rules,
                    actor=user.email,
                )
        except InputError:
            raise
        except CrmsyncError as exc:
            return _unavailable(str(exc))
        return {
            "entity": saved.entity,
            "added": list(saved.added),
            "removed": list(saved.removed),
            "rules_changed": list(saved.rules_changed),
            "quick_sync": saved.quick_sync,
        }

    @api.get("/setup/connection", response_model=ConnectionOut)
    def get_connection(user: Caller, request: Request) -> dict[str, Any]:
        """The Dynamics connection in effect (never its secrets)."""
        ctx = AdminContext.of(request)
        current, secret_problem = ctx.connection_shown()
        return {
            "url": current.url,
            "tenant": current.tenant,
            "authority": current.authority,
            "auth_mode": current.auth_mode,
            "client_id": current.client_id,
            "client_secret_set": bool(current.client_secret),
            "saved_by_admin": is_saved(ctx.engine),
            "secret_problem": secret_problem,
        }

    @api.put(
        "/setup/connection",
        response_model=ConnectionSaved,
        responses={409: {"model": ConnectionSaved}},
    )
    def put_connection(body: ConnectionIn, user: Changer, request: Request) -> Response | Any:
        """Change the connection: checked against the new org first and saved (audited) only
        when it connects (409 with the checklist when not); the sync uses it from its next
        cycle."""
        change = ConnectionChange.checked(
            body.url, body.tenant, body.auth_mode, body.client_id, body.client_secret
        )
        outcome = change_connection(AdminContext.of(request), change, user.email)
        answer = {
            **_checklist(outcome.lines),
            "saved": outcome.saved,
            "message": outcome.message,
            "changed": outcome.changed,
        }
        return answer if outcome.saved else JSONResponse(answer, status_code=409)

    @api.post("/setup/validate", response_model=ChecklistOut)
    def validate(user: Caller, request: Request) -> dict[str, Any]:
        """Run the Validate checklist against the connection in effect (changes nothing)."""
        return _checklist(run_checklist(AdminContext.of(request)))
