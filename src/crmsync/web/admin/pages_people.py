"""People: search, and a person's page with every field, its company, its sync state and its
activity log (Change Data Value with old and new values, collisions with both values and the
winner, sync failures with Dynamics' code and message)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from crmsync.errors import InvalidValueError, RecordNotFoundError
from crmsync.marketing.activity_types import CHANGE_DATA_VALUE, SYNC_COLLISION, SYNC_ERROR
from crmsync.web.admin.context import AdminContext
from crmsync.web.admin.queries import (
    ACTIVITY_TYPE_NAMES,
    PAGE_SIZE,
    person_activities,
    person_detail,
    search_people,
)

router = APIRouter()


def optional_id(raw: str | None, what: str) -> int | None:
    """A positive id from the query string, None when absent."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise InvalidValueError(f"{what} must be a positive whole number.")
    return int(raw)


@router.get("/people")
async def people(request: Request) -> Response:
    """Search persons by name, e-mail, company, id or Dynamics id; newest first, paged."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    text = request.query_params.get("q", "")
    before = optional_id(request.query_params.get("before"), "before")
    with ctx.engine.connect() as conn:
        rows = search_people(conn, text, before=before)
    return ctx.render(
        request,
        "admin/people.html",
        session,
        rows=rows,
        search=text,
        next_before=rows[-1]["id"] if len(rows) == PAGE_SIZE else None,
    )


@router.get("/people/{person_id}")
async def person(request: Request, person_id: str) -> Response:
    """One person: fields, company fields, CRM type / deleted / created, errors, activities."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    wanted = optional_id(person_id, "The person id")
    before = optional_id(request.query_params.get("before"), "before")
    type_id = optional_id(request.query_params.get("type"), "The activity type")
    with ctx.engine.connect() as conn:
        detail = person_detail(conn, wanted) if wanted is not None else None
        if detail is None:
            raise RecordNotFoundError(f"There is no person {person_id}.")
        log = person_activities(conn, detail.person["id"], before=before, type_id=type_id)
    return ctx.render(
        request,
        "admin/person.html",
        session,
        detail=detail,
        p=detail.person,
        activities=log,
        next_before=log[-1]["id"] if len(log) == PAGE_SIZE else None,
        CHANGE_DATA_VALUE=CHANGE_DATA_VALUE,
        SYNC_COLLISION=SYNC_COLLISION,
        SYNC_ERROR=SYNC_ERROR,
        dynamics_link=dynamics_record_url(ctx.org_url(), detail.person),
        activity_types=ACTIVITY_TYPE_NAMES,
        type_id=type_id,
    )


def dynamics_record_url(org_url: str, person: dict[str, object]) -> str | None:
    """The person's lead or contact in the Dynamics web client, when it has one."""
    for entity, key in (("lead", "crmLeadId"), ("contact", "crmContactId")):
        record = person.get(key)
        if org_url and record and not person.get("crmIsDeleted"):
            query = urlencode({"etn": entity, "id": str(record), "pagetype": "entityrecord"})
            return f"{org_url}/main.aspx?{query}"
    return None
