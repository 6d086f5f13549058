"""``crmsync dynamics``: check the connection to the configured Dynamics org (B43)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from crmsync.cli import settings_from
from crmsync.dynamics.check import DEFAULT_TABLES
from crmsync.dynamics.factory import build_client
from crmsync.errors import CrmsyncError
from crmsync.store.db import open_database
from crmsync.sync.connection import connection_for, is_saved
from crmsync.sync.validate import validate_setup

app = typer.Typer(help="Dynamics 365 connection.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True)


@app.command("check")
def check(
    ctx: typer.Context,
    table: Annotated[
        list[str] | None,
        typer.Option("--table", help="Table logical name to check (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Connect, authenticate, and check privileges, change tracking and selected fields per table.

    Read and write privileges, change tracking, the selected fields and the sync
    filter column are checked per table; the field selection comes from the
    database when it can be opened. Each failing line says how to fix it.
    """
    settings = settings_from(ctx)
    try:
        engine = open_database(settings.database.url)
    except CrmsyncError as exc:
        engine = None
        _err.print(
            "the field selection and any connection saved on the Setup page are not used: "
            f"{exc.message}",
            highlight=False,
            soft_wrap=True,
        )
    try:
        # the same connection as serve, sync and fields: the saved one over the file's
        connection = settings.dynamics if engine is None else connection_for(engine, settings)
        client = build_client(connection)
    except CrmsyncError as exc:
        if engine is not None:
            engine.dispose()
        _err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if engine is not None and is_saved(engine):
        _err.print("using the connection saved on the Setup page", highlight=False)
    try:
        with client:
            report = validate_setup(client, engine, tuple(table or DEFAULT_TABLES))
            stats = client.stats()
    finally:
        if engine is not None:
            engine.dispose()
    if as_json:
        document = {
            "ok": report.ok,
            "checks": [
                {"name": item.name, "ok": item.ok, "detail": item.detail, "fix": item.fix}
                for item in report.items
            ],
            "requests": stats.requests,
        }
        print(json.dumps(document, indent=2))
    else:
        for item in report.items:
            mark = "[green]ok[/green]  " if item.ok else "[red]FAIL[/red]"
            _out.print(f"{mark} {item.name}: {item.detail}", highlight=False, soft_wrap=True)
            if item.fix:
                _out.print(f"      fix: {item.fix}", highlight=False, soft_wrap=True)
    raise typer.Exit(0 if report.ok else 1)
