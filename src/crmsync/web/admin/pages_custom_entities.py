"""Custom entities (B45): the Dynamics tables linked to leads, contacts or accounts that can be
read one way into the marketing database. The list shows the enabled ones with their reading
and records, and (read from Dynamics now) the tables that can be enabled, each on its nearest
path; the detail page shows an entity's path, fields and latest records. Thin pages over
:mod:`crmsync.sync.custom_entities`; every change is audited there."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from crmsync.errors import CrmsyncError, InputError, RecordNotFoundError
from crmsync.sync.custom_entities import (
    DEFAULT_SYSTEM_FIELDS,
    CustomEntity,
    CustomEntityChoice,
    discover,
    enable,
    entity_status,
    load_entity,
    recent_records,
    stored_entities,
    switch,
)
from crmsync.web.admin.context import ADMIN, AdminContext
from crmsync.web.admin.queries import person_labels

router = APIRouter()
PAGE = f"{ADMIN}/custom-entities"


def _available(ctx: AdminContext) -> tuple[list[CustomEntityChoice], str | None]:
    """The tables that can be enabled, read from Dynamics now, or none and why not."""
    try:
        with ctx.open_dynamics() as client, ctx.engine.connect() as conn:
            return discover(client, conn), None
    except CrmsyncError as exc:
        return [], exc.message


@router.get("/custom-entities")
async def custom_entities_page(request: Request) -> Response:
    """The enabled custom entities, and the tables that can be enabled."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    with ctx.engine.connect() as conn:
        statuses = [entity_status(conn, e) for e in stored_entities(conn)]
    available, problem = _available(ctx)
    stored = {s.entity.name for s in statuses}
    return ctx.render(
        request,
        "admin/custom_entities.html",
        session,
        statuses=statuses,
        available=[c for c in available if c.name not in stored],
        problem=problem,
    )


@router.post("/custom-entities/enable")
async def enable_entity(request: Request) -> Response:
    """Enable a table as a custom entity (its own columns by default); the next sync cycle
    loads it."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    name = str(form.get("name") or "").strip()
    fields = [str(f) for f in form.getlist("field") if str(f).strip()]
    try:
        with ctx.open_dynamics() as client:
            entity = enable(ctx.engine, client, name, fields or None, actor=session.user.email)
    except InputError:
        raise
    except CrmsyncError as exc:
        return ctx.render(
            request,
            "admin/message.html",
            session,
            status_code=400,
            title="There is a problem",
            message=exc.message,
        )
    return ctx.redirect(
        f"{PAGE}/{entity.name}",
        notice=f"{entity.name} enabled: the next sync cycle loads its records.",
    )


SHOWN_FIELDS = 3
"""How many fields of a record the records table shows in columns (the rest open below)."""


@dataclass(frozen=True, slots=True)
class RecordColumns:
    """How the records table lays out an entity's fields: a few in columns (its own columns
    first; the lookup to its parent and the system columns after them), the rest in a row
    that opens below each record, and which of them hold times (shown as the other pages
    show times)."""

    shown: tuple[str, ...]
    more: tuple[str, ...]
    times: frozenset[str]

    @classmethod
    def of(cls, entity: CustomEntity) -> RecordColumns:
        """The layout of ``entity``'s records."""
        later = {entity.path.hops[0].attribute, *DEFAULT_SYSTEM_FIELDS}
        ordered = sorted(entity.fields, key=lambda name: name in later)  # stable: kept order
        times = frozenset(
            str(info["name"]) for info in entity.field_info if info.get("dataType") == "datetime"
        )
        return cls(tuple(ordered[:SHOWN_FIELDS]), tuple(ordered[SHOWN_FIELDS:]), times)


@router.get("/custom-entities/{name}")
async def custom_entity_page(request: Request, name: str) -> Response:
    """One custom entity: its path, fields, reading and latest records."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    with ctx.engine.connect() as conn:
        entity = load_entity(conn, name)
        if entity is None:
            raise RecordNotFoundError(f"No custom entity called {name!r}.")
        status = entity_status(conn, entity)
        records = recent_records(conn, entity, 50)
        people = person_labels(conn, [r["person_id"] for r in records if r["person_id"]])
    return ctx.render(
        request,
        "admin/custom_entity.html",
        session,
        status=status,
        records=records,
        people=people,
        columns=RecordColumns.of(entity),
    )


@router.post("/custom-entities/{name}/enabled")
async def switch_entity(request: Request, name: str) -> Response:
    """Disable a custom entity (its records stay) or enable it again."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    wanted = form.get("enabled") == "true"
    entity = switch(ctx.engine, name, wanted, actor=session.user.email)
    said = "enabled again: reading continues" if wanted else "disabled: its records stay"
    return ctx.redirect(f"{PAGE}/{entity.name}", notice=f"{entity.name} {said}.")
