"""``crmsync entities list|enable|disable|status`` against an emulator on 127.0.0.1 (B45): an
admin lists the tables that can be enabled, enables one two levels below contact, the next
sync loads it, status says what is stored, disable keeps the records; mistakes are plain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import dynamics_client, emulated_org_env, group_root
from typer.testing import CliRunner

from crmsync.cli import entities as entities_cli
from crmsync.cli import sync as sync_cli
from crmsync.emulator.config import default_config
from custom_tables import create_row, create_visit_tables

pytestmark = pytest.mark.e2e
runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with emulated_org_env(tmp_path, default_config(), 3) as (environment, _):
        with dynamics_client(environment) as client:
            root = client.service_root
            create_visit_tables(client.http, root)
            contacts = client.http.get(f"{root}/contacts?$select=contactid&$top=1").json()
            contact = contacts["value"][0]["contactid"]
            project = create_row(
                client.http,
                root,
                "new_projects",
                {"new_name": "Alpha", "new_contactid@odata.bind": f"/contacts({contact})"},
            )
            create_row(
                client.http,
                root,
                "new_visits",
                {"new_name": "v1", "new_projectid@odata.bind": f"/new_projects({project})"},
            )
        yield environment


def _run(env: dict[str, str], group: str, *args: str) -> Any:
    app = entities_cli.app if group == "entities" else sync_cli.app
    result = runner.invoke(group_root(app, group), [group, *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_list_enable_load_status_disable(env: dict[str, str]) -> None:
    listed = {row["name"]: row for row in _run(env, "entities", "list", "--json")}
    assert listed["new_visit"]["path"] == (
        "new_visit.new_projectid → new_project.new_contactid → contact"
    )
    assert listed["new_visit"]["enabled"] is False
    text = _run(env, "entities", "list")
    assert "new_visit" in text and "can be enabled" in text

    enabled = _run(env, "entities", "enable", "new_visit", "--field", "new_note", "--json")
    assert enabled["fields"] == ["new_projectid", "new_note"]
    assert enabled["phase"] == "waiting"
    _run(env, "sync", "once")
    (status,) = _run(env, "entities", "status", "--json")
    assert (status["name"], status["phase"], status["records"], status["linked"]) == (
        "new_visit",
        "changes",
        1,
        1,
    )
    assert status["loadedAt"] is not None
    assert "new_visit" in _run(env, "entities", "status")

    said = _run(env, "entities", "disable", "new_visit")
    assert said.strip() == "disabled new_visit: 1 records kept, no longer read"
    (status,) = _run(env, "entities", "status", "--json")
    assert status["enabled"] is False and status["records"] == 1


def test_mistakes_are_answered_plainly(env: dict[str, str]) -> None:
    app = group_root(entities_cli.app, "entities")
    refused = runner.invoke(app, ["entities", "enable", "new_nothing"], env=env)
    said = " ".join(refused.stderr.split())
    assert refused.exit_code == 1
    assert "'new_nothing' cannot be a custom entity" in said
    refused = runner.invoke(app, ["entities", "enable", "new_visit", "--field", "nope"], env=env)
    assert refused.exit_code == 1 and "no readable field named nope" in " ".join(
        refused.stderr.split()
    )
    refused = runner.invoke(app, ["entities", "disable", "new_visit"], env=env)
    assert refused.exit_code == 1 and "was never enabled as a custom entity" in refused.stderr
