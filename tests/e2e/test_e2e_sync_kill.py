"""``crmsync sync once`` killed with SIGKILL mid-cycle and started again: nothing lost, nothing
duplicated, and an interrupted initial read continues where it stopped (B16, B18, B33; DESIGN
"nothing is lost").

The emulator and the sync both run as real processes (``crmsync emulator`` on a free port,
``crmsync sync once`` configured by ``crmsync.toml`` plus the secret in the environment).
Emulator latency slows the cycle down so that the kill lands inside it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_process import CRMSYNC, configure_crmsync, emulator_process
from sqlalchemy import func, select

from crmsync.dynamics.factory import build_client
from crmsync.marketing.persons import PersonService
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.db import open_database
from crmsync.store.tables import crm_links, persons, sync_history, sync_lease, sync_outbox
from crmsync.sync.runner import set_enabled

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LEADS = 60


@pytest.fixture
def org(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with emulator_process(
        tmp_path, "--seed", str(LEADS), "--db", str(tmp_path / "org.db"), https=False
    ) as details:
        yield details


def _configure(tmp_path: Path, org: dict[str, Any]) -> tuple[str, dict[str, str]]:
    return configure_crmsync(
        tmp_path, org, dynamics="page_size = 10\nbatch_size = 5\nconcurrency = 1\n"
    )


def _faults(org: dict[str, Any], **knobs: Any) -> None:
    httpx.patch(
        f"{org['base_url']}/_emulator/faults",
        json=knobs,
        headers={"X-Emulator-Key": org["admin_key"]},
    ).raise_for_status()


def _kill_when(process: subprocess.Popen[Any], ready: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the cycle ended before it could be interrupted"
        assert time.monotonic() < deadline, "the cycle never reached the point to interrupt"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _sync_once(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [CRMSYNC, "sync", "once", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_killed_cycles_resume_without_loss_or_duplicates(
    tmp_path: Path, org: dict[str, Any]
) -> None:
    """SIGKILL during the initial sync, then during the outbox push; the restarted cycles end
    with every record once and every marketing edit in Dynamics."""
    url, env = _configure(tmp_path, org)
    engine = open_database(url)
    try:
        _faults(org, latency_ms=40)

        def links() -> int:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(crm_links)).scalar_one())

        def person_links() -> dict[str, int]:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(crm_links.c.entity, func.count())
                    .where(crm_links.c.local_kind == "person")
                    .group_by(crm_links.c.entity)
                ).all()
            return {str(entity): int(count) for entity, count in rows}

        def inside_a_person_read() -> bool:
            return any(0 < n < LEADS for n in person_links().values())

        first = subprocess.Popen(
            [CRMSYNC, "sync", "once", "--json"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _kill_when(first, inside_a_person_read)
        partial = links()
        interrupted = {e: n for e, n in person_links().items() if 0 < n < LEADS}
        _faults(org, latency_ms=0)
        time.sleep(1.6)  # the killed holder's lease expires
        resumed = {e["entity"]: e for e in _sync_once(tmp_path, env)["entities"]}
        # B16: the interrupted read continued after its last committed page (page size 10).
        assert interrupted
        for entity, done in interrupted.items():
            assert resumed[entity]["mode"] == "initial"
            assert resumed[entity]["pages"] <= math.ceil(LEADS / 10) - done // 10
            assert resumed[entity]["pages"] < math.ceil(LEADS / 10)

        settings = DynamicsSettings(
            url=org["base_url"],
            authority=org["base_url"],
            auth_mode="adfs",
            client_id=org["client_id"],
            client_secret=Secret(org["client_secret"]),
        )
        with build_client(settings) as client:
            in_crm = {
                entity: {r.id for r in client.iter_records(entity_set, [])}
                for entity, entity_set in (("lead", "leads"), ("contact", "contacts"))
            }
        with engine.connect() as conn:
            linked = conn.execute(
                select(crm_links.c.entity, crm_links.c.crm_id, crm_links.c.local_id).where(
                    crm_links.c.local_kind == "person"
                )
            ).all()
            person_count = conn.execute(select(func.count()).select_from(persons)).scalar_one()
        assert partial < len(linked)
        for entity, ids in in_crm.items():
            assert sorted(c for e, c, _ in linked if e == entity) == sorted(ids)
        assert person_count == len(linked) == len({local for _, _, local in linked})

        # Marketing-side edits, then a kill while they are being pushed.
        lead_people = [local for entity, _, local in linked if entity == "lead"][:40]
        service = PersonService(engine)
        service.sync(
            [{"id": pid, "title": f"Edited {pid}"} for pid in lead_people], lookup_field="id"
        )
        _faults(org, latency_ms=60)

        def outbox() -> int:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(sync_outbox)).scalar_one())

        second = subprocess.Popen(
            [CRMSYNC, "sync", "once", "--json"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _kill_when(second, lambda: 0 < outbox() < len(lead_people))
        _faults(org, latency_ms=0)
        time.sleep(1.6)
        _sync_once(tmp_path, env)
        assert outbox() == 0

        with build_client(settings) as client:
            titles = {
                r.id: r.values.get("jobtitle") for r in client.iter_records("leads", ["jobtitle"])
            }
        by_person = {local: crm for entity, crm, local in linked if entity == "lead"}
        for pid in lead_people:
            assert titles[by_person[pid]] == f"Edited {pid}"
        assert len(titles) == len(in_crm["lead"])  # no lead created twice
    finally:
        engine.dispose()


def test_sigterm_finishes_the_cycle_and_releases_the_lease(
    tmp_path: Path, org: dict[str, Any]
) -> None:
    """`crmsync sync run` stopped by SIGTERM (a service manager) ends after its cycle, exits 0
    and leaves no lease behind, so the next start does not wait for it to expire (B15)."""
    url, env = _configure(tmp_path, org)
    env["CRMSYNC_SYNC_PAUSE_SECONDS"] = "0.2"
    env["CRMSYNC_SYNC_LEASE_SECONDS"] = "300"
    engine = open_database(url)
    try:
        set_enabled(engine, True)
        process = subprocess.Popen(
            [CRMSYNC, "sync", "run"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def cycles() -> int:
            with engine.connect() as conn:
                return int(
                    conn.execute(
                        select(func.count())
                        .select_from(sync_history)
                        .where(sync_history.c.kind == "cycle")
                    ).scalar_one()
                )

        deadline = time.monotonic() + 60
        while cycles() < 2:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert "cycle ok" in out
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(sync_lease)).scalar_one() == 0
    finally:
        engine.dispose()


def _lease_rows(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(sync_lease)).scalar_one())


def _inside_a_person_read(engine: Any) -> Any:
    def ready() -> bool:
        with engine.connect() as conn:
            rows = conn.execute(
                select(crm_links.c.entity, func.count())
                .where(crm_links.c.local_kind == "person")
                .group_by(crm_links.c.entity)
            ).all()
        return any(0 < int(count) < LEADS for _, count in rows)

    return ready


def _wait_for(process: subprocess.Popen[Any], ready: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the cycle ended before it could be interrupted"
        assert time.monotonic() < deadline, "the cycle never reached the point to interrupt"
        time.sleep(0.05)


def test_ctrl_c_during_the_initial_sync_is_quick_quiet_and_frees_the_lease(
    tmp_path: Path, org: dict[str, Any]
) -> None:
    """Ctrl-C (SIGINT) mid initial sync: the page in hand is committed, the process exits
    within seconds with one line and no traceback, the lease is gone at once (not after its
    300 s), and the next run continues where this one stopped."""
    url, env = _configure(tmp_path, org)
    env["CRMSYNC_SYNC_LEASE_SECONDS"] = "300"
    engine = open_database(url)
    try:
        _faults(org, latency_ms=40)
        process = subprocess.Popen(
            [CRMSYNC, "sync", "once", "--json"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for(process, _inside_a_person_read(engine))
        interrupted_at = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert time.monotonic() - interrupted_at < 10
        assert process.returncode == 1
        assert "Traceback" not in err
        assert err.strip().splitlines() == [
            "interrupted: the work in hand was finished and committed, the lease released; "
            "the next run continues from there"
        ]
        assert _lease_rows(engine) == 0
        with engine.connect() as conn:
            last = conn.execute(
                select(sync_history.c.status).order_by(sync_history.c.id.desc()).limit(1)
            ).scalar_one()
        assert last == "interrupted"

        _faults(org, latency_ms=0)
        started = time.monotonic()
        report = _sync_once(tmp_path, env)  # no wait for a lease to expire
        assert time.monotonic() - started < 60
        assert report["status"] == "ok"
        assert any(e["mode"] == "initial" and e["note"] for e in report["entities"])
    finally:
        engine.dispose()


def test_status_shows_the_holder_and_a_killed_holder_blocks_nobody(
    tmp_path: Path, org: dict[str, Any]
) -> None:
    """`sync status` names the process running a cycle; once that process is killed (SIGKILL,
    no clean-up at all) the next sync on this host starts at once, not after the lease."""
    url, env = _configure(tmp_path, org)
    env["CRMSYNC_SYNC_LEASE_SECONDS"] = "300"
    engine = open_database(url)
    try:
        _faults(org, latency_ms=150)  # slow pages: the probe sees a read half done
        process = subprocess.Popen(
            [CRMSYNC, "sync", "once", "--json"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(process, _inside_a_person_read(engine))
        _faults(org, latency_ms=1000)  # keep it inside the cycle while we look
        shown = subprocess.run(
            [CRMSYNC, "sync", "status"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert f"sync lease: held by {socket.gethostname()} pid {process.pid} since" in (
            shown.stdout
        )
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        assert _lease_rows(engine) == 1  # the killed process could not release it
        status = json.loads(
            subprocess.run(
                [CRMSYNC, "sync", "status", "--json"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert status["lease_holder"] is None
        _faults(org, latency_ms=0)
        assert _sync_once(tmp_path, env)["status"] == "ok"
    finally:
        engine.dispose()
