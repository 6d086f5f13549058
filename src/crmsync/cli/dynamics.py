"""``crmsync dynamics``: check the connection to the configured Dynamics org (B43)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from crmsync.cli import settings_from
from crmsync.dynamics.check import DEFAULT_TABLES, check_connection
from crmsync.dynamics.factory import build_client
from crmsync.errors import CrmsyncError

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
    """Connect, authenticate, and check privileges and change tracking per table."""
    try:
        client = build_client(settings_from(ctx).dynamics)
    except CrmsyncError as exc:
        _err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    with client:
        report = check_connection(client, tuple(table or DEFAULT_TABLES))
        stats = client.stats()
    if as_json:
        document = {
            "ok": report.ok,
            "checks": [
                {"name": item.name, "ok": item.ok, "detail": item.detail} for item in report.items
            ],
            "requests": stats.requests,
        }
        print(json.dumps(document, indent=2))
    else:
        for item in report.items:
            mark = "[green]ok[/green]  " if item.ok else "[red]FAIL[/red]"
            _out.print(f"{mark} {item.name}: {item.detail}", highlight=False)
    raise typer.Exit(0 if report.ok else 1)
