"""A campaign runner *process* killed with SIGKILL in the middle of a Sync Person to Microsoft
step, then started again: exactly one lead in Dynamics, and the step completed once (one
result row, one activity), whether or not Dynamics had already created the lead when the
runner died (B33; DESIGN "nothing is lost").

The emulator runs as its own process with latency on ``$batch`` requests only, so the kill
lands deterministically while the step's create is on its way to Dynamics: after the step's
transaction committed (its result, the person's link with the chosen record id, the outbox
entry) and before the push could record the answer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_process import emulator_process
from sqlalchemy import func, select

from crmsync.dynamics.factory import build_client
from crmsync.marketing.activity_types import SYNC_LEAD_TO_MICROSOFT
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.persons import PersonService
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.db import open_database, upgrade_database
from crmsync.store.tables import (
    activities,
    campaign_events,
    campaign_results,
    crm_links,
    sync_outbox,
)
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.runner import set_enabled

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LATENCY_MS = 4000
SHORT_SECONDS = 1.5  # the runner's claims and the push's sync lease

RUNNER = """
import json, sys
from crmsync.dynamics.factory import build_client
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.db import open_database
from crmsync.sync.campaign_push import ImmediatePush, campaign_runner
url, org, short = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])
engine = open_database(url)
settings = DynamicsSettings(
    url=org["base_url"], authority=org["base_url"], auth_mode="adfs",
    client_id=org["client_id"], client_secret=Secret(org["client_secret"]),
)
with build_client(settings) as client:
    push = ImmediatePush(engine, client, lease_seconds=short)
    runner = campaign_runner(engine, push=push, claim_seconds=short, client=client)
    print(runner.run_pending())
"""


@pytest.fixture
def org(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with emulator_process(tmp_path, "--seed", "5", https=False) as details:
        yield details


def _admin(org: dict[str, Any], method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = httpx.request(
        method,
        f"{org['base_url']}/_emulator/{path}",
        json=body,
        headers={"X-Emulator-Key": org["admin_key"]},
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def _runner(url: str, org: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, url, json.dumps(org), str(SHORT_SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_runner_killed_during_sync_person_to_microsoft_makes_one_lead_and_finishes_the_step(
    tmp_path: Path, org: dict[str, Any]
) -> None:
    url = f"sqlite:///{tmp_path / 'crmsync.db'}"
    upgrade_database(url)
    engine = open_database(url)
    settings = DynamicsSettings(
        url=org["base_url"],
        authority=org["base_url"],
        auth_mode="adfs",
        client_id=org["client_id"],
        client_secret=Secret(org["client_secret"]),
    )
    try:
        with build_client(settings) as client:
            SyncCycle(engine, client).run()
            set_enabled(engine, True)
            campaign = CampaignService(engine).create(
                {
                    "name": "New people to Dynamics",
                    "active": True,
                    "triggers": [{"type": "person_created"}],
                    "flow": [{"type": "sync_person_to_microsoft"}],
                }
            )
            (created,) = PersonService(engine).sync(
                [{"email": "killed@example.com", "lastName": "Killed", "company": "Kill Co"}]
            )
            person_id = created.id
            assert person_id is not None
            _admin(org, "PATCH", "faults", {"latency_ms": LATENCY_MS, "path_contains": "$batch"})

            first = _runner(url, org)

            def create_on_its_way() -> bool:
                faults = _admin(org, "GET", "stats")["faults_injected"]
                return int(faults.get("latency", 0)) >= 1

            deadline = time.monotonic() + 60
            while not create_on_its_way():
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline, "the step's create never left the runner"
                time.sleep(0.05)
            with engine.connect() as conn:  # the step committed before its create was sent
                committed = conn.execute(
                    select(campaign_results.c.status).where(
                        campaign_results.c.campaign_id == campaign.id
                    )
                ).all()
            assert [tuple(r) for r in committed] == [("done",)]
            os.kill(first.pid, signal.SIGKILL)
            first.communicate(timeout=10)
            assert first.returncode == -signal.SIGKILL

            _admin(org, "PUT", "faults", {})  # the restarted runner meets no latency
            # the killed runner's claim and lease run out (and the emulator has finished
            # whatever it was doing with the request in flight)
            time.sleep(LATENCY_MS / 1000 + SHORT_SECONDS)
            again = _runner(url, org)
            _, err = again.communicate(timeout=120)
            assert again.returncode == 0, err

            leads = [
                record
                for record in client.iter_records(
                    "leads", ["emailaddress1"], filter="emailaddress1 eq 'killed@example.com'"
                )
            ]
        assert len(leads) == 1
        with engine.connect() as conn:
            (linked,) = conn.execute(
                select(crm_links.c.entity, crm_links.c.crm_id).where(
                    crm_links.c.local_kind == "person", crm_links.c.local_id == person_id
                )
            ).all()
            results = conn.execute(
                select(campaign_results.c.step_index, campaign_results.c.status).where(
                    campaign_results.c.campaign_id == campaign.id
                )
            ).all()
            logged = conn.execute(
                select(func.count()).where(
                    activities.c.person_id == person_id,
                    activities.c.type_id == SYNC_LEAD_TO_MICROSOFT,
                    activities.c.campaign_id == campaign.id,
                )
            ).scalar_one()
            unprocessed = conn.execute(
                select(func.count()).where(
                    campaign_events.c.campaign_id == campaign.id,
                    campaign_events.c.processed_at.is_(None),
                )
            ).scalar_one()
            queued = conn.execute(select(func.count()).select_from(sync_outbox)).scalar_one()
        assert tuple(linked) == ("lead", leads[0].id)
        assert [tuple(r) for r in results] == [(1, "done")]
        assert logged == 1
        assert unprocessed == 0
        assert queued == 0
    finally:
        engine.dispose()
