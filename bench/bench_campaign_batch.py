"""A batch campaign's Sync Person to Microsoft for many persons (issue 10 "Performance").

10,000 persons (quick mode: 1,000) are stored in bulk; a batch campaign whose smart list holds
them all runs Sync Person to Microsoft; the campaign runner (here, with the push the running
sync uses) takes everyone through it, and the creates go to the emulator (its own process).
Measured from "run" to the last lead created: persons per second, and the ``$batch`` requests
sent against the minimum, ``ceil(persons / batch size)``.

The runner takes the batch campaign's persons through the flow a chunk at a time (one
transaction per chunk on the marketing side, ``$batch`` requests of the configured size on
the Dynamics side). In the same run, the emulator's raw rate is measured by sending as many
plain lead creates through the same client (``raw_batch_creates_per_s``): the campaign's
rate over it says how much of the Dynamics side's speed the campaign keeps.

Targets: ≥ 2,000 persons/s; requests within 5 % of the minimum.
"""

from __future__ import annotations

import math
import time
import uuid

from bench.bench_marketo_api import _seed_persons
from bench.campaign_support import campaign_setup
from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import WriteRequest
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.sync.campaign_push import ImmediatePush, campaign_runner

TARGET_PERSONS_PER_S = 2_000
TARGET_REQUEST_OVERHEAD = 0.05
BATCH_SIZE = 1000  # the most Dataverse takes in one $batch


def _raw_create_rate(client: DynamicsClient, count: int) -> float:
    """Leads created per second by plain ``$batch`` creates of the client's batch size."""
    requests = [
        WriteRequest.create(
            "lead",
            str(uuid.uuid4()),
            {"lastname": f"Raw {n}", "emailaddress1": f"raw{n}@raw.example"},
        )
        for n in range(count)
    ]
    started = time.perf_counter()
    for start in range(0, count, client.batch_size):
        client.write_batch(requests[start : start + client.batch_size])
    return count / (time.perf_counter() - started)


def run(quick: bool) -> dict[str, object]:
    persons = 1_000 if quick else 10_000
    with campaign_setup(batch_size=BATCH_SIZE) as setup:
        _seed_persons(setup.url, persons)
        service = CampaignService(setup.engine)
        campaign = service.create(
            {
                "name": "Everyone to Dynamics",
                "type": "batch",
                "smartList": {
                    "filters": [
                        {"field": "email", "operator": "contains", "value": "@bench.example"}
                    ]
                },
                "flow": [{"type": "sync_person_to_microsoft"}],
            }
        )
        runner = campaign_runner(setup.engine, push=ImmediatePush(setup.engine, setup.client))
        before = setup.client.stats().requests_by_kind.get("batch", 0)
        started = time.perf_counter()
        cpu_started = time.process_time()
        queued = service.run_batch(campaign.id)
        handled = runner.run_pending()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        sent = setup.client.stats().requests_by_kind.get("batch", 0) - before
        statuses = {str(r["status"]) for r in service.results(campaign.id, limit=1000)}
        raw_rate = _raw_create_rate(setup.client, persons)
    minimum = math.ceil(persons / BATCH_SIZE)
    rate = handled / elapsed
    return {
        "persons": persons,
        "queued": queued,
        "handled": handled,
        "result_statuses": sorted(statuses),
        "run_seconds": round(elapsed, 2),
        "persons_per_s": round(rate),
        "persons_per_engine_cpu_s": round(handled / cpu),
        "raw_batch_creates_per_s": round(raw_rate),
        "share_of_raw_rate": round(rate / raw_rate, 2),
        "batch_requests": sent,
        "batch_requests_minimum": minimum,
        "target_persons_per_s": TARGET_PERSONS_PER_S,
        "met": rate >= TARGET_PERSONS_PER_S and sent <= minimum * (1 + TARGET_REQUEST_OVERHEAD),
    }
