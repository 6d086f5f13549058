"""The overview (B40, B44) and the sync errors (B37–B39) pages."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from crmsync.errors import InvalidValueError
from crmsync.store.audit import record_audit
from crmsync.sync.admin_retry import retry_errors
from crmsync.sync.failures import ErrorPosition, count_open_errors, open_errors
from crmsync.sync.runner import set_enabled
from crmsync.sync.status import read_status
from crmsync.web.admin.chart import build_chart, hourly_buckets
from crmsync.web.admin.context import ADMIN, AdminContext
from crmsync.web.admin.queries import (
    API_LIMIT_PER_5_MINUTES,
    PAGE_SIZE,
    error_counts_by_entity,
    error_kinds,
    last_cycle,
    person_labels,
    requests_last_5_minutes,
    unread_notifications,
)

router = APIRouter()

MAX_PAGE = 1_000_000  # far past any real list, and an offset every database takes

ERROR_CSV_COLUMNS = (
    "id",
    "entity",
    "direction",
    "operation",
    "person_id",
    "name",
    "email",
    "crm_id",
    "error_code",
    "message",
    "attempts",
    "first_seen",
    "last_seen",
)


def overview_values(ctx: AdminContext) -> dict[str, Any]:
    """What the overview shows (the admin API's status answer has the same)."""
    status = read_status(ctx.engine)
    with ctx.engine.connect() as conn:
        cycle = last_cycle(conn)
        requests = requests_last_5_minutes(conn)
        critical = unread_notifications(conn, severity="critical")
        chart = build_chart(hourly_buckets(conn))
    return {
        "chart": chart,
        "status": status,
        "cycle": cycle,
        "requests_5min": requests,
        "request_limit": API_LIMIT_PER_5_MINUTES,
        "request_share": round(100 * requests / API_LIMIT_PER_5_MINUTES),
        "unread_critical": critical,
    }


@router.get("/")
async def overview(request: Request) -> Response:
    """The landing page: sync on/off, last cycle, backlog, throughput, API use."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    return ctx.render(
        request,
        "admin/overview.html",
        session,
        **overview_values(ctx),
    )


@router.post("/sync")
async def switch_sync(request: Request) -> Response:
    """Enable or disable the background sync (B44), audited with the user's e-mail."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    wanted = form.get("enabled")
    if wanted not in {"true", "false"}:
        raise InvalidValueError("Choose whether the sync is on or off.")
    set_enabled(ctx.engine, wanted == "true", actor=session.user.email)
    notice = "Sync is on." if wanted == "true" else "Sync is off; changes wait and nothing is lost."
    return ctx.redirect(f"{ADMIN}/", notice=notice)


def error_rows(
    ctx: AdminContext,
    entity: str | None,
    search: str | None,
    *,
    limit: int | None = None,
    offset: int = 0,
    after: ErrorPosition | None = None,
    before: ErrorPosition | None = None,
    oldest: bool = False,
) -> list[dict[str, Any]]:
    """Open sync errors (B39) with the name and e-mail of each person concerned; ``limit``
    pages them in the database, from ``offset`` or (keyset) ``after``/``before`` a position
    or the ``oldest`` (:func:`crmsync.sync.failures.open_errors`)."""
    with ctx.engine.connect() as conn:
        rows = open_errors(
            conn,
            entity=entity or None,
            search=search or None,
            limit=limit,
            offset=offset,
            after=after,
            before=before,
            oldest=oldest,
        )
        people = person_labels(
            conn, [r["local_id"] for r in rows if r["local_kind"] == "person" and r["local_id"]]
        )
    for row in rows:
        label = people.get(row["local_id"]) if row["local_kind"] == "person" else None
        row["person_id"] = row["local_id"] if label else None
        row["name"] = label["name"] if label else ""
        row["email"] = label["email"] if label else ""
    return rows


def _page_number(raw: object) -> int:
    try:
        number = int(str(raw or "1"))
    except ValueError:
        raise InvalidValueError("The page number must be a whole number.") from None
    if not 1 <= number <= MAX_PAGE:
        raise InvalidValueError(f"The page number must be between 1 and {MAX_PAGE:,}.")
    return number


def _position(raw: str | None) -> ErrorPosition | None:
    return ErrorPosition.parse(raw) if raw else None


@router.get("/errors")
async def errors_page(request: Request) -> Response:
    """Open sync errors: filter by entity, search, page; retry one or all; CSV export.

    The page's links page by keyset: "Next" reads the rows after the last one shown, through
    the index, "Previous" those before the first, "Last" the oldest; ``page`` only numbers
    them. A typed ``page`` without a position is still counted off from the top."""
    ctx = AdminContext.of(request)
    session = ctx.signed_in(request)
    params = request.query_params
    entity = params.get("entity", "")
    search = params.get("q", "")
    page = _page_number(params.get("page"))
    after, before = _position(params.get("after")), _position(params.get("before"))
    last = params.get("last") == "1"
    with ctx.engine.connect() as conn:
        total = count_open_errors(conn, entity=entity or None, search=search or None)
        entities = error_counts_by_entity(conn)
        kinds = error_kinds(conn)
    pages = max(1, -(-total // PAGE_SIZE))
    if last:  # the last page holds what is left after the full pages before it
        page = pages
        size = total - (pages - 1) * PAGE_SIZE or PAGE_SIZE
        rows = error_rows(ctx, entity, search, limit=size, oldest=True)
    elif after is not None or before is not None:
        page = min(page, pages)
        rows = error_rows(ctx, entity, search, limit=PAGE_SIZE, after=after, before=before)
    else:
        rows = error_rows(ctx, entity, search, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return ctx.render(
        request,
        "admin/errors.html",
        session,
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        first_token=ErrorPosition.of(rows[0]).token() if rows else "",
        last_token=ErrorPosition.of(rows[-1]).token() if rows else "",
        entity=entity,
        search=search,
        entities=entities,
        kinds=kinds,
    )


@router.get("/errors.csv")
async def errors_csv(request: Request) -> Response:
    """The open errors matching the page's filter, as CSV (B39)."""
    ctx = AdminContext.of(request)
    ctx.signed_in(request)
    rows = error_rows(ctx, request.query_params.get("entity"), request.query_params.get("q"))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ERROR_CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
        )
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sync-errors.csv"'},
    )


@router.post("/errors/retry")
async def retry(request: Request) -> Response:
    """Queue the chosen errors (one or more ``error_id``) or every open one (``all``) for the
    next cycle (B38)."""
    ctx = AdminContext.of(request)
    session, form = await ctx.change_form(request)
    ids: list[int] | None
    if form.get("all") == "true":
        ids = None
    else:
        chosen = [str(raw) for raw in form.getlist("error_id")]
        if not chosen or not all(raw.isascii() and raw.isdigit() for raw in chosen):
            raise InvalidValueError("Choose the errors to retry.")
        ids = [int(raw) for raw in chosen]
    with ctx.engine.begin() as conn:
        queued = retry_errors(conn, ids)
        record_audit(
            conn,
            session.user.email,
            "sync_errors_retried",
            {"errors": "all" if ids is None else ids, "queued": queued},
        )
    if not queued:
        return ctx.redirect(f"{ADMIN}/errors", notice="Those errors are no longer open.")
    plural = "s" if queued != 1 else ""
    return ctx.redirect(
        f"{ADMIN}/errors",
        notice=f"Queued {queued} failing record{plural} for the next cycle; "
        "they stay listed until they sync.",
    )
