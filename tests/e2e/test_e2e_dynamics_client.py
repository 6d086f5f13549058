"""The Dynamics client against the emulator over real sockets on 127.0.0.1 (spec §1, §3–§8).

``crmsync emulator --port 0 --https --json`` runs as a subprocess; ``build_client`` connects to
it exactly as to a real org: MSAL client credentials (and ROPC) over TLS verified with the
emulator's CA bundle, then reads, change tracking and ``$batch`` writes over HTTPS.
"""

from __future__ import annotations

import json
import math
import os
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_process import CRMSYNC, emulator_process

from crmsync.dynamics.factory import build_client
from crmsync.dynamics.retry import RetryPolicy
from crmsync.dynamics.types import CrmChange, CrmDelete, WriteRequest, WriteStatus
from crmsync.errors import AuthenticationError
from crmsync.settings import DynamicsSettings, Secret

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running emulator over HTTPS with 150 seeded leads; its connection details."""
    work = tmp_path_factory.mktemp("dynamics-e2e")
    with emulator_process(work, "--db", str(work / "org.db"), "--seed", "150") as details:
        yield details


def settings_for(org: dict[str, Any], **overrides: Any) -> DynamicsSettings:
    values: dict[str, Any] = {
        "url": org["base_url"],
        "authority": org["base_url"],
        "tenant": org["tenant"],
        "auth_mode": "client_credentials",
        "client_id": org["client_id"],
        "client_secret": Secret(org["client_secret"]),
        "ca_bundle": org["ca_bundle"],
        "page_size": 40,
        "batch_size": 25,
        "timeout_seconds": 20.0,
    }
    values.update(overrides)
    return DynamicsSettings(**values)


def admin(org: dict[str, Any], method: str, path: str, body: Any = None) -> None:
    response = httpx.request(
        method,
        f"{org['base_url']}/_emulator/{path}",
        json=body,
        headers={"X-Emulator-Key": org["admin_key"]},
        verify=ssl.create_default_context(cafile=org["ca_bundle"]),
    )
    response.raise_for_status()


def test_msal_client_credentials_over_https_reads_pages_and_writes(org: dict[str, Any]) -> None:
    """§1a/§1d: the MSAL path real orgs use, end to end; §3 paging; §6 $batch over TLS."""
    with build_client(settings_for(org)) as client:
        identity = client.who_am_i()
        assert identity.user_id
        records = list(client.iter_records("leads", ["firstname", "lastname", "ownerid"]))
        assert len(records) >= 150
        assert client.stats().requests_by_kind["read"] == math.ceil(len(records) / 40)

        ids = [str(uuid.uuid4()) for _ in range(60)]
        results = client.write_batch(
            [WriteRequest.create("lead", i, {"lastname": "E2E"}) for i in ids]
        )
        assert [r.status for r in results] == [WriteStatus.OK] * 60
        assert client.stats().requests_by_kind["batch"] == math.ceil(60 / 25)
        updates = client.write_batch(
            [
                WriteRequest.update("lead", r.record_id or "", {"jobtitle": "Tester"}, etag=r.etag)
                for r in results
            ]
        )
        assert all(u.status is WriteStatus.OK for u in updates)


def test_change_tracking_and_token_expiry_over_https(org: dict[str, Any]) -> None:
    """§4 delta with tombstones; §1c a revoked token is refreshed once, transparently."""
    with build_client(settings_for(org)) as client:
        cursor = list(client.start_tracking("leads", ["lastname"]))[-1].cursor
        assert cursor is not None
        lead = str(uuid.uuid4())
        client.write_batch([WriteRequest.create("lead", lead, {"lastname": "Tracked"})])
        admin(org, "POST", "expire-tokens")
        client.write_batch([WriteRequest.delete("lead", lead)])
        items = [item for page in client.read_changes(cursor) for item in page.items]
        assert CrmDelete("lead", lead) in items
        assert not any(isinstance(i, CrmChange) and i.record.id == lead for i in items)


def test_throttling_over_real_http_completes_every_write_once(org: dict[str, Any]) -> None:
    """§8: a 429 burst with Retry-After over a real socket; every create lands exactly once."""
    pauses: list[float] = []
    policy = RetryPolicy(max_attempts=20, jitter=0.0)
    with build_client(settings_for(org), retry_policy=policy, sleep=pauses.append) as client:
        client.who_am_i()
        admin(org, "PATCH", "faults", {"throttle_burst": 3, "throttle_retry_after_seconds": 1})
        ids = [str(uuid.uuid4()) for _ in range(30)]
        results = client.write_batch(
            [WriteRequest.create("lead", i, {"lastname": "Burst"}) for i in ids]
        )
        assert all(r.status is WriteStatus.OK for r in results)
        found = [client.exists("leads", i) for i in ids]
        assert all(record is not None for record in found)
        assert client.stats().throttled == 3
        assert pauses and set(pauses) == {1.0}  # Retry-After honoured exactly


@pytest.mark.filterwarnings("ignore:This API has been deprecated:DeprecationWarning")
def test_msal_username_password_acts_as_the_salesperson(org: dict[str, Any]) -> None:
    """§1b: ROPC through MSAL's PublicClientApplication (AD FS-style authority path)."""
    person = org["users"][0]
    settings = settings_for(
        org,
        auth_mode="password",
        tenant="adfs",
        client_id=org["public_client_id"],
        client_secret=Secret(""),
        username=person["upn"],
        password=Secret(person["password"]),
    )
    with build_client(settings) as client:
        assert client.who_am_i().user_id == person["systemuserid"].lower()


def test_wrong_secret_is_an_authentication_error_without_the_secret(org: dict[str, Any]) -> None:
    """§1a error → AuthenticationError (fail the cycle); the secret is in no message (B42)."""
    settings = settings_for(org, client_secret=Secret("definitely-wrong-secret"))
    with build_client(settings) as client, pytest.raises(AuthenticationError) as caught:
        client.who_am_i()
    assert "invalid_client" in str(caught.value)
    assert "definitely-wrong-secret" not in str(caught.value) + repr(caught.value)


def test_dynamics_check_command_reports_the_checklist(org: dict[str, Any], tmp_path: Path) -> None:
    """B43: `crmsync dynamics check --json` with settings from the environment (B42)."""
    env = {
        **os.environ,
        "CRMSYNC_DYNAMICS_URL": org["base_url"],
        "CRMSYNC_DYNAMICS_AUTHORITY": org["base_url"],
        "CRMSYNC_DYNAMICS_TENANT": org["tenant"],
        "CRMSYNC_DYNAMICS_CLIENT_ID": org["client_id"],
        "CRMSYNC_DYNAMICS_CLIENT_SECRET": org["client_secret"],
        "CRMSYNC_DYNAMICS_CA_BUNDLE": org["ca_bundle"],
    }
    done = subprocess.run(
        [CRMSYNC, "dynamics", "check", "--table", "lead", "--table", "contact", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stdout)
    checks = {item["name"]: item for item in report["checks"]}
    assert checks["connect and authenticate (WhoAmI)"]["ok"]
    assert checks["lead: change tracking"]["ok"]
    assert checks["contact: read privilege"]["ok"], checks["contact: read privilege"]
    write = checks["contact: write privileges (create and update)"]
    assert write["ok"] and write["fix"] == "", write
    assert done.returncode == (0 if report["ok"] else 1)
    assert org["client_secret"] not in done.stdout + done.stderr
