"""The ``crmsync`` console script.

``crmsync [-c FILE] sync status [--json]``, the command people run most to see how the sync
is doing, is answered here without loading the command-line framework (typer, click and the
pydantic they bring), so it returns in well under half a second. Every other command, and any
other form of this one (``--help`` included), goes to :func:`crmsync.cli.main`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from crmsync.errors import CrmsyncError


def quick_status(argv: list[str]) -> bool | None:
    """For ``[-c FILE] sync status [--json]`` exactly, whether ``--json`` was given; for any
    other command line ``None``."""
    rest = list(argv)
    if len(rest) >= 2 and rest[0] in ("-c", "--config"):
        rest = rest[2:]
    elif rest and rest[0].startswith("--config="):
        rest = rest[1:]
    if rest == ["sync", "status"]:
        return False
    if rest == ["sync", "status", "--json"]:
        return True
    return None


def config_path(argv: list[str]) -> Path | None:
    """The ``--config`` file named before the command, if any."""
    if len(argv) >= 2 and argv[0] in ("-c", "--config"):
        return Path(argv[1])
    if argv and argv[0].startswith("--config="):
        return Path(argv[0].removeprefix("--config="))
    return None


def main() -> None:
    """Console-script entry point: ``sync status`` at once, everything else through the CLI."""
    argv = sys.argv[1:]
    as_json = quick_status(argv)
    if as_json is None:
        from crmsync.cli import main as cli_main

        cli_main()
        return
    from rich.console import Console
    from rich.markup import escape

    from crmsync.settings import load_settings
    from crmsync.status_text import show_status

    try:
        show_status(lambda: load_settings(config_path(argv)), as_json=as_json)
    except CrmsyncError as exc:
        # as the CLI says it: ``error: message``, whole, never cut at the console's width
        Console(stderr=True).print(
            f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True
        )
        sys.exit(1)
