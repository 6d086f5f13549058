"""``crmsync fields quick-sync``: the quick syncs that fill newly selected fields (B12).

``status`` shows each job: table, fields, state, records done of the total, rate, start and
estimated time left (``--json`` for scripts). ``run`` fills the waiting fields now, page by
page, until every job is done; the background sync does the same between its cycles. A run
stopped at any point (Ctrl-C, a crash) continues from its last committed page. ``run`` steps
aside for the regular sync: it lowers its own CPU priority and pauses while a sync cycle runs.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console

from crmsync.cli import database, fail, settings_from
from crmsync.cli.tables import print_records
from crmsync.errors import CrmsyncError

app = typer.Typer(help="Quick syncs: newly selected fields filled from Dynamics.")
_out = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _when(value: str | None) -> str:
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def _progress(job: dict[str, Any]) -> str:
    done, total = job["done"], job["total"]
    if total is None:
        return f"{done} read"
    percent = 100 * done / total if total else 100.0
    return f"{done} of {total} ({percent:.0f}%)"


@app.command("status")
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the quick syncs: fields, state, records done of the total, rate and time left."""
    from crmsync.store.tables import now_utc
    from crmsync.sync.quick_sync_jobs import load_jobs

    try:
        with database(settings_from(ctx)) as engine, engine.connect() as conn:
            jobs = load_jobs(conn, limit=20)
    except CrmsyncError as exc:
        raise fail(exc) from None
    now = now_utc()
    documents = [job.as_dict(now) for job in jobs]
    if as_json:
        typer.echo(json.dumps(documents))
        return
    if not documents:
        _out.print("no quick sync yet: selecting fields after the initial sync starts one")
        return
    headers = ["id", "table", "fields", "state", "records", "filled", "rate/s", "started", "left"]
    cells = [
        [
            str(job["id"]),
            job["entity"],
            ", ".join(job["fields"]),
            job["state"] + (f": {job['error']}" if job["error"] else ""),
            _progress(job),
            str(job["filled"]),
            "" if job["ratePerSecond"] is None else f"{job['ratePerSecond']:.0f}",
            _when(job["startedAt"]),
            _duration(job["etaSeconds"]),
        ]
        for job in documents
    ]
    print_records(Console(), headers, cells, right=frozenset({"id", "filled", "rate/s"}))


@app.command("run")
def run(
    ctx: typer.Context,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=5000, help="Records per page read.")
    ] = 5000,
    nice: Annotated[
        int,
        typer.Option(
            "--nice",
            min=0,
            max=19,
            help="How much to lower this process's CPU priority (0 keeps it).",
        ),
    ] = 10,
    cycle_wait: Annotated[
        float | None,
        typer.Option(
            "--cycle-wait",
            min=0,
            help="Longest pause in a row while a sync cycle runs, in seconds; 0 never pauses.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Fill the fields waiting for a quick sync now, page by page, until every job is done.

    It gives way to the regular sync: it runs at a lower CPU priority and pauses while a sync
    cycle runs (for a bounded time, so it always moves on).
    """
    from crmsync.dynamics.factory import build_client
    from crmsync.store.tables import now_utc
    from crmsync.sync.cycle_yield import MAX_WAIT_SECONDS
    from crmsync.sync.quick_sync import QuickSync
    from crmsync.sync.quick_sync_jobs import load_job

    settings = settings_from(ctx)
    _lower_priority(nice)
    finished: dict[int, dict[str, Any]] = {}
    try:
        with database(settings) as engine, build_client(settings.dynamics) as client:
            waits = MAX_WAIT_SECONDS if cycle_wait is None else cycle_wait
            quick = QuickSync(engine, client, page_size=page_size, cycle_wait_seconds=waits)
            while (job := quick.step()) is not None:
                finished[job.id] = job.as_dict(now_utc())
                if not as_json and not job.active:
                    _out.print(
                        f"{job.entity}: {', '.join(job.attributes)} {job.state}, "
                        f"{job.records_done} records read, {job.records_filled} filled"
                        + (f": {job.error}" if job.error else ""),
                        highlight=False,
                    )
            with engine.connect() as conn:
                for job_id in list(finished):
                    stored = load_job(conn, job_id)
                    if stored is not None:
                        finished[job_id] = stored.as_dict(now_utc())
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps(list(finished.values())))
    elif not finished:
        _out.print("no field is waiting for a quick sync")
    if any(job["state"] == "failed" for job in finished.values()):
        raise typer.Exit(1)


def _lower_priority(step: int) -> None:
    """Lower this process's CPU priority by ``step`` where the system allows it."""
    if step > 0 and hasattr(os, "nice"):
        with contextlib.suppress(OSError):  # not permitted here: the usual priority then
            os.nice(step)
