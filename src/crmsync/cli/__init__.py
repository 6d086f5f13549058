"""The ``crmsync`` command line.

Exit codes: 0 ok, 1 failed, 2 usage error. Every command accepts the global ``--config FILE``;
commands that print results accept ``--json`` for scripting.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from crmsync.errors import CrmsyncError
from crmsync.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(
    name="crmsync",
    help="Marketing database with a native two-way Microsoft Dynamics 365 sync.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML configuration file (default: ./crmsync.toml)."),
    ] = None,
) -> None:
    """Load settings once; sub-commands read them from the context."""
    ctx.obj = config


def settings_from(ctx: typer.Context) -> Settings:
    """Return the settings for this invocation (built lazily so --help never needs a config)."""
    root = ctx.find_root()
    cached = root.meta.get("crmsync.settings")
    if isinstance(cached, Settings):
        return cached
    config = root.obj if isinstance(root.obj, Path) else None
    settings = load_settings(config)
    root.meta["crmsync.settings"] = settings
    return settings


@contextmanager
def database(settings: Settings) -> Iterator[Engine]:
    """The migrated database of ``settings``, disposed when the command is done."""
    from crmsync.store.db import open_database  # only commands that use it pay its import

    engine = open_database(settings.database.url)
    try:
        yield engine
    finally:
        engine.dispose()


def fail(exc: CrmsyncError) -> typer.Exit:
    """Say what went wrong on stderr (the message only, never a traceback); the exit to raise:
    ``raise fail(exc) from None``."""
    print_error(exc.message)
    return typer.Exit(1)


def print_error(message: str) -> None:
    """``error: message`` on stderr, whole: the message's brackets are text, not markup, and
    the terminal wraps the line instead of rich cutting it at the console's width."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def _register() -> None:
    # Imported here so that each sub-command module can import ``app`` helpers from this one;
    # only the module of the command being run is imported.
    from crmsync.cli import commands

    commands.register_for(app, sys.argv[1:])


def _run() -> object:
    _register()
    # In non-standalone mode click returns (not raises) the code of a typer.Exit.
    return app(standalone_mode=False)


def main() -> None:
    """Console-script entry point: run the CLI, mapping crmsync errors to exit code 1."""
    try:
        exit_code = _run()
        if isinstance(exit_code, int) and exit_code:
            sys.exit(exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except CrmsyncError as exc:
        print_error(exc.message)
        sys.exit(1)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        # typer may vendor its own click: recognise a usage error by its interface.
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise
