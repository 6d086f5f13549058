"""CLI tables never cut a value at 80 columns (pipes, CI, default terminals): ids, names and
messages are printed whole, as a table when it fits and one record per line when it does not."""

from __future__ import annotations

import io
import json

import typer
from cli_support import group_root
from rich.console import Console
from typer.testing import CliRunner

from crmsync.cli import api_clients, fields
from crmsync.cli.tables import print_records

runner = CliRunner()
NARROW = {"COLUMNS": "80"}


def test_api_client_ids_listed_at_80_columns_can_be_revoked(sqlite_database_url: str) -> None:
    env = {"CRMSYNC_DATABASE_URL": sqlite_database_url, **NARROW}
    root: typer.Typer = group_root(api_clients.app, "api-client")
    long_name = "the nightly export to the data warehouse, owned by the analytics team"
    created = runner.invoke(root, ["api-client", "create", "--name", long_name, "--json"], env=env)
    client_id = json.loads(created.stdout)["client_id"]
    listed = runner.invoke(root, ["api-client", "list"], env=env)
    assert listed.exit_code == 0
    assert client_id in listed.stdout
    assert long_name in " ".join(listed.stdout.split())
    assert "…" not in listed.stdout
    revoked = runner.invoke(root, ["api-client", "revoke", client_id], env=env)
    assert revoked.exit_code == 0, revoked.output


def test_field_names_are_never_split_at_80_columns(sqlite_database_url: str) -> None:
    env = {"CRMSYNC_DATABASE_URL": sqlite_database_url, **NARROW}
    root: typer.Typer = group_root(fields.app, "fields")
    listed = runner.invoke(root, ["fields", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    words = set(listed.stdout.replace("│", " ").replace(";", " ").split())
    for name in ("microsoftAddress2", "microsoftDoNotSendMarketingMaterial", "updatedAt"):
        assert name in words
    assert "…" not in listed.stdout


def test_a_long_message_falls_back_to_one_record_per_line() -> None:
    message = (
        "statecode: 'Dormant' is not one of the allowed options: 'Open', 'Qualified', "
        "'Disqualified'; Correlation ID: 6b65a6a4-8b81-48f6-b38a-08d9d2f1a0c4"
    )
    out = io.StringIO()
    print_records(
        Console(file=out, width=80, color_system=None),
        ["id", "entity", "message"],
        [["1", "lead", message]],
    )
    assert " ".join(out.getvalue().split()) == f"id: 1; entity: lead; message: {message}"


def test_a_table_that_fits_is_a_table() -> None:
    out = io.StringIO()
    print_records(Console(file=out, width=80, color_system=None), ["id", "name"], [["1", "Ada"]])
    assert "┃ id ┃ name ┃" in out.getvalue()
