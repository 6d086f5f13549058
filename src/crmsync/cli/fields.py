"""``crmsync fields``: the marketing field catalog, and which Dynamics columns sync.

``list`` shows the catalog and ``add-local`` adds a field that exists only in the marketing
database. ``dynamics ENTITY`` reads a table's columns from Dynamics with their display names,
selection state and sync rule (B8, B14, B46) and ``select ENTITY --add/--remove/--rule`` saves
the table's field selection (B9–B13): ``--add COL=FIELD`` maps a column onto an existing
marketing field, ``--rule COL=RULE`` sets a column's sync rule (B46). Fields in Dynamics are
never created by crmsync (B10).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crmsync.cli import database, fail, settings_from
from crmsync.cli.quick_sync import app as quick_sync_app
from crmsync.cli.tables import print_records
from crmsync.dynamics.factory import build_client
from crmsync.errors import CrmsyncError, InvalidValueError
from crmsync.marketing.fields import add_local_field, load_catalog
from crmsync.store.field_specs import DATA_TYPES, OBJECT_FIELDS
from crmsync.sync.connection import connection_for
from crmsync.sync.policy import NEVER_BLANK, SyncRule
from crmsync.sync.selection import ColumnInfo, columns_of, save_selection

app = typer.Typer(help="Marketing field catalog.", no_args_is_help=True)
app.add_typer(quick_sync_app, name="quick-sync")
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
        with database(settings_from(ctx)) as engine, engine.begin() as conn:
            field = add_local_field(conn, object_type, name, display, data_type, length)
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
        with database(settings_from(ctx)) as engine, engine.connect() as conn:
            catalog = load_catalog(conn, object_type)
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
    cells = [
        [
            str(f.field_id),
            f.display_name,
            f.data_type,
            "" if f.length is None else str(f.length),
            "yes" if f.read_only else "",
            "yes" if f.is_custom else "",
            f.rest_name,
        ]
        for f in catalog.fields
    ]
    headers = ["id", "display name", "type", "length", "read-only", "custom", "name"]
    # a Console made now measures the terminal of this call
    print_records(Console(), headers, cells, right=frozenset({"id", "length"}))


EntityArgument = Annotated[str, typer.Argument(help="Dynamics table: lead, contact, account...")]


@app.command("dynamics")
def dynamics_columns(
    ctx: typer.Context,
    entity: EntityArgument,
    selected: Annotated[bool, typer.Option("--selected", help="Only selected columns.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Read a table's columns from Dynamics and show which sync, and to which field."""
    settings = settings_from(ctx)
    try:
        with (
            database(settings) as engine,
            build_client(connection_for(engine, settings)) as client,
            engine.connect() as conn,
        ):
            columns = columns_of(conn, client, entity.strip().lower())
    except CrmsyncError as exc:
        raise fail(exc) from None
    if selected:
        columns = [c for c in columns if c.status is not None]
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(c) for c in columns]))
        return
    table = Table()
    titles = ("column", "display name", "type", "status", "marketing field", "direction")
    for title in (*titles, "rule", "note"):
        table.add_column(title, overflow="fold")  # names are read, and copied, whole
    for c in columns:
        note = "" if c.can_sync else "cannot sync (secured or unsupported)"
        if c.status == "missing":
            note = "deleted in Dynamics; save the selection to clear"
        elif c.status == "type_changed":
            note = (
                "type changed in Dynamics, no longer synced; save the selection to drop it, "
                "or select it again to sync the new type"
            )
        table.add_row(
            c.attribute,
            c.display_name,
            c.type,
            c.status or "",
            c.marketing_field or "",
            _direction(c),
            _rule(c),
            note,
        )
    Console().print(table)


def _direction(column: ColumnInfo) -> str:
    if not column.marketing_field:
        return ""
    if not column.two_way:
        return "from Dynamics"
    if column.sync_rule == SyncRule.MARKETING_TO_DYNAMICS.value:
        return "to Dynamics"
    return "both ways"


def _rule(column: ColumnInfo) -> str:
    if column.sync_rule is None:
        return ""
    return column.sync_rule + (f", {NEVER_BLANK}" if column.never_blank else "")


