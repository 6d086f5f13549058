"""Trigger to lead readable in Dynamics (issue 10 "Performance", B32, B48).

``crmsync serve`` runs as its own process on a SQLite database; a trigger campaign ("Person
is Created" -> Sync Person to Microsoft) is active, and a campaign runner with the real-time
push runs here, as ``crmsync sync run`` runs it, against the emulator (its own process). For
each of N persons, one at a time: the person is created through the REST API
(``POST /rest/v1/leads.json``), then the emulator is polled (every 2 ms) until its lead is
readable; the latency is from the request being sent to the lead being read.

Targets: p99 < 500 ms, p50 < 100 ms over 1,000 persons (quick mode: 100).
"""

from __future__ import annotations

import json
import statistics
import time

import httpx

from bench.bench_marketo_api import _start_server, _stop, _token
from bench.campaign_support import campaign_setup
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.settings import SyncSettings
from crmsync.sync.campaign_push import start_campaign_runner
from crmsync.web.clients import ApiClientStore

TARGET_P99_MS = 500
TARGET_P50_MS = 100


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def run(quick: bool) -> dict[str, object]:
    persons = 100 if quick else 1_000
    with campaign_setup() as setup:
        CampaignService(setup.engine).create(
            {
                "name": "Form fill to Dynamics",
                "active": True,
                "triggers": [{"type": "person_created"}],
                "flow": [{"type": "sync_person_to_microsoft"}],
            }
        )
        created = ApiClientStore(setup.engine).create("bench")
        runner = start_campaign_runner(setup.engine, setup.client, SyncSettings())
        server, base = _start_server(setup.url, setup.work)
        latencies: list[float] = []
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                token = _token(http, created.client_id, created.client_secret.reveal())
                http.headers["Authorization"] = f"Bearer {token}"
                dynamics = setup.client.http
                root = setup.client.service_root
                for n in range(persons):
                    email = f"trigger{n}@bench.example"
                    body = {"action": "createOnly", "input": [{"email": email, "lastName": "T"}]}
                    started = time.perf_counter()
                    reply = http.post(
                        "/rest/v1/leads.json",
                        content=json.dumps(body),
                        headers={"Content-Type": "application/json"},
                    )
                    if reply.json()["result"][0]["status"] != "created":
                        raise RuntimeError(f"not created: {reply.text[:200]}")
                    query = f"{root}leads?$select=leadid&$filter=emailaddress1 eq '{email}'"
                    while True:
                        found = dynamics.get(query).json().get("value")
                        if found:
                            break
                        if time.perf_counter() - started > 30:
                            raise RuntimeError(f"no lead for {email} after 30 s")
                        time.sleep(0.002)
                    latencies.append(time.perf_counter() - started)
        finally:
            runner.stop()
            _stop(server)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = _percentile(ordered, 0.99) * 1000
    return {
        "persons": persons,
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "target_p50_ms": TARGET_P50_MS,
        "target_p99_ms": TARGET_P99_MS,
        "met": p50 < TARGET_P50_MS and p99 < TARGET_P99_MS,
    }
