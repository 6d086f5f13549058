"""``crmsync entities``: Dynamics custom entities (tables linked to leads, contacts or
accounts) read one way into the marketing database.

``list`` reads the tables that can be enabled from Dynamics (each once, on its nearest path to
a lead, contact or account), ``enable NAME [--field COL ...]`` chooses one and its fields (the
next sync cycle loads it), ``disable NAME`` stops reading it and keeps its records, ``status``
shows what is stored and where each one's reading stands.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from crmsync.cli import database, fail, settings_from
from crmsync.cli.tables import print_records
from crmsync.dynamics.factory import build_client
from crmsync.errors import CrmsyncError
from crmsync.sync.custom_entities import (
    CustomEntityStatus,
    disable,
    discover,
    enable,
    entity_status,
    stored_entities,
)

app = typer.Typer(
    help="Custom entities: Dynamics tables linked to persons or companies, read one way.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NameArgument = Annotated[str, typer.Argument(help="The table's logical name, e.g. new_visit.")]


@app.command("list")
def list_entities(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the Dynamics tables that can be enabled, each on its nearest path."""
    settings = settings_from(ctx)
    try:
        with (
            database(settings) as engine,
            build_client(settings.dynamics) as client,
            engine.connect() as conn,
        ):
            choices = discover(client, conn)
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps([choice.as_dict() for choice in choices]))
        return
    rows = [
        [
            c.name,
            c.display_name,
            c.path.describe(),
            "yes" if c.enabled else "",
            "" if c.change_tracking else "off",
        ]
        for c in choices
    ]
    headers = ["name", "display name", "path", "enabled", "change tracking"]
    print_records(Console(), headers, rows, title=f"{len(choices)} tables can be enabled")


@app.command("enable")
def enable_entity(
    ctx: typer.Context,
    name: NameArgument,
    fields: Annotated[
        list[str] | None,
        typer.Option("--field", help="A column to read (repeat it); default: its own columns."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Enable a custom entity with its fields; the next sync cycle loads its records."""
    settings = settings_from(ctx)
    try:
        with database(settings) as engine, build_client(settings.dynamics) as client:
            entity = enable(engine, client, name, fields)
            with engine.connect() as conn:
                status = entity_status(conn, entity)
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps(status.as_dict()))
        return
    typer.echo(
        f"enabled {entity.name} ({entity.display_name}), linked to {entity.path.root} through "
        f"{entity.path.describe()}; fields: {', '.join(entity.fields)}. "
        "The next sync cycle loads its records."
    )


@app.command("disable")
def disable_entity(ctx: typer.Context, name: NameArgument, as_json: JsonOption = False) -> None:
    """Stop reading a custom entity; its records stay in the marketing database."""
    try:
        with database(settings_from(ctx)) as engine:
            entity = disable(engine, name)
            with engine.connect() as conn:
                status = entity_status(conn, entity)
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps(status.as_dict()))
        return
    typer.echo(f"disabled {entity.name}: {status.records} records kept, no longer read")


@app.command("status")
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show each custom entity: enabled or not, its reading, its records."""
    try:
        with database(settings_from(ctx)) as engine, engine.connect() as conn:
            statuses = [entity_status(conn, e) for e in stored_entities(conn)]
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in statuses]))
        return
    if not statuses:
        typer.echo("no custom entity enabled yet (see 'crmsync entities list')")
        return
    print_records(Console(), _HEADERS, [_row(s) for s in statuses], right=_NUMBERS)


_HEADERS = ["name", "enabled", "reading", "records", "linked", "deleted", "loaded at"]
_NUMBERS = frozenset({"records", "linked", "deleted"})


def _row(status: CustomEntityStatus) -> list[str]:
    entity = status.entity
    loaded = entity.loaded_at.strftime("%Y-%m-%d %H:%M:%S UTC") if entity.loaded_at else ""
    return [
        entity.name,
        "yes" if entity.enabled else "no",
        status.phase,
        str(status.records),
        str(status.linked),
        str(status.deleted),
        loaded,
    ]
