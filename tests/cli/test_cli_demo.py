"""``crmsync demo --no-serve`` (issue 2 §5): database, persons, list and API client in ./.demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import Table, func, select
from typer.testing import CliRunner

from crmsync.cli import demo
from crmsync.store import tables
from crmsync.store.db import open_database
from crmsync.web.clients import ApiClientStore

runner = CliRunner()


def _root() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _settings_root(ctx: typer.Context) -> None:
        ctx.obj = None

    root.command("demo")(demo.demo)
    root.command("noop")(lambda: None)
    return root


def _count(url: str, table: Table) -> int:
    engine = open_database(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def test_demo_prepares_everything_and_is_repeatable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Persons are realistic and deterministic; a rerun keeps them and replaces the client."""
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(_root(), ["demo", "--no-serve", "--persons", "150"], env={})
    assert first.exit_code == 0, first.output
    url = f"sqlite:///{tmp_path / '.demo' / 'crmsync.db'}"
    assert _count(url, tables.persons) == 150
    assert 0 < _count(url, tables.list_members) <= 150
    assert "client secret:" in first.stdout and "mc.host" in first.stdout
    second = runner.invoke(_root(), ["demo", "--no-serve", "--persons", "150"], env={})
    assert second.exit_code == 0, second.output
    assert _count(url, tables.persons) == 150
    engine = open_database(url)
    try:
        clients = ApiClientStore(engine).list()
        with engine.connect() as conn:
            emails = sorted(conn.execute(select(tables.persons.c.email)).scalars())
    finally:
        engine.dispose()
    assert [client.active for client in clients] == [False, True]
    assert clients[1].client_id in second.stdout
    assert emails == sorted(str(p["email"]) for p in demo.demo_persons(150))


def test_demo_persons_are_deterministic_and_unique() -> None:
    """The same seed gives the same people; every e-mail is distinct and ASCII."""
    people = demo.demo_persons(300)
    assert people == demo.demo_persons(300)
    emails = [str(person["email"]) for person in people]
    assert len(set(emails)) == 300
    assert all(email.isascii() and "@" in email for email in emails)
    assert json.dumps(people)  # plain JSON values only
