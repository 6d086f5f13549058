"""Conformance: Airbyte's Microsoft Dataverse source (check, discover, full and incremental
read with deletions) against the emulator, with only its sign-in host redirected.

The connector (``airbyte-source-microsoft-dataverse``, pinned; it needs pydantic 1 and an old
airbyte-cdk, so it lives in a virtual environment of its own made once under
``.venv/conformance/``) runs as a real process against ``crmsync emulator``. What it must see
follows the pages it was written against: "Web API service documents" (check reads the service
root), "Query table definitions using the Web API" (discover), "Page results" and "Use change
tracking to synchronize data with external systems" (reads, delta tokens, deleted rows).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_process import emulator_process
from pinned_venv import pinned_python

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PACKAGE = "airbyte-source-microsoft-dataverse==1.0.2"
ENTRY = Path(__file__).with_name("conformance_airbyte_entry.py")
LEADS = 20


def connector_python() -> str:
    """The Python of the pinned client's own environment, made once if missing."""
    return pinned_python(PACKAGE)


@pytest.fixture
def org(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with emulator_process(tmp_path, "--seed", str(LEADS), https=False) as details:
        yield details


class Connector:
    """Runs the connector's commands and parses the Airbyte messages they print."""

    def __init__(self, python: str, org: dict[str, Any], workdir: Path) -> None:
        self.python = python
        self.workdir = workdir
        self.env = {**os.environ, "CONFORMANCE_SIGNIN_BASE": org["base_url"]}
        config = {
            "url": org["base_url"],
            "tenant_id": org["tenant"],
            "client_id": org["client_id"],
            "client_secret_value": org["client_secret"],
            "odata_maxpagesize": 7,
        }
        self.config = self.write("config.json", config)

    def write(self, name: str, document: object) -> str:
        path = self.workdir / name
        path.write_text(json.dumps(document))
        return str(path)

    def run(self, *args: str) -> list[dict[str, Any]]:
        done = subprocess.run(
            [self.python, str(ENTRY), *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env,
            cwd=self.workdir,
        )
        assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
        messages = []
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                messages.append(json.loads(line))
        return messages


def _records(messages: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    return [
        m["record"]["data"]
        for m in messages
        if m["type"] == "RECORD" and m["record"]["stream"] == stream
    ]


def _web_api(org: dict[str, Any]) -> httpx.Client:
    token = httpx.post(
        org["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": org["client_id"],
            "client_secret": org["client_secret"],
            "scope": org["scope"],
        },
    ).json()["access_token"]
    return httpx.Client(
        base_url=org["web_api_url"],
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )


def test_airbyte_source_check_discover_and_reads(org: dict[str, Any], tmp_path: Path) -> None:
    """check succeeds; discover offers lead/contact incrementally; a full read returns every
    row across pages; an incremental read from the state returns the change, the new row and
    the deleted rows — contacts deleted by their account's cascade among them."""
    connector = Connector(connector_python(), org, tmp_path)

    status = [
        m
        for m in connector.run("check", "--config", connector.config)
        if m["type"] == "CONNECTION_STATUS"
    ]
    assert status == [{"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}}]

    catalog = next(
        m for m in connector.run("discover", "--config", connector.config) if m["type"] == "CATALOG"
    )
    streams = {s["name"]: s for s in catalog["catalog"]["streams"]}
    assert streams["lead"]["supported_sync_modes"] == ["full_refresh", "incremental"]
    assert streams["lead"]["source_defined_primary_key"] == [["leadid"]]
    assert "emailaddress1" in streams["lead"]["json_schema"]["properties"]
    assert streams["contact"]["supported_sync_modes"] == ["full_refresh", "incremental"]
    assert streams["campaign"]["supported_sync_modes"] == ["full_refresh"]

    configured = connector.write(
        "catalog.json",
        {
            "streams": [
                {
                    "stream": streams[name],
                    "sync_mode": mode,
                    "cursor_field": ["modifiedon"] if mode == "incremental" else [],
                    "destination_sync_mode": "append",
                    "primary_key": streams[name]["source_defined_primary_key"],
                }
                for name, mode in (
                    ("lead", "incremental"),
                    ("contact", "incremental"),
                    ("account", "full_refresh"),
                )
            ]
        },
    )
    first = connector.run("read", "--config", connector.config, "--catalog", configured)
    leads = _records(first, "lead")
    contacts = _records(first, "contact")
    accounts = _records(first, "account")
    assert len({lead["leadid"] for lead in leads}) == LEADS == len(leads)
    assert len(contacts) == LEADS and len(accounts) == LEADS // 5
    states = [m["state"] for m in first if m["type"] == "STATE"]
    assert states, "the first read emits a state with the delta token"

    api = _web_api(org)
    changed, removed = leads[0]["leadid"], leads[1]["leadid"]
    assert (
        api.patch(f"leads({changed})", json={"jobtitle": "Changed in Dynamics"}).status_code == 204
    )
    assert api.delete(f"leads({removed})").status_code == 204
    created = api.post("leads", json={"lastname": "Newcomer", "subject": "New"})
    assert created.status_code == 204
    parent = next(c["_parentcustomerid_value"] for c in contacts if c["_parentcustomerid_value"])
    children = {c["contactid"] for c in contacts if c["_parentcustomerid_value"] == parent}
    assert api.delete(f"accounts({parent})").status_code == 204

    state = connector.write("state.json", states)
    second = connector.run(
        "read", "--config", connector.config, "--catalog", configured, "--state", state
    )
    lead_changes = {r["leadid"]: r for r in _records(second, "lead")}
    assert lead_changes[changed]["jobtitle"] == "Changed in Dynamics"
    assert lead_changes[removed]["_ab_cdc_deleted_at"]
    assert any(r.get("lastname") == "Newcomer" for r in lead_changes.values())
    assert len(lead_changes) == 3
    deleted_contacts = {
        r["contactid"] for r in _records(second, "contact") if r.get("_ab_cdc_deleted_at")
    }
    assert deleted_contacts == children
