"""``crmsync fields add-local`` / ``crmsync fields list`` (issue 2 §3, B10)."""

from __future__ import annotations

import json

import typer
from cli_support import group_root
from typer.testing import CliRunner

from crmsync.cli import fields

runner = CliRunner()


def _root() -> typer.Typer:
    return group_root(fields.app, "fields")


def _env(url: str) -> dict[str, str]:
    return {"CRMSYNC_DATABASE_URL": url}


def test_add_local_field_then_list_it(sqlite_database_url: str) -> None:
    """A marketing-only field appears in the catalog as custom with its type and length."""
    added = runner.invoke(
        _root(),
        [
            "fields",
            "add-local",
            "--object",
            "person",
            "--name",
            "favouriteColour",
            "--display",
            "Favourite colour",
            "--type",
            "string",
            "--length",
            "100",
        ],
        env=_env(sqlite_database_url),
    )
    assert added.exit_code == 0, added.output
    assert "favouriteColour" in added.stdout
    listed = runner.invoke(_root(), ["fields", "list", "--json"], env=_env(sqlite_database_url))
    assert listed.exit_code == 0
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["favouriteColour"]["custom"] is True
    assert rows["favouriteColour"]["length"] == 100
    assert rows["favouriteColour"]["displayName"] == "Favourite colour"
    assert rows["email"]["custom"] is False and rows["crmType"]["readOnly"] is True
    table = runner.invoke(
        _root(), ["fields", "list"], env={**_env(sqlite_database_url), "COLUMNS": "200"}
    )
    assert table.exit_code == 0 and "favouriteColour" in table.stdout


def test_clash_and_unknown_type_fail_with_exit_1(sqlite_database_url: str) -> None:
    """A name clash (any case) or an unknown type is refused with a clear message."""
    base = ["fields", "add-local", "--display", "X"]
    clash = runner.invoke(
        _root(), [*base, "--name", "EMAIL", "--type", "string"], env=_env(sqlite_database_url)
    )
    assert clash.exit_code == 1 and "already has a field" in clash.output
    bad_type = runner.invoke(
        _root(), [*base, "--name", "shoe", "--type", "colour"], env=_env(sqlite_database_url)
    )
    assert bad_type.exit_code == 1 and "unknown data type" in bad_type.output
    bad_object = runner.invoke(
        _root(), ["fields", "list", "--object", "spaceship"], env=_env(sqlite_database_url)
    )
    assert bad_object.exit_code == 1


def test_unmigrated_database_names_the_upgrade_command(tmp_path: object) -> None:
    """Commands refuse an unmigrated database naming `crmsync db upgrade`."""
    result = runner.invoke(_root(), ["fields", "list"], env=_env(f"sqlite:///{tmp_path}/empty.db"))
    assert result.exit_code == 1
    assert "crmsync db upgrade" in result.output
