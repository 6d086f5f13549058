"""Fields (B8–B14, B46): per Dynamics table, the columns the sync user can read, with display
name, logical name, type, length and required level; whether each is selected, the marketing
field it maps to, its sync rule and "never blank", and its state (synced, quick sync queued
or running with its progress, missing in Dynamics, type changed in Dynamics), and the table's
recent quick syncs with records done of the total, rate and time left. Saving calls
:func:`crmsync.sync.selection.save_selection`, which reads the schema again and audits.
Nothing here creates a field in Dynamics (B10)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from crmsync.errors import CrmsyncError, InputError, InvalidValueError
from crmsync.store.tables import now_utc
from crmsync.sync.cycle import DEFAULT_ENTITIES
from crmsync.sync.policy import NEVER_BLANK, SyncRule
from crmsync.sync.quick_sync_jobs import load_jobs
from crmsync.sync.schema_drift import DROPPED_STATUSES
from crmsync.sync.selection import ColumnInfo, SavedSelection, columns_of, save_selection
from crmsync.web.admin.context import ADMIN, AdminContext

router = APIRouter()

RULES = tuple((rule.value, rule.description) for rule in SyncRule)


def _entity(raw: str | None) -> str:
    entity = (raw or "lead").strip().lower()
    if entity not in DEFAULT_ENTITIES:
        raise InvalidValueError(f"Choose one of the synced tables: {', '.join(DEFAULT_ENTITIES)}.")
    return entity


def read_columns(ctx: AdminContext, entity: str) -> tuple[list[ColumnInfo], str | None]:
    """The table's columns read from Dynamics now, or none and why Dynamics could not say."""
    try:
        with ctx.open_dynamics() as client, ctx.engine.connect() as conn:
            return columns_of(conn, client, entity), None
    except InputError:
        raise
    except CrmsyncError as exc:
        return [], str(exc)


def _rule_text(column: ColumnInfo) -> str:
    if column.sync_rule is None:
        return ""
    return column.sync_rule + (f",{NEVER_BLANK}" if column.never_blank else "")


def selection_changes(
    columns: list[ColumnInfo], form: FormData
) -> tuple[list[str], list[str], dict[str, str]]:
    """What the posted form changes: columns to add (``COL`` or ``COL=FIELD``), columns to
    remove, and the new rule of each kept column whose rule changed."""
    ticked = {str(v) for v in form.getlist("column")}
    known = {c.attribute: c for c in columns}
    unknown = sorted(ticked - set(known))
    if unknown:
        raise InvalidValueError(f"Dynamics has no column {', '.join(unknown)} in this table.")
    add: list[str] = []
    remove: list[str] = []
    rules: dict[str, str] = {}
    for column in columns:
        name = column.attribute
        selected = column.status is not None and column.status not in DROPPED_STATUSES
        if name in ticked and not selected:
            target = str(form.get(f"field-{name}") or "").strip()
            add.append(f"{name}={target}" if target else name)
        elif name not in ticked and selected and column.status != "quick_sync":
            remove.append(name)
        if name in ticked:
            rule = str(form.get(f"rule-{name}") or SyncRule.ENTITY_DEFAULT.value)
            wanted = rule + (f",{NEVER_BLANK}" if form.get(f"blank-{name}") == "on" else "")
            if wanted != (_rule_text(column) or SyncRule.ENTITY_DEFAULT.value):
                rules[name] = wanted
    return add, remove, rules


def _saved_notice(saved: SavedSelection) -> str:
    parts = []
    if saved.added:
        parts.append(f"{len(saved.added)} added")
    if saved.removed:
        parts.append(f"{len(saved.removed)} removed")
    if saved.rules_changed:
        parts.append(f"{len(saved.rules_changed)} rule(s) changed")
    summary = ", ".join(parts) or "no change; the schema was read again"
    quick = " Added columns are filled from Dynamics by a quick sync." if saved.quick_sync else ""
    return f"Selection of {saved.entity} saved: {summary}.{quick}"


@router.get("/fields")
async def fields_page(request: Request) -> Response:
    """The columns of one Dynamics table and how each syncs."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    entity = _entity(request.query_params.get("entity"))
    columns, problem = read_columns(ctx, entity)
    return _render(request, ctx, session, entity, columns, problem, None)


def _render(
    request: Request,
    ctx: AdminContext,
    session: Any,
    entity: str,
    columns: list[ColumnInfo],
    problem: str | None,
    error: str | None,
) -> Response:
    shown = request.query_params.get("show", "readable")
    listed = [c for c in columns if shown == "all" or c.can_sync or c.status is not None]
    with ctx.engine.connect() as conn:
        jobs = [job.as_dict(now_utc()) for job in load_jobs(conn, entity=entity, limit=5)]
    running = {f: job for job in reversed(jobs) if job["state"] == "running" for f in job["fields"]}
    return ctx.render(
        request,
        "admin/fields.html",
        session,
        status_code=400 if error else 200,
        entity=entity,
        entities=DEFAULT_ENTITIES,
        columns=listed,
        hidden_count=len(columns) - len(listed),
        selected_count=sum(1 for c in columns if c.status not in (None, "missing")),
        problem=problem,
        error=error,
        rules=RULES,
        show=shown,
        jobs=jobs,
        running=running,
        active=any(job["state"] in ("queued", "running") for job in jobs),
    )


@router.post("/fields")
async def save_fields(request: Request) -> Response:
    """Save the table's selection; refused choices come back with the reason."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    entity = _entity(str(form.get("entity") or ""))
    columns, problem = read_columns(ctx, entity)
    if problem is not None:
        return _render(request, ctx, session, entity, columns, problem, None)
    try:
        add, remove, rules = selection_changes(columns, form)
        with ctx.open_dynamics() as client, ctx.engine.begin() as conn:
            saved = save_selection(
                conn, client, entity, add=add, remove=remove, rules=rules, actor=session.user.email
            )
    except InputError as exc:
        return _render(request, ctx, session, entity, columns, None, str(exc))
    return ctx.redirect(f"{ADMIN}/fields?entity={entity}", notice=_saved_notice(saved))
