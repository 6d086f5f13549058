"""Shared by the ``crmsync fields`` tests against an emulated org: the command groups they run,
the org fixture (four seeded leads, its ``CRMSYNC_*`` environment), and small readers of the
results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from cli_support import emulated_org_env
from sqlalchemy import select
from typer.testing import CliRunner

from crmsync.cli import fields as fields_cli
from crmsync.cli import notifications as notifications_cli
from crmsync.cli import sync as sync_cli
from crmsync.emulator.config import default_config
from crmsync.store.db import open_database
from crmsync.store.tables import crm_links, persons

runner = CliRunner()
LEADS = 4


def fields_root() -> typer.Typer:
    """``crmsync`` with its ``fields``, ``sync`` and ``notifications`` groups, settings from
    the environment alone."""
    root = typer.Typer()

    @root.callback()
    def _settings_root(ctx: typer.Context) -> None:
        ctx.obj = None

    root.add_typer(fields_cli.app, name="fields")
    root.add_typer(sync_cli.app, name="sync")
    root.add_typer(notifications_cli.app, name="notifications")
    return root


@pytest.fixture
def fields_org(tmp_path: Path) -> Iterator[tuple[dict[str, str], Any]]:
    """An emulated org of four leads over HTTP and the environment pointing crmsync at it."""
    with emulated_org_env(tmp_path, default_config(), LEADS) as (env, app):
        yield env, app


def run_ok(env: dict[str, str], *args: str) -> Any:
    """Run a command that must succeed; its JSON when ``--json`` was asked, else its text."""
    result = runner.invoke(fields_root(), list(args), env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def run_refused(env: dict[str, str], *args: str) -> str:
    """Run a command that must fail with exit code 1; its error output on one line."""
    result = runner.invoke(fields_root(), list(args), env=env)
    assert result.exit_code == 1, result.output
    return " ".join(result.stderr.split())  # the console wraps long lines


def first_lead(storage: Any) -> str:
    """The id of the org's first lead."""
    (lead_id,) = storage.execute("SELECT leadid FROM e_lead ORDER BY leadid LIMIT 1").fetchone()
    return str(lead_id)


def lead_person(env: dict[str, str], lead_id: str) -> dict[str, Any]:
    """The person linked to the lead ``lead_id``, as stored."""
    engine = open_database(env["CRMSYNC_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            row = (
                conn.execute(
                    select(persons)
                    .join(crm_links, crm_links.c.local_id == persons.c.id)
                    .where(crm_links.c.entity == "lead", crm_links.c.crm_id == lead_id)
                )
                .mappings()
                .one()
            )
    finally:
        engine.dispose()
    return dict(row)
