"""B32/B48 end to end: persons created through the Marketo REST API fire a trigger campaign
whose Sync Person to Microsoft step creates their leads in the emulated Dynamics org in real
time, with the campaign runner in its background thread and no sync cycle in between."""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sync_harness import Org

from crmsync.dynamics.client import DynamicsClient
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.settings import Settings, SyncSettings
from crmsync.store.tables import persons
from crmsync.sync.campaign_push import start_campaign_runner
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.runner import set_enabled
from crmsync.web.app import create_app
from crmsync.web.clients import ApiClientStore

with warnings.catch_warnings():
    # Starlette suggests another HTTP package for its test client; httpx is what we use.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def rest_api(migrated_engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = create_app(Settings(), engine=migrated_engine)
    created = ApiClientStore(migrated_engine).create("campaign tests")
    with TestClient(app) as http:
        reply = http.get(
            "/identity/oauth/token",
            params={
                "grant_type": "client_credentials",
                "client_id": created.client_id,
                "client_secret": created.client_secret.reveal(),
            },
        )
        assert reply.status_code == 200, reply.text
        yield http, {"Authorization": f"Bearer {reply.json()['access_token']}"}


def _lead_of(engine: Engine, person_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(persons.c.crmLeadId).where(persons.c.id == person_id)).scalar()


def test_rest_api_person_reaches_dynamics_in_real_time(
    migrated_engine: Engine,
    synced: tuple[Org, DynamicsClient, SyncCycle],
    rest_api: tuple[TestClient, dict[str, str]],
) -> None:
    org, client, _ = synced
    http, auth = rest_api
    set_enabled(migrated_engine, True)
    CampaignService(migrated_engine).create(
        {
            "name": "Form fill to Dynamics",
            "active": True,
            "triggers": [{"type": "person_created"}],
            "flow": [{"type": "sync_person_to_microsoft"}],
        }
    )
    leads_before = org.app.state.storage.count("lead")
    runner = start_campaign_runner(migrated_engine, client, SyncSettings())
    latencies: list[float] = []
    try:
        for n in range(10):
            started = time.monotonic()
            reply = http.post(
                "/rest/v1/leads.json",
                json={
                    "action": "createOnly",
                    "lookupField": "email",
                    "input": [{"email": f"form{n}@example.com", "lastName": f"Form {n}"}],
                },
                headers=auth,
            )
            person_id = reply.json()["result"][0]["id"]
            lead_id = None
            while lead_id is None and time.monotonic() - started < 10:
                lead_id = _lead_of(migrated_engine, person_id)
                time.sleep(0.002)
            latencies.append(time.monotonic() - started)
            assert lead_id is not None, "the lead was not created"
            row = org.row("lead", lead_id)
            assert row is not None and row["lastname"] == f"Form {n}"
    finally:
        runner.stop()
    assert org.app.state.storage.count("lead") == leads_before + 10
    # B48 asks for p99 < 0.5 s; a loaded test machine gets slack, a 30 s cycle pause none.
    assert statistics.median(latencies) < 1.0, latencies
    assert max(latencies) < 3.0, latencies
