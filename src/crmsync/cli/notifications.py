"""``crmsync notifications``: what the sync had to tell its admins (B41).

``list`` shows the in-app notifications, newest first (``--unread`` for the ones not yet
read), with whether each was e-mailed; ``read`` marks one, or all, as read. Notifications are
raised by the sync (initial sync done, a field deleted in Dynamics, the sync stopped, the
daily failure digest) and e-mailed by ``crmsync sync run`` when ``[smtp]`` is configured.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import select, update

from crmsync.cli import database, fail, settings_from
from crmsync.cli.tables import print_records
from crmsync.errors import CrmsyncError
from crmsync.store.tables import notifications, now_utc

app = typer.Typer(help="In-app notifications from the sync.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True)


@app.command("list")
def list_notifications(
    ctx: typer.Context,
    unread: Annotated[bool, typer.Option("--unread", help="Only those not read yet.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show notifications, newest first."""
    query = select(notifications).order_by(notifications.c.id.desc()).limit(limit)
    if unread:
        query = query.where(notifications.c.read_at.is_(None))
    try:
        with database(settings_from(ctx)) as engine, engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        for row in rows:
            for key in ("created_at", "read_at", "emailed_at"):
                row[key] = row[key].isoformat() if row[key] is not None else None
        typer.echo(json.dumps(rows))
        return
    if not rows:
        _out.print("no notifications" + (" unread" if unread else ""))
        return
    cells = [
        [
            str(row["id"]),
            f"{row['created_at']:%Y-%m-%d %H:%M}",
            str(row["severity"]),
            str(row["title"]),
            "yes" if row["read_at"] else "",
            "yes" if row["emailed_at"] else "",
        ]
        for row in rows
    ]
    headers = ["id", "raised (UTC)", "severity", "title", "read", "e-mailed"]
    print_records(Console(), headers, cells)
    for row in rows:
        if row["read_at"] is None:
            _out.print(f"\n[bold]{row['id']}. {row['title']}[/bold]\n{row['message']}")


@app.command("read")
def mark_read(
    ctx: typer.Context,
    notification_id: Annotated[int | None, typer.Argument(help="The notification.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every unread notification.")] = False,
) -> None:
    """Mark a notification, or all of them, as read."""
    if (notification_id is None) == (not all_):
        _err.print("give a notification ID or --all (not both)")
        raise typer.Exit(2)
    statement = (
        update(notifications).where(notifications.c.read_at.is_(None)).values(read_at=now_utc())
    )
    if notification_id is not None:
        statement = statement.where(notifications.c.id == notification_id)
    try:
        with database(settings_from(ctx)) as engine, engine.begin() as conn:
            marked = conn.execute(statement).rowcount
    except CrmsyncError as exc:
        raise fail(exc) from None
    if notification_id is not None and not marked:
        _err.print(f"no unread notification {notification_id}")
        raise typer.Exit(1)
    _out.print(f"marked {marked} notification(s) as read")
