"""A sync user that loses the write privilege on leads, end to end (B41 "permission lost", B43):
real processes on 127.0.0.1 (``crmsync emulator``, ``crmsync serve`` answering a third-party
Marketo client, ``crmsync sync once``), the privilege revoked and granted again through the
emulator's admin API as an administrator would edit the sync user's security role.

Marketing edits made through the REST API stay queued while the privilege is missing, with one
critical notification (not one per record, not one per cycle) and the wait in ``sync status``;
once it is granted again, the next cycle delivers them to Dynamics with the right values.
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
from marketo_server import RunningServer, marketo_client, running_server
from sqlalchemy import select

from crmsync.dynamics.factory import build_client
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.db import open_database
from crmsync.store.tables import crm_links, persons

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def org(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with emulator_process(tmp_path, "--seed", "4", https=False) as details:
        yield details


def _dynamics_env(org: dict[str, Any]) -> dict[str, str]:
    return {
        "CRMSYNC_DYNAMICS_URL": org["base_url"],
        "CRMSYNC_DYNAMICS_AUTHORITY": org["base_url"],
        "CRMSYNC_DYNAMICS_TENANT": org["tenant"],
        "CRMSYNC_DYNAMICS_AUTH_MODE": "adfs",
        "CRMSYNC_DYNAMICS_CLIENT_ID": org["client_id"],
        "CRMSYNC_DYNAMICS_CLIENT_SECRET": org["client_secret"],
        "CRMSYNC_CONFIG": "",
        "NO_COLOR": "1",
    }


def _crmsync(workdir: Path, env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [CRMSYNC, *args],
        cwd=workdir,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def _lead_emails(database_url: str, count: int) -> dict[str, str]:
    """E-mail → Dynamics lead id of ``count`` persons linked to leads."""
    engine = open_database(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(persons.c.email, crm_links.c.crm_id)
                .join(crm_links, crm_links.c.local_id == persons.c.id)
                .where(crm_links.c.entity == "lead", persons.c.email.is_not(None))
                .order_by(persons.c.id)
                .limit(count)
            ).all()
    finally:
        engine.dispose()
    return {str(email): str(crm_id) for email, crm_id in rows}


def _privileges(org: dict[str, Any], **change: list[str]) -> None:
    answer = httpx.patch(
        f"{org['base_url']}/_emulator/privileges",
        json={"table": "lead", **change},
        headers={"X-Emulator-Key": org["admin_key"]},
    )
    answer.raise_for_status()


def _titles_in_dynamics(org: dict[str, Any], lead_ids: list[str]) -> dict[str, object]:
    settings = DynamicsSettings(
        url=org["base_url"],
        authority=org["base_url"],
        auth_mode="adfs",
        client_id=org["client_id"],
        client_secret=Secret(org["client_secret"]),
    )
    with build_client(settings) as client:
        return {
            lead: client.get("leads", lead, ["jobtitle"]).values.get("jobtitle")
            for lead in lead_ids
        }


def _edit_titles(server: RunningServer, titles: dict[str, str]) -> None:
    answer = marketo_client(server).execute(
        method="create_update_leads",
        leads=[{"email": email, "title": title} for email, title in titles.items()],
        action="updateOnly",
        lookupField="email",
    )
    assert [item["status"] for item in answer] == ["updated"] * len(titles)


def test_marketing_edits_wait_for_a_revoked_privilege_and_arrive_once_granted(
    org: dict[str, Any], tmp_path: Path
) -> None:
    env = _dynamics_env(org)
    with running_server(tmp_path, env, setup_by_cli=False) as server:
        database_url = f"sqlite:///{tmp_path / 'crmsync.db'}"
        env["CRMSYNC_DATABASE_URL"] = database_url
        first = _crmsync(tmp_path, env, "sync", "once", "--json")
        assert first["status"] == "ok"
        leads = _lead_emails(database_url, 2)
        assert len(leads) == 2
        before = _titles_in_dynamics(org, list(leads.values()))

        _privileges(org, revoke=["write"])
        wanted = {email: f"Title while revoked {n}" for n, email in enumerate(leads)}
        _edit_titles(server, wanted)
        waiting = [_crmsync(tmp_path, env, "sync", "once", "--json") for _ in range(2)]

        for report in waiting:
            assert report["status"] == "partial"
            assert report["records_failed"] == 0
            assert report["push"]["waiting"] == 2
            assert report["push"]["waiting_for"] == {
                "lead": "permission lost: prvWriteLead missing"
            }
        assert _titles_in_dynamics(org, list(leads.values())) == before
        status = _crmsync(tmp_path, env, "sync", "status", "--json")
        assert [w["entity"] for w in status["writes_waiting"]] == ["lead"]
        assert status["open_errors"] == 0
        assert sum(b["pending_updates"] for b in status["backlog"]) >= 2
        notices = _crmsync(tmp_path, env, "notifications", "list", "--json")
        critical = [n for n in notices if n["severity"] == "critical"]
        assert [n["kind"] for n in critical] == ["permission_lost"]
        assert "prvWriteLead" in critical[0]["message"]

        _privileges(org, grant=["write"])
        resumed = _crmsync(tmp_path, env, "sync", "once", "--json")

        assert resumed["status"] == "ok"
        assert resumed["push"]["updated"] == 2 and resumed["push"]["waiting"] == 0
        titles = _titles_in_dynamics(org, list(leads.values()))
        assert titles == {leads[email]: title for email, title in wanted.items()}
        status = _crmsync(tmp_path, env, "sync", "status", "--json")
        assert status["writes_waiting"] == [] and status["backlog"] == []
        notices = _crmsync(tmp_path, env, "notifications", "list", "--json")
        kinds = sorted(n["kind"] for n in notices if "permission" in n["kind"])
        assert kinds == ["permission_lost", "permission_restored"]
