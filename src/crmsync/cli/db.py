"""``crmsync db``: migrate the database (``upgrade``) and show its schema state (``status``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from crmsync.cli import fail, settings_from
from crmsync.errors import CrmsyncError
from crmsync.store.db import current_revision, head_revision, open_database, upgrade_database

app = typer.Typer(help="Database schema: migrate and inspect.", no_args_is_help=True)
_out = Console()

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option("--database-url", help="Database URL (default: [database] url of the settings)."),
]


def _url(ctx: typer.Context, override: str | None) -> str:
    return override if override else settings_from(ctx).database.url


@app.command("upgrade")
def upgrade(ctx: typer.Context, database_url: DatabaseUrlOption = None) -> None:
    """Create or migrate the database schema to the newest version."""
    try:
        url = _url(ctx, database_url)
        upgrade_database(url)
    except CrmsyncError as exc:
        raise fail(exc) from None
    _out.print(f"database is at schema revision {head_revision()}", highlight=False)


@app.command("status")
def status(
    ctx: typer.Context,
    database_url: DatabaseUrlOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the schema revision; exit 1 when the database needs `crmsync db upgrade`."""
    try:
        url = _url(ctx, database_url)
        engine = open_database(url, require_migrated=False)
        try:
            current = current_revision(engine)
            shown = engine.url.render_as_string(hide_password=True)
        finally:
            engine.dispose()
    except CrmsyncError as exc:
        raise fail(exc) from None
    head = head_revision()
    up_to_date = current == head
    if as_json:
        report = {"database": shown, "current": current, "head": head, "up_to_date": up_to_date}
        typer.echo(json.dumps(report))
    else:
        _out.print(f"database: {shown}", highlight=False)
        _out.print(f"schema revision: {current or '(none)'}  (newest: {head})", highlight=False)
        if up_to_date:
            _out.print("up to date", highlight=False)
        else:
            _out.print("needs migrating: run `crmsync db upgrade`", highlight=False)
    if not up_to_date:
        raise typer.Exit(1)
