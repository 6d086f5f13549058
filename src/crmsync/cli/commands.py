"""Registration of every sub-command group; each group lives in its own module.

A command's module (and what it imports: the sync engine, the web app, the emulator) is loaded
only when that command runs: ``crmsync --help`` and ``crmsync sync status`` answer without
importing the rest. The root help lists every command from the one-line help kept here, which
a test holds equal to each module's own.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

import typer


@dataclass(frozen=True, slots=True)
class Entry:
    """One command of the root: where it lives and its one-line help."""

    name: str
    module: str
    attribute: str
    is_group: bool  # a Typer group (``app``) or a plain command function
    help: str


ENTRIES: tuple[Entry, ...] = (
    Entry("db", "crmsync.cli.db", "app", True, "Database schema: migrate and inspect."),
    Entry("fields", "crmsync.cli.fields", "app", True, "Marketing field catalog."),
    Entry(
        "api-client",
        "crmsync.cli.api_clients",
        "app",
        True,
        "Manage API clients of the Marketo-compatible REST API.",
    ),
    Entry("dynamics", "crmsync.cli.dynamics", "app", True, "Dynamics 365 connection."),
    Entry(
        "sync", "crmsync.cli.sync", "app", True, "The Dynamics sync: run it, switch it, watch it."
    ),
    Entry(
        "notifications",
        "crmsync.cli.notifications",
        "app",
        True,
        "In-app notifications from the sync.",
    ),
    Entry(
        "campaigns",
        "crmsync.cli.campaigns",
        "app",
        True,
        "Smart campaigns: define, edit, switch, run, see results.",
    ),
    Entry(
        "entities",
        "crmsync.cli.entities",
        "app",
        True,
        "Custom entities: Dynamics tables linked to persons or companies, read one way.",
    ),
    Entry("admin", "crmsync.cli.admin", "app", True, "Admin-UI users and API tokens."),
    Entry(
        "serve",
        "crmsync.cli.serve",
        "serve",
        False,
        "Serve the REST API and the admin UI, with the sync, until interrupted.",
    ),
    Entry(
        "demo",
        "crmsync.cli.demo",
        "demo",
        False,
        "Dynamics emulator + marketing database + two-way sync + Marketo API, in ./.demo.",
    ),
    Entry(
        "emulator",
        "crmsync.cli.emulator",
        "emulator",
        False,
        "Serve a local Dataverse Web API emulator until interrupted.",
    ),
)
_BY_NAME = {entry.name: entry for entry in ENTRIES}
_VALUED_OPTIONS = frozenset({"--config", "-c"})


def _add(app: typer.Typer, entry: Entry) -> None:
    module = importlib.import_module(entry.module)
    if entry.is_group:
        app.add_typer(getattr(module, entry.attribute), name=entry.name)
    else:
        app.command(name=entry.name)(getattr(module, entry.attribute))


def _add_placeholder(app: typer.Typer, entry: Entry) -> None:
    """The command as the root's help lists it, without importing its module."""
    if entry.is_group:
        app.add_typer(typer.Typer(help=entry.help), name=entry.name)
    else:

        def placeholder() -> None:
            """Not run: only listed."""

        app.command(name=entry.name, help=entry.help)(placeholder)


def register(app: typer.Typer) -> None:
    """Attach every command group and command to the root app (imports every module)."""
    for entry in ENTRIES:
        _add(app, entry)


def invoked_command(argv: Sequence[str]) -> str | None:
    """The root command ``argv`` runs (``sync`` in ``-c x.toml sync status``), or ``None``."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUED_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def register_for(app: typer.Typer, argv: Sequence[str]) -> None:
    """Attach what ``argv`` needs: the module of the command it runs, the others listed only.

    An unknown command registers everything, so the usage error names what exists."""
    name = invoked_command(argv)
    if name is not None and name not in _BY_NAME:
        register(app)
        return
    for entry in ENTRIES:
        if entry.name == name:
            _add(app, entry)
        else:
            _add_placeholder(app, entry)
