"""Registration of every sub-command group; each group lives in its own module."""

from __future__ import annotations

import importlib

import typer

# (module, attribute, name) — a module exposes either a Typer group or a plain command function.
_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("crmsync.cli.db", "app", "db"),
    ("crmsync.cli.fields", "app", "fields"),
    ("crmsync.cli.api_clients", "app", "api-client"),
    ("crmsync.cli.dynamics", "app", "dynamics"),
    ("crmsync.cli.sync", "app", "sync"),
    ("crmsync.cli.notifications", "app", "notifications"),
    ("crmsync.cli.campaigns", "app", "campaigns"),
    ("crmsync.cli.admin", "app", "admin"),
)
_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("crmsync.cli.serve", "serve", "serve"),
    ("crmsync.cli.demo", "demo", "demo"),
    ("crmsync.cli.emulator", "emulator", "emulator"),
)


def register(app: typer.Typer) -> None:
    """Attach every command group and command to the root app."""
    for module_name, attribute, name in _GROUPS:
        module = importlib.import_module(module_name)
        app.add_typer(getattr(module, attribute), name=name)
    for module_name, attribute, name in _COMMANDS:
        module = importlib.import_module(module_name)
        app.command(name=name)(getattr(module, attribute))
