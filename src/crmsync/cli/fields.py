"""``crmsync fields``: list the marketing field catalog and add marketing-only fields.

Fields in Dynamics are never created by crmsync (B10); ``add-local`` adds a field that exists
only in the marketing database.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crmsync.cli import fail, settings_from
from crmsync.errors import CrmsyncError
from crmsync.marketing.fields import add_local_field, load_catalog
from crmsync.store.db import open_database
from crmsync.store.field_specs import DATA_TYPES, OBJECT_FIELDS

app = typer.Typer(help="Marketing field catalog.", no_args_is_help=True)
_out = Console()

ObjectOption = Annotated[
    str,
    typer.Option("--object", help=f"Object type: {', '.join(OBJECT_FIELDS)}."),
]


@app.command("add-local")
def add_local(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="REST name, e.g. favouriteColour.")],
    display: Annotated[str, typer.Option("--display", help="Display name.")],
    data_type: Annotated[
        str, typer.Option("--type", help=f"Data type: {', '.join(sorted(DATA_TYPES))}.")
    ],
    object_type: ObjectOption = "person",
    length: Annotated[
        int | None, typer.Option("--length", help="Maximum length (string-like types).")
    ] = None,
) -> None:
    """Add a marketing-only custom field (it is never sent to Dynamics)."""
    try:
        engine = open_database(settings_from(ctx).database.url)
        try:
            with engine.begin() as conn:
                field = add_local_field(conn, object_type, name, display, data_type, length)
        finally:
            engine.dispose()
    except CrmsyncError as exc:
        raise fail(exc) from None
    _out.print(
        f"added {field.object_type} field {field.rest_name} ({field.data_type}"
        + (f", length {field.length}" if field.length else "")
        + f", id {field.field_id})",
        highlight=False,
    )


@app.command("list")
def list_fields(
    ctx: typer.Context,
    object_type: ObjectOption = "person",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the fields of an object: standard ones first, then custom ones."""
    try:
        engine = open_database(settings_from(ctx).database.url)
        try:
            with engine.connect() as conn:
                catalog = load_catalog(conn, object_type)
        finally:
            engine.dispose()
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        rows = [
            {
                "id": f.field_id,
                "name": f.rest_name,
                "displayName": f.display_name,
                "dataType": f.data_type,
                "length": f.length,
                "readOnly": f.read_only,
                "custom": f.is_custom,
            }
            for f in catalog.fields
        ]
        typer.echo(json.dumps(rows))
        return
    table = Table("id", "display name", "type", "length", "read-only", "custom")
    table.add_column("name", overflow="fold")
    for f in catalog.fields:
        table.add_row(
            str(f.field_id),
            f.display_name,
            f.data_type,
            "" if f.length is None else str(f.length),
            "yes" if f.read_only else "",
            "yes" if f.is_custom else "",
            f.rest_name,
        )
    Console().print(table)  # built now so that it measures the terminal of this call
