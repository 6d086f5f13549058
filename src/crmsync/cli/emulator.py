"""``crmsync emulator``: serve the local Dataverse Web API emulator, seeded with realistic data.

Prints where it listens and how to sign in (tenant, the sync application's client id and secret,
the salespeople's user names and passwords — the built-in ones are published test credentials
of the emulator; secrets set in a configuration file are never printed), then serves until
interrupted. ``--json`` prints the same as one JSON object on the first line.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import sqlite3
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from crmsync.emulator.config import EmulatorConfig, default_config, load_emulator_config
from crmsync.emulator.errors import EmulatorConfigError
from crmsync.emulator.runtime import EmulatorRuntime
from crmsync.emulator.secret import Secret
from crmsync.emulator.seed import planned_counts, seed_dataset
from crmsync.emulator.tls import TlsFiles, ensure_tls_files
from crmsync.errors import ConfigurationError

API_PATH = "/api/data/v9.2/"
_ANY_ADDRESS = frozenset({"0.0.0.0", "::"})  # noqa: S104 - names, not a bind
_console = Console(stderr=True)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio: no Nagle
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections queue from now on, so the printed URL works at once
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def _builtin_secrets() -> frozenset[str]:
    """The published test credentials of the built-in configuration (safe to print)."""
    config = default_config()
    values = {config.secret_for(user).reveal() for user in config.users}
    return frozenset({*values, config.admin_key.reveal()} - {""})


def _printable(secret: Secret) -> str | None:
    """The secret's value when it is a built-in test value; None for one of the user's own."""
    value = secret.reveal()
    return value if value in _builtin_secrets() else None


def connection_details(
    config: EmulatorConfig, base_url: str, db: str, tls: TlsFiles | None, seeded: dict[str, int]
) -> dict[str, Any]:
    """Everything a client needs to reach the emulator, as printed by the command.

    Secrets are shown only when they are the built-in test values; a secret that comes from
    a configuration file is the user's own and is given as ``null``: they have it already,
    and the output may end up in a log or a CI transcript.
    """
    app_users = [user for user in config.users if user.kind == "application"]
    people = [user for user in config.users if user.kind == "user"]
    first_app = app_users[0] if app_users else None
    return {
        "base_url": base_url,
        "web_api_url": base_url + API_PATH,
        "tenant": config.tenant,
        "authority": f"{base_url}/{config.tenant}",
        "token_url": f"{base_url}/{config.tenant}/oauth2/v2.0/token",
        "scope": f"{base_url}/.default",
        "client_id": first_app.client_id if first_app else None,
        "client_secret": _printable(config.secret_for(first_app)) if first_app else None,
        "public_client_id": config.public_client_id,
        "users": [
            {
                "upn": user.upn,
                "password": _printable(config.secret_for(user)),
                "fullname": user.fullname,
                "systemuserid": user.systemuserid,
                "entra_object_id": user.entra_object_id,
            }
            for user in people
        ],
        "ca_bundle": str(tls.ca_certificate) if tls else None,
        "admin_key": _printable(config.admin_key),
        "db": db,
        "seeded": seeded,
    }


def _shown(value: str | None) -> str:
    return value if value is not None else "(from the configuration file; not shown)"


def _print_details(details: dict[str, Any]) -> None:
    out = Console()
    out.print(f"[bold]Dataverse emulator[/bold] at {details['base_url']}")
    out.print(f"  Web API root   {details['web_api_url']}")
    out.print(f"  tenant         {details['tenant']}")
    out.print(f"  authority      {details['authority']}")
    out.print(f"  scope          {details['scope']}")
    out.print(f"  client id      {details['client_id']}")
    out.print(f"  client secret  {_shown(details['client_secret'])}")
    for user in details["users"]:
        out.print(f"  salesperson    {user['upn']} / {_shown(user['password'])}")
    out.print(f"  public client  {details['public_client_id']} (password grant)")
    if details["ca_bundle"]:
        out.print(f"  CA bundle      {details['ca_bundle']}")
    out.print(f"  admin key      {_shown(details['admin_key'])} (header X-Emulator-Key)")
    out.print(f"  database       {details['db']}")
    if details["seeded"]:
        counts = ", ".join(f"{n} {table}" for table, n in details["seeded"].items())
        out.print(f"  seeded         {counts}")
    out.print("Ctrl-C stops.")


def _seed(storage: Any, leads: int, config: EmulatorConfig, quiet: bool) -> dict[str, int]:
    app_user = next((u for u in config.users if u.kind == "application"), config.users[0])
    if quiet:
        return seed_dataset(
            storage, leads, config.seed, acting_user=app_user.systemuserid
        ).as_dict()
    plan = planned_counts(leads).as_dict()
    with Progress(
        TextColumn("seeding {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=_console,
        transient=True,
    ) as bar:
        tasks = {table: bar.add_task(table, total=total) for table, total in plan.items()}

        def advance(table: str, done: int) -> None:
            bar.update(tasks[table], completed=done)

        summary = seed_dataset(
            storage, leads, config.seed, acting_user=app_user.systemuserid, progress=advance
        )
    return summary.as_dict()


def emulator(
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Emulator TOML file (users, limits, faults); default built in."
        ),
    ] = None,
    db: Annotated[
        str, typer.Option("--db", help="SQLite file for the emulated org, or :memory:.")
    ] = ":memory:",
    port: Annotated[int, typer.Option("--port", help="TCP port; 0 picks a free one.")] = 5580,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    leads: Annotated[
        int,
        typer.Option(
            "--seed", min=0, help="Leads to create (with related rows) in a new database."
        ),
    ] = 1000,
    random_seed: Annotated[
        int | None,
        typer.Option("--random-seed", help="Override the config's seed for data and faults."),
    ] = None,
    https: Annotated[
        bool, typer.Option("--https", help="Serve TLS with a generated CA + certificate.")
    ] = False,
    tls_dir: Annotated[
        Path | None,
        typer.Option("--tls-dir", help="Where to keep the generated certificates."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print connection details as one JSON line first.")
    ] = False,
) -> None:
    """Serve a local Dataverse Web API emulator until interrupted."""
    from crmsync.emulator.app import create_emulator_app

    try:
        config = load_emulator_config(config_file)
        if random_seed is not None:
            config = dataclasses.replace(config, seed=random_seed)
        tls: TlsFiles | None = None
        if https:
            default_dir = Path(db + ".tls") if db != ":memory:" else Path(".emulator-tls")
            named = () if host in _ANY_ADDRESS else (host,)
            hosts = (*named, "127.0.0.1", "localhost", "::1")
            # Absolute paths: clients run from other directories read the printed CA bundle.
            directory = (tls_dir or default_dir).resolve()
            tls = ensure_tls_files(directory, tuple(dict.fromkeys(hosts)))
    except EmulatorConfigError as exc:  # the emulator's own error, told as crmsync's
        raise ConfigurationError(exc.message) from exc
    sock = _listen(host, port)
    try:
        runtime = EmulatorRuntime(config)
        try:
            app = create_emulator_app(config, db, runtime=runtime)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigurationError(f"cannot open the emulator database {db}: {exc}") from exc
        storage = app.state.storage
        # A new (or emptied) org is seeded; an existing one is served as it is.
        seeded = _seed(storage, leads, config, as_json) if storage.count("lead") == 0 else {}
        bound_port = sock.getsockname()[1]
        # Listening on every interface: clients on this machine reach it at 127.0.0.1.
        shown_host = "127.0.0.1" if host in _ANY_ADDRESS else host
        shown_host = f"[{shown_host}]" if ":" in shown_host else shown_host
        base_url = f"{'https' if tls else 'http'}://{shown_host}:{bound_port}"
        details = connection_details(config, base_url, db, tls, seeded)
        if as_json:
            print(json.dumps(details), flush=True)
        else:
            _print_details(details)
        server_config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            # Idle keep-alive clients must not hold a stop (TLS close can wait for the peer).
            timeout_graceful_shutdown=3,
            ssl_certfile=str(tls.server_certificate) if tls else None,
            ssl_keyfile=str(tls.server_key) if tls else None,
        )
        try:
            uvicorn.Server(server_config).run(sockets=[sock])
        finally:
            storage.close()
    finally:
        sock.close()
