"""``crmsync sync``: run the Dynamics sync and look at it.

``once`` runs one whole cycle now and prints what it did (B15; a progress bar during an
initial sync, B16); ``run`` cycles, pauses and repeats while sync is enabled (B15, B21);
``enable`` / ``disable`` switch the background sync (B44); ``status`` shows backlog, last
cycle, throughput and API use (B40); ``errors`` lists failing records and ``retry`` queues
them again (B37–B39); ``person`` is *Sync Person to Microsoft* (B31). Connection settings
come from ``[dynamics]`` (the client secret from ``CRMSYNC_DYNAMICS_CLIENT_SECRET``).
"""

from __future__ import annotations

import csv
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from crmsync.cli import database, fail, settings_from
from crmsync.cli.interrupt import INTERRUPTED, first_ctrl_c_sets, interruptible_pause
from crmsync.cli.tables import print_records
from crmsync.errors import CrmsyncError, SyncInterruptedError

if TYPE_CHECKING:
    from crmsync.sync.reports import CycleReport, Progress

# Each command imports what it needs when it runs (``crmsync sync status`` stays quick): the
# Dynamics client, the engine and the campaign runner load only for the commands using them.

app = typer.Typer(help="The Dynamics sync: run it, switch it, watch it.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_report(report: CycleReport) -> None:
    from crmsync.sync.reports import push_summary

    table = Table(title=f"sync cycle ({report.outcome}, {report.duration_seconds:.2f} s)")
    table.add_column("entity", no_wrap=True, min_width=11)
    table.add_column("mode", no_wrap=True)
    for column in ("read", "created", "updated", "deleted", "failed", "collided"):
        table.add_column(column, justify="right")
    for e in report.entities:
        table.add_row(
            e.entity + (f" ({e.error})" if e.error else ""),
            e.mode,
            str(e.records),
            str(e.created),
            str(e.updated),
            str(e.deleted_flags),
            str(e.failed),
            str(e.collisions),
        )
    _out.print(table)
    for e in report.entities:
        if e.note:
            _out.print(f"{e.entity}: {e.note}", highlight=False, soft_wrap=True)
    push = report.push
    remerged = f", {push.remerged} re-merged" if push.remerged else ""
    _out.print(
        f"to Dynamics: {push_summary(push)}{remerged}; {report.api_calls} Dynamics requests",
        highlight=False,
        soft_wrap=True,
    )
    if report.error:
        _err.print(f"[red]cycle failed:[/red] {report.error}", highlight=False)


@app.command("once")
def once(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Run one whole sync cycle now and print what it did."""
    from crmsync.dynamics.factory import build_client
    from crmsync.sync.connection import connection_for
    from crmsync.sync.runner import SyncRunner

    settings = settings_from(ctx)
    interrupt = threading.Event()
    pause = interruptible_pause(interrupt)
    try:
        with (
            first_ctrl_c_sets(interrupt),
            database(settings) as engine,
            build_client(connection_for(engine, settings), sleep=pause) as client,
        ):
            if as_json:
                report = SyncRunner(engine, client, settings.sync, interrupt=interrupt).once()
            else:
                with _progress_bar() as on_progress:
                    report = SyncRunner(
                        engine, client, settings.sync, progress=on_progress, interrupt=interrupt
                    ).once()
    except (SyncInterruptedError, KeyboardInterrupt):
        _err.print(INTERRUPTED, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        _out.print_json(json.dumps(report.as_dict()))
    else:
        _print_report(report)
    if report.status == "failed":
        raise typer.Exit(1)


@contextmanager
def _progress_bar() -> Iterator[Any]:
    """A bar per initial read (against the records Dynamics has) and for the push (against
    the queued changes); other reads count records (B16, B40)."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as ProgressBar

    from crmsync.sync.reports import PUSH_ENTITY

    with ProgressBar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_err,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def on_progress(event: Progress) -> None:
            if event.mode == "delta" and event.records == 0:
                return
            key = f"{event.entity}:{event.mode}"
            if key not in tasks:
                label = (
                    "marketing changes for Dynamics"
                    if event.entity == PUSH_ENTITY
                    else f"{event.mode} sync of {event.entity}"
                )
                tasks[key] = bar.add_task(label, total=event.total)
            bar.update(tasks[key], completed=event.records, total=event.total)

        yield on_progress


@app.command("run")
def run(
    ctx: typer.Context,
    max_cycles: Annotated[
        int | None, typer.Option("--max-cycles", help="Stop after this many cycles.")
    ] = None,
) -> None:
    """Cycle, pause (setting sync.pause_seconds), repeat while sync is enabled; Ctrl-C stops."""
    from crmsync.dynamics.factory import build_client
    from crmsync.sync.campaign_push import start_campaign_runner
    from crmsync.sync.connection import connection_for
    from crmsync.sync.reports import push_summary
    from crmsync.sync.runner import SyncRunner

    settings = settings_from(ctx)
    stop = threading.Event()
    interrupt = threading.Event()
    last_idle: list[str] = []

    def on_cycle(report: CycleReport) -> None:
        _out.print(
            f"{report.started_at:%H:%M:%S} cycle {report.outcome}: "
            f"{report.records_synced} records synced; to Dynamics: {push_summary(report.push)}; "
            f"{report.api_calls} requests, {report.duration_seconds:.2f} s",
            highlight=False,
        )

    def on_idle(message: str) -> None:
        if not last_idle or last_idle[-1] != message:
            _err.print(message, highlight=False)
        last_idle[:] = [message]

    # SIGTERM (a service manager stopping us) finishes the running cycle, then stops: the
    # lease is released instead of blocking the next start until it expires.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main else None
    try:
        with (
            first_ctrl_c_sets(interrupt, stop),  # stop: a pause between cycles ends at once
            database(settings) as engine,
            build_client(
                connection_for(engine, settings),
                sleep=interruptible_pause(interrupt),
            ) as client,
        ):
            runner = SyncRunner(
                engine, client, settings.sync, smtp=settings.smtp, interrupt=interrupt
            )
            campaigns = start_campaign_runner(engine, client, settings.sync)  # B32: real time
            try:
                runner.run(stop, max_cycles=max_cycles, on_cycle=on_cycle, on_idle=on_idle)
            finally:
                campaigns.stop()
            if interrupt.is_set():
                _err.print(INTERRUPTED, highlight=False, soft_wrap=True)
    except (SyncInterruptedError, KeyboardInterrupt):
        _err.print(INTERRUPTED, highlight=False, soft_wrap=True)
    except CrmsyncError as exc:
        raise fail(exc) from None
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


@app.command("enable")
def enable(ctx: typer.Context) -> None:
    """Enable the background sync (its first cycle runs the initial sync of every table)."""
    from crmsync.sync.runner import set_enabled

    try:
        with database(settings_from(ctx)) as engine:
            set_enabled(engine, True)
    except CrmsyncError as exc:
        raise fail(exc) from None
    _out.print("sync enabled")


@app.command("disable")
def disable(ctx: typer.Context) -> None:
    """Disable the background sync; changes wait on both sides and nothing is lost."""
    from crmsync.sync.runner import set_enabled

    try:
        with database(settings_from(ctx)) as engine:
            set_enabled(engine, False)
    except CrmsyncError as exc:
        raise fail(exc) from None
    _out.print("sync disabled; changes are kept and sent when it is enabled again")


@app.command("status")
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show backlog per entity, the last cycle, last-hour throughput and API calls."""
    from crmsync.status_text import show_status

    try:
        show_status(lambda: settings_from(ctx), as_json=as_json)
    except CrmsyncError as exc:
        raise fail(exc) from None


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


ERROR_COLUMNS = (
    "id",
    "entity",
    "direction",
    "operation",
    "local_kind",
    "local_id",
    "crm_id",
    "error_code",
    "message",
    "attempts",
    "first_seen",
    "last_seen",
)
"""The columns of ``sync errors --csv``, in order."""


@app.command("errors")
def errors(
    ctx: typer.Context,
    entity: Annotated[str | None, typer.Option("--entity", help="Only this table.")] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Text in the message, code or Dynamics id.")
    ] = None,
    csv_file: Annotated[
        str | None, typer.Option("--csv", help="Export to this CSV file ('-': standard output).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List records that failed to sync, with Dynamics' code and message."""
    from crmsync.sync.failures import open_errors

    try:
        with database(settings_from(ctx)) as engine, engine.connect() as conn:
            rows = open_errors(conn, entity=entity, search=search)
    except CrmsyncError as exc:
        raise fail(exc) from None
    if csv_file is not None:
        _export_csv(rows, csv_file)
        return
    if as_json:
        _out.print_json(json.dumps([_jsonable(r) for r in rows]))
        return
    headers = ["id", "entity", "direction", "operation", "record", "code", "message"]
    headers += ["attempts", "last"]
    cells = [
        [
            str(r["id"]),
            str(r["entity"]),
            str(r["direction"]),
            str(r["operation"]),
            f"person {r['local_id']}" if r["local_id"] is not None else str(r["crm_id"]),
            str(r["error_code"] or ""),
            str(r["message"]),
            str(r["attempts"]),
            f"{r['last_seen']:%Y-%m-%d %H:%M}",
        ]
        for r in rows
    ]
    print_records(Console(), headers, cells, title=f"{len(rows)} failing records")


def _export_csv(rows: list[dict[str, Any]], target: str) -> None:
    """B39: the failing records as CSV, one row each, times in ISO 8601 UTC."""
    values = [_jsonable(row) for row in rows]
    if target == "-":
        writer = csv.DictWriter(sys.stdout, ERROR_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(values)
        return
    try:
        with open(target, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, ERROR_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(values)
    except OSError as exc:
        _err.print(f"[red]error:[/red] cannot write {target}: {exc.strerror}", highlight=False)
        raise typer.Exit(1) from None
    _out.print(f"exported {len(rows)} failing record(s) to {target}", highlight=False)


@app.command("retry")
def retry(
    ctx: typer.Context,
    error_id: Annotated[int | None, typer.Argument(help="The sync error to retry.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retry every failing record.")] = False,
) -> None:
    """Queue failing records for the next cycle; they stay listed until they sync."""
    from crmsync.store.audit import record_audit
    from crmsync.sync.admin_retry import retry_errors

    if (error_id is None) == (not all_):
        _err.print("give an error ID or --all (not both)")
        raise typer.Exit(2)
    try:
        with database(settings_from(ctx)) as engine, engine.begin() as conn:
            queued = retry_errors(conn, None if error_id is None else [error_id])
            if error_id is not None and not queued:
                _err.print(f"no open sync error {error_id}")
                raise typer.Exit(1)
            wanted = "all" if error_id is None else [error_id]
            details = {"errors": wanted, "queued": queued, "via": "cli"}
            record_audit(conn, "cli", "sync_errors_retried", details)
    except CrmsyncError as exc:
        raise fail(exc) from None
    _out.print(f"queued {queued} failing record(s) for the next cycle")


class SyncAs(StrEnum):
    """Which Dynamics record Sync Person to Microsoft creates for a person."""

    lead = "lead"
    contact = "contact"


@app.command("person")
def sync_person(
    ctx: typer.Context,
    person_ids: Annotated[list[int], typer.Argument(help="Marketing person ids.")],
    sync_as: Annotated[
        SyncAs, typer.Option("--as", help="Create a lead (default) or a contact with no account.")
    ] = SyncAs.lead,
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="The new records' owner: a synced sales user's Dynamics id."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Sync Person to Microsoft: a new Dynamics lead, or contact, for each person.

    The next cycle creates it, exactly once, optionally owned by a sales user.
    A person that already has a lead or contact is left alone; one whose
    record was deleted in Dynamics gets a new one.
    """
    from sqlalchemy import select

    from crmsync.marketing.activity_log import ActivityEntry, activity, write_activities
    from crmsync.marketing.activity_types import SYNC_LEAD_TO_MICROSOFT
    from crmsync.store.tables import persons
    from crmsync.sync.crm_create import request_crm_create

    results: list[dict[str, object]] = []
    try:
        with database(settings_from(ctx)) as engine, engine.begin() as conn:
            known = set(
                conn.execute(select(persons.c.id).where(persons.c.id.in_(person_ids))).scalars()
            )
            unknown = [pid for pid in person_ids if pid not in known]
            if unknown:
                _err.print(f"no person {', '.join(map(str, unknown))}; nothing was queued")
                raise typer.Exit(1)
            entries: list[ActivityEntry] = []
            for person_id in dict.fromkeys(person_ids):
                asked = request_crm_create(conn, person_id, sync_as.value, owner=owner)
                results.append(
                    {
                        "person_id": person_id,
                        "entity": asked.entity,
                        "crm_id": asked.crm_id,
                        "queued": asked.queued,
                    }
                )
                if asked.queued:
                    entries.append(
                        activity(
                            person_id,
                            SYNC_LEAD_TO_MICROSOFT,
                            "crmsync sync person",
                            {
                                "Assign To": owner or "",
                                "Sync As": asked.entity.capitalize(),
                                "CRM Id": asked.crm_id,
                            },
                            primary_value_id=person_id,
                        )
                    )
            # activities last in the transaction (see crmsync.marketing.activity_log)
            write_activities(conn, entries)
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        _out.print_json(json.dumps(results))
        return
    for row in results:
        if row["queued"]:
            text = f"queued: a new {row['entity']} {row['crm_id']}, created by the next cycle"
        else:
            text = f"already has {row['entity']} {row['crm_id']}: nothing to do"
        _out.print(f"person {row['person_id']}: {text}", highlight=False)
