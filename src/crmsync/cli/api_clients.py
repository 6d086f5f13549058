"""``crmsync api-client``: create, list and revoke clients of the Marketo-compatible API.

The client secret is printed once, at creation, and stored only as a hash; a lost secret is
replaced by creating a new client and revoking the old one.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from crmsync.cli import settings_from
from crmsync.cli.tables import print_records
from crmsync.store.db import open_database
from crmsync.web.clients import ApiClientStore

app = typer.Typer(
    help="Manage API clients of the Marketo-compatible REST API.", no_args_is_help=True
)
console = Console()


def _store(ctx: typer.Context) -> ApiClientStore:
    settings = settings_from(ctx)
    return ApiClientStore(
        open_database(settings.database.url),
        token_lifetime_seconds=settings.web.token_lifetime_seconds,
    )


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="What the client is for.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Create an API client and print its id and secret (shown only this once)."""
    store = _store(ctx)
    try:
        created = store.create(name)
    finally:
        store.engine.dispose()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "client_id": created.client_id,
                    "client_secret": created.client_secret.reveal(),
                    "name": created.name,
                }
            )
        )
        return
    console.print(f"API client [bold]{created.name}[/bold] created.")
    console.print(f"client id:     {created.client_id}")
    console.print(f"client secret: {created.client_secret.reveal()}")
    console.print("The secret is not stored in clear and will not be shown again.")


@app.command("list")
def list_clients(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List API clients (never their secrets)."""
    store = _store(ctx)
    try:
        clients = store.list()
    finally:
        store.engine.dispose()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "client_id": client.client_id,
                        "name": client.name,
                        "created_at": client.created_at.isoformat(),
                        "revoked_at": client.revoked_at.isoformat() if client.revoked_at else None,
                    }
                    for client in clients
                ]
            )
        )
        return
    rows = []
    for client in clients:
        status = "active" if client.active else f"revoked {client.revoked_at:%Y-%m-%d %H:%M}"
        rows.append([client.client_id, client.name, f"{client.created_at:%Y-%m-%d %H:%M}", status])
    # a Console made now measures the terminal of this call
    print_records(Console(), ["client id", "name", "created", "status"], rows)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Argument(help="The client id to revoke.")],
) -> None:
    """Revoke an API client: its secret and tokens stop working immediately."""
    store = _store(ctx)
    try:
        store.revoke(client_id)
    finally:
        store.engine.dispose()
    console.print(f"API client {client_id} revoked.")
