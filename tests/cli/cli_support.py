"""Shared by the CLI tests: one command group mounted under a root app, as ``crmsync`` does."""

from __future__ import annotations

import typer


def group_root(group: typer.Typer, name: str) -> typer.Typer:
    """A root app with ``group`` mounted as ``name``.

    Its callback stores no ``--config`` path in the context, as ``crmsync`` without
    ``--config`` does, so the commands read their settings from the environment alone.
    """
    root = typer.Typer()

    @root.callback()
    def _settings_root(ctx: typer.Context) -> None:
        ctx.obj = None

    root.add_typer(group, name=name)
    return root
