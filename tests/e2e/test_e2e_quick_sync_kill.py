"""A quick sync killed with SIGKILL mid-way and resumed (B12; DESIGN "nothing is lost").

The emulator, ``crmsync fields quick-sync run`` and ``crmsync sync once`` all run as real
processes over HTTP on 127.0.0.1. Emulator latency slows the quick sync so that the kill lands
inside it. Dynamics edits made while the quick sync is half done reach the marketing database
and are not overwritten by the backfill; the resumed job continues from its stored position
(its count of records read ends equal to the table's size, not above it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_process import CRMSYNC, configure_crmsync, emulator_process
from sqlalchemy import select

from crmsync.dynamics.factory import build_client
from crmsync.dynamics.types import WriteRequest
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.db import open_database
from crmsync.store.tables import crm_links, persons
from crmsync.sync.quick_sync_jobs import load_jobs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LEADS = 200
PAGE = 10


@pytest.fixture
def org(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with emulator_process(
        tmp_path, "--seed", str(LEADS), "--db", str(tmp_path / "org.db"), https=False
    ) as details:
        yield details


def _configure(tmp_path: Path, org: dict[str, Any]) -> tuple[str, dict[str, str]]:
    return configure_crmsync(tmp_path, org, dynamics="page_size = 500\n")


def _faults(org: dict[str, Any], **knobs: Any) -> None:
    httpx.patch(
        f"{org['base_url']}/_emulator/faults",
        json=knobs,
        headers={"X-Emulator-Key": org["admin_key"]},
    ).raise_for_status()


def _crmsync(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [CRMSYNC, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_killed_quick_sync_resumes_and_keeps_live_edits(
    tmp_path: Path, org: dict[str, Any]
) -> None:
    url, env = _configure(tmp_path, org)
    engine = open_database(url)
    settings = DynamicsSettings(
        url=org["base_url"],
        authority=org["base_url"],
        auth_mode="adfs",
        client_id=org["client_id"],
        client_secret=Secret(org["client_secret"]),
    )
    try:
        _crmsync(tmp_path, env, "sync", "once")  # go-live without the column
        saved = json.loads(
            _crmsync(
                tmp_path, env, "fields", "select", "lead", "--add", "websiteurl=website", "--json"
            )
        )
        assert saved["quickSync"] is True

        def job() -> Any:
            with engine.connect() as conn:
                return load_jobs(conn)[0]

        _faults(org, latency_ms=40)
        worker = subprocess.Popen(
            [CRMSYNC, "fields", "quick-sync", "run", "--page-size", str(PAGE)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not PAGE * 3 <= job().records_done <= LEADS - PAGE * 3:
            assert worker.poll() is None, "the quick sync ended before it could be killed"
            assert time.monotonic() < deadline, "the quick sync never got half way"
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        _faults(org, latency_ms=0)
        killed = job()
        assert killed.state == "running" and killed.position is not None
        assert 0 < killed.records_done < LEADS

        with build_client(settings) as client:
            lead_ids = sorted(r.id.lower() for r in client.iter_records("leads", []))
            assert len(lead_ids) == LEADS
            filled_already = next(i for i in lead_ids if i <= killed.position.lower())
            not_yet = next(i for i in lead_ids if i > killed.position.lower())
            results = client.write_batch(
                [
                    WriteRequest.update(
                        "lead", filled_already, {"websiteurl": "https://live.example"}
                    ),
                    WriteRequest.update("lead", not_yet, {"websiteurl": "https://later.example"}),
                ]
            )
            assert all(r.ok for r in results)
            in_dynamics = {
                r.id.lower(): r.values.get("websiteurl")
                for r in client.iter_records("leads", ["websiteurl"])
            }

        # the regular cycle applies the live edits, then the quick sync continues
        report = json.loads(_crmsync(tmp_path, env, "sync", "once", "--json"))
        assert report["push"]["sent"] == 0
        done = job()
        assert done.state == "done"
        assert done.records_done == done.records_total == LEADS  # no page read twice
        with engine.connect() as conn:
            websites = {
                str(crm_id).lower(): website
                for crm_id, website in conn.execute(
                    select(crm_links.c.crm_id, persons.c.website)
                    .join(persons, persons.c.id == crm_links.c.local_id)
                    .where(crm_links.c.entity == "lead")
                )
            }
        assert websites[filled_already] == "https://live.example"
        assert websites[not_yet] == "https://later.example"
        assert websites == {i: in_dynamics[i] for i in websites}
        status = json.loads(_crmsync(tmp_path, env, "fields", "quick-sync", "status", "--json"))
        assert status[0]["state"] == "done" and status[0]["done"] == LEADS
    finally:
        engine.dispose()
