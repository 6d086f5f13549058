"""``crmsync serve``: run the web application (the Marketo-compatible REST API, the admin UI at
``/admin/`` and the admin API at ``/api/admin/v1``) with uvicorn, and, unless ``--no-sync``,
the background sync and the campaign runner (several serve processes may share one database:
the lease lets one of them run cycles at a time)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from crmsync.cli import settings_from
from crmsync.errors import ConfigurationError
from crmsync.web.app import create_app
from crmsync.web.wire import JsonErrorsH11Protocol


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to listen on (default from settings).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="TCP port (default from settings; 0 picks a free one)."),
    ] = None,
    no_sync: Annotated[
        bool,
        typer.Option("--no-sync", help="Serve only: no background sync, no campaign runner."),
    ] = False,
) -> None:
    """Serve the REST API and the admin UI, with the sync, until interrupted.

    The background sync and the campaign runner run here too, unless --no-sync is given.

    An unmigrated database is refused.
    """
    settings = settings_from(ctx)
    # raises DatabaseNotMigratedError naming `crmsync db upgrade`
    app = create_app(settings, background=not no_sync)
    bind_host = host if host is not None else settings.web.host
    bind_port = port if port is not None else settings.web.port
    run_server(app, bind_host, bind_port)


def run_server(
    app: FastAPI, host: str, port: int, *, on_ready: Callable[[str], None] | None = None
) -> None:
    """Bind ``host:port`` (port 0 picks a free one), print the URL, serve until interrupted.

    ``on_ready`` receives the base URL once the socket is bound, before serving starts.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio disables Nagle only on sockets whose proto says TCP, and
    # without that every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections queue from now on, so the printed URL works at once
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"http://{shown_host}:{bound_port}"
    print(f"crmsync: serving on {url} (Ctrl-C stops)", flush=True)
    if on_ready is not None:
        on_ready(url)
    # Headers up to 64 KB reach the app, so an over-long URI gets the API's JSON 414 reply
    # rather than the HTTP parser's 400; a request that cannot be parsed at all is answered
    # with the JSON envelope too (web.wire).
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        h11_max_incomplete_event_size=65_536,
        http=JsonErrorsH11Protocol,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