_RULE_HELP = (
    "Sync rule of a selected column, COL=RULE. RULE is one of: "
    + "; ".join(f"{rule.value} ({rule.description})" for rule in SyncRule)
    + f". Add ',{NEVER_BLANK}' (or give {NEVER_BLANK} alone) so that a blank never "
    "overwrites a value."
)


def _rules(entries: list[str]) -> dict[str, str]:
    rules: dict[str, str] = {}
    for entry in entries:
        column, sep, rule = entry.partition("=")
        if not sep or not column.strip() or not rule.strip():
            raise InvalidValueError(
                f"--rule {entry!r}: write COL=RULE, e.g. --rule jobtitle=dynamics-wins"
            )
        rules[column.strip().lower()] = rule.strip()
    return rules


_DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def _utc(value: datetime | None, *, end_of_day: bool = False) -> datetime | None:
    """A date given on the command line as UTC; a bare date's end is the end of that day."""
    if value is None:
        return None
    if end_of_day and (value.hour, value.minute, value.second) == (0, 0, 0):
        value = value.replace(hour=23, minute=59, second=59)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@app.command("select")
def select_columns(
    ctx: typer.Context,
    entity: EntityArgument,
    add: Annotated[
        list[str],
        typer.Option(
            "--add",
            help="Column to start syncing, COL or COL=FIELD to map it onto an existing "
            "marketing field (e.g. websiteurl=website).",
        ),
    ] = [],  # noqa: B006
    remove: Annotated[
        list[str], typer.Option("--remove", help="Column to stop syncing (values are kept).")
    ] = [],  # noqa: B006
    rule: Annotated[list[str], typer.Option("--rule", help=_RULE_HELP)] = [],  # noqa: B006
    since: Annotated[
        datetime | None,
        typer.Option(
            "--since",
            formats=_DATE_FORMATS,
            help="Quick sync only records modified in Dynamics from this date (UTC).",
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(
            "--until",
            formats=_DATE_FORMATS,
            help="Quick sync only records modified in Dynamics up to this date (UTC).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Save a table's field selection, refreshing its schema from Dynamics first.

    Columns added after the initial sync are filled from Dynamics by a quick
    sync that runs beside the regular sync (see: crmsync fields quick-sync
    status); --since/--until limit it to records modified in those dates. A
    column cannot be removed while its quick sync runs. Saving without changes
    refreshes the schema and clears columns deleted in Dynamics. Every change
    is recorded in the audit log.
    """
    settings = settings_from(ctx)
    name = entity.strip().lower()
    try:
        rules = _rules(rule)
        with (
            database(settings) as engine,
            build_client(connection_for(engine, settings)) as client,
            engine.begin() as conn,
        ):
            saved = save_selection(
                conn,
                client,
                name,
                add=add,
                remove=remove,
                rules=rules,
                modified_since=_utc(since),
                modified_until=_utc(until, end_of_day=True),
            )
    except CrmsyncError as exc:
        raise fail(exc) from None
    fields = {m.attribute: m for m in saved.mapping.fields}
    # the rule of every column whose rule changed, and of added columns that have one
    rules_now = {
        c: fields[c].rule.name
        for c in (*saved.added, *saved.rules_changed)
        if c in fields and (c in saved.rules_changed or not fields[c].rule.is_default)
    }
    if as_json:
        document = {
            "entity": name,
            "selected": len(saved.mapping.fields),
            "added": {c: fields[c].field if c in fields else None for c in saved.added},
            "removed": list(saved.removed),
            "rules": rules_now,
            "quickSync": saved.quick_sync,
        }
        typer.echo(json.dumps(document))
        return
    added = [f"{c} → {fields[c].field}" if c in fields else c for c in saved.added]
    ruled = [f"{c}: {rule}" for c, rule in rules_now.items()]
    _out.print(
        f"{name}: {len(saved.mapping.fields)} columns selected"
        + (f"; added {', '.join(added)}" if added else "")
        + (f"; removed {', '.join(saved.removed)}" if saved.removed else "")
        + (f"; rules {', '.join(ruled)}" if ruled else ""),
        highlight=False,
    )
    if saved.quick_sync:
        _out.print(
            "a quick sync fills the added fields from Dynamics beside the regular sync "
            "(crmsync fields quick-sync status)"
        )
