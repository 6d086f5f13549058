"""``/readyz`` says whether Dynamics answers (a ``WhoAmI`` at most once per 30 seconds, waited
for a few seconds at most) and why not, without a secret and without making the process
unready."""

from __future__ import annotations

import dataclasses
import threading
import time

from admin_harness import DYNAMICS_SECRET, AdminApp, SyncedAdmin
from sync_harness import engine_client

from crmsync.web.admin.probe import DynamicsProbe, ProbeResult


def test_readiness_says_why_dynamics_cannot_be_reached(admin_sqlite: AdminApp) -> None:
    answer = admin_sqlite.browser().get("/readyz")
    assert answer.status_code == 200  # the pages and APIs serve; the sync waits for Dynamics
    body = answer.json()
    assert body["status"] == "ready"
    assert body["dynamics"]["reachable"] is False
    assert body["dynamics"]["reason"].startswith("Dynamics did not answer: ")
    assert "tenant" in body["dynamics"]["reason"]  # what is missing to connect
    assert DYNAMICS_SECRET not in answer.text


def test_readiness_probes_at_most_every_30_seconds(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    org = {"base": synced_admin.org.base}
    admin.app.state.admin = dataclasses.replace(
        admin.app.state.admin, dynamics_client=lambda: engine_client(org["base"])
    )
    client = admin.browser()
    assert client.get("/readyz").json()["dynamics"] == {"reachable": True}

    org["base"] = "http://127.0.0.1:9"  # the org goes away (nothing listens on port 9)
    admin.clock.now += 10
    assert client.get("/readyz").json()["dynamics"] == {"reachable": True}  # the last answer

    admin.clock.now += 25  # 35 s after the first probe: asked again
    dynamics = client.get("/readyz").json()["dynamics"]
    assert dynamics["reachable"] is False
    assert dynamics["reason"].startswith("Dynamics did not answer: ")


def test_a_probe_that_hangs_is_reported_after_its_timeout() -> None:
    release = threading.Event()

    def hanging() -> ProbeResult:
        release.wait(10)
        return ProbeResult(True)

    probe = DynamicsProbe(hanging, time.monotonic, every=0.0, timeout=0.2)
    started = time.monotonic()
    result = probe.result()
    assert time.monotonic() - started < 2
    assert result == ProbeResult(False, "Dynamics did not answer within 0.2 seconds")
    release.set()
    probe.close()
