"""Companies, opportunities and sales users: records Dynamics owns, synced one way. Read-only
lists (search, paged) and detail pages that link companies, their people and opportunities,
and the sales users who own them."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from crmsync.errors import RecordNotFoundError
from crmsync.web.admin.context import ADMIN, AdminContext
from crmsync.web.admin.pages_people import optional_id
from crmsync.web.admin.queries import PAGE_SIZE
from crmsync.web.admin.records import KINDS, RecordKind, record_detail, search_records

router = APIRouter()


def _kind(request: Request) -> RecordKind:
    """The kind whose list or record the request's path names."""
    return KINDS[request.url.path.removeprefix(ADMIN + "/").split("/", 1)[0]]


def dynamics_url(org_url: str, entity: str, crm_id: object) -> str | None:
    """The record in the Dynamics web client."""
    if not org_url or not crm_id:
        return None
    query = urlencode({"etn": entity, "id": str(crm_id), "pagetype": "entityrecord"})
    return f"{org_url}/main.aspx?{query}"


async def record_list(request: Request) -> Response:
    """A page of records of one kind, newest first, optionally searched."""
    kind = _kind(request)
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    text = request.query_params.get("q", "")
    before = optional_id(request.query_params.get("before"), "before")
    with ctx.engine.connect() as conn:
        rows = search_records(conn, kind, text, before=before)
    return ctx.render(
        request,
        "admin/records.html",
        session,
        kind=kind,
        rows=rows,
        search=text,
        next_before=rows[-1]["id"] if len(rows) == PAGE_SIZE else None,
    )


async def record_page(request: Request, record_id: str) -> Response:
    """One record: every field, the records linked to it, and a link into Dynamics."""
    kind = _kind(request)
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    wanted = optional_id(record_id, f"The {kind.singular} id")
    with ctx.engine.connect() as conn:
        detail = record_detail(conn, kind, wanted) if wanted is not None else None
    if detail is None:
        raise RecordNotFoundError(f"There is no {kind.singular} {record_id}.")
    return ctx.render(
        request,
        "admin/record.html",
        session,
        kind=kind,
        detail=detail,
        name=kind.name_of(detail.record),
        dynamics_link=None
        if detail.record.get("crmIsDeleted")
        else dynamics_url(ctx.org_url(), kind.dynamics_entity, detail.record.get(kind.crm_id)),
    )


for _path in KINDS:  # one list and one detail route per kind, no catch-all
    router.add_api_route(f"/{_path}", record_list, methods=["GET"])
    router.add_api_route(f"/{_path}/{{record_id}}", record_page, methods=["GET"])
