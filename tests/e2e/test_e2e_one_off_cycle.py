"""A one-off ``crmsync sync once`` on a quiet org asks Dynamics only for what changed: the
schemas kept from the previous run are checked with one ``RetrieveMetadataChanges``, so the
cycle costs at most one request per entity plus two. A column added in Dynamics makes the next
run read that one table again; expired version stamps make it read every table again.

Real processes: ``crmsync emulator`` on a free port, ``crmsync sync once`` as a user runs it;
requests are counted by the emulator itself (``/_emulator/stats``).
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
from emulator_process import CRMSYNC, emulator_process

from crmsync.store.db import open_database
from crmsync.store.key_values import get_setting
from crmsync.sync.stored_schemas import SETTING_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ENTITIES = 6  # systemuser, team, account, lead, contact, opportunity


@pytest.fixture
def org(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with emulator_process(tmp_path, "--seed", "10", https=False) as details:
        yield details


def _env(tmp_path: Path, org: dict[str, Any]) -> dict[str, str]:
    (tmp_path / "crmsync.toml").write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "crmsync.db"}"\n\n'
        f'[dynamics]\nurl = "{org["base_url"]}"\nauthority = "{org["base_url"]}"\n'
        f'tenant = "{org["tenant"]}"\nauth_mode = "adfs"\nclient_id = "{org["client_id"]}"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "NO_COLOR": "1", "CRMSYNC_DYNAMICS_CLIENT_SECRET": org["client_secret"]}
    env.pop("CRMSYNC_CONFIG", None)
    return env


def _crmsync(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [CRMSYNC, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _emulator_requests(org: dict[str, Any]) -> int:
    stats = httpx.get(
        f"{org['base_url']}/_emulator/stats",
        headers={"x-emulator-key": org["admin_key"]},
        timeout=10,
    )
    assert stats.status_code == 200, stats.text
    return int(stats.json()["api_requests"])


def _one_off(tmp_path: Path, env: dict[str, str], org: dict[str, Any]) -> tuple[int, int]:
    """Run ``crmsync sync once --json``: (requests the emulator answered, requests reported)."""
    before = _emulator_requests(org)
    report = json.loads(_crmsync(tmp_path, env, "sync", "once", "--json").stdout)
    assert report["status"] == "ok", report
    return _emulator_requests(org) - before, int(report["api_calls"])


def test_a_quiet_one_off_cycle_costs_one_request_per_entity_plus_two(
    tmp_path: Path, org: dict[str, Any]
) -> None:
    env = _env(tmp_path, org)
    _crmsync(tmp_path, env, "db", "upgrade")
    first, _ = _one_off(tmp_path, env, org)  # initial sync: every schema read
    assert first > 3 * ENTITIES

    quiet, reported = _one_off(tmp_path, env, org)
    assert quiet <= ENTITIES + 2, f"a quiet one-off cycle cost {quiet} requests"
    assert reported == quiet

    column = httpx.post(
        f"{org['web_api_url']}EntityDefinitions(LogicalName='lead')/Attributes",
        json={
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": "new_Hobby",
        },
        headers={"Authorization": f"Bearer {_token(org)}"},
        timeout=10,
    )
    assert column.status_code == 204, column.text
    changed, _ = _one_off(tmp_path, env, org)
    assert ENTITIES + 2 < changed < first  # the lead's schema read again, no other
    assert _one_off(tmp_path, env, org)[0] <= ENTITIES + 2  # and kept from then on
    kept = _kept_schemas(tmp_path)
    assert "new_hobby" in {a["logical_name"] for a in kept["lead"]["attributes"]}


def test_expired_version_stamps_read_every_schema_again(
    tmp_path: Path, org: dict[str, Any]
) -> None:
    env = _env(tmp_path, org)
    _crmsync(tmp_path, env, "db", "upgrade")
    _one_off(tmp_path, env, org)
    expired = httpx.post(
        f"{org['base_url']}/_emulator/expire-delta-tokens",
        headers={"x-emulator-key": org["admin_key"]},
        timeout=10,
    )
    assert expired.status_code in (200, 204), expired.text
    again, _ = _one_off(tmp_path, env, org)  # stamp refused: every schema read again
    assert again > 3 * ENTITIES
    assert _one_off(tmp_path, env, org)[0] <= ENTITIES + 2


def _kept_schemas(tmp_path: Path) -> dict[str, Any]:
    """The schemas the database keeps between runs, by table."""
    engine = open_database(f"sqlite:///{tmp_path / 'crmsync.db'}")
    try:
        with engine.connect() as conn:
            value = get_setting(conn, SETTING_KEY)
    finally:
        engine.dispose()
    assert isinstance(value, dict)
    schemas = value["schemas"]
    assert isinstance(schemas, dict)
    return schemas


def _token(org: dict[str, Any]) -> str:
    response = httpx.post(
        org["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": org["client_id"],
            "client_secret": org["client_secret"],
            "scope": org["scope"],
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
