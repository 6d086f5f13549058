"""``read_status``: backlog per entity with the oldest pending change, last cycle, last-hour
throughput and API calls, open errors (B40)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update
from sync_harness import engine_client, running_org

from crmsync.emulator.config import default_config
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import persons
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.failures import ErrorReport, record_errors
from crmsync.sync.history import insert_history
from crmsync.sync.status import read_status


def test_status_reports_backlog_cycles_and_errors(migrated_engine: Engine) -> None:
    service = PersonService(migrated_engine)
    outcomes = service.sync([{"email": f"p{n}@example.com", "lastName": f"P{n}"} for n in range(3)])
    lead_id = outcomes[0].id
    with migrated_engine.begin() as conn:
        conn.execute(update(persons).where(persons.c.id == lead_id).values(crmType="Lead"))
    service.sync([{"id": lead_id, "city": "Oslo"}], lookup_field="id")
    now = datetime.now(UTC)
    with migrated_engine.begin() as conn:
        insert_history(
            conn,
            [
                {
                    "kind": "cycle",
                    "status": "ok",
                    "started_at": now - timedelta(hours=2),
                    "finished_at": now - timedelta(hours=2),
                    "api_calls": 100,
                    "details": {"records_synced": 1000, "traffic": _traffic(track=100)},
                },
                {
                    "kind": "cycle",
                    "status": "ok",
                    "started_at": now - timedelta(minutes=5),
                    "finished_at": now - timedelta(minutes=5) + timedelta(seconds=2),
                    "api_calls": 7,
                    "details": {"records_synced": 12, "traffic": _traffic(delta=6, batch=1)},
                },
                {
                    "kind": "cycle",
                    "status": "ok",
                    "started_at": now - timedelta(minutes=10),
                    "finished_at": now - timedelta(minutes=10),
                    "api_calls": 3,
                    "details": {"records_synced": 0, "traffic": _traffic(delta=2, metadata=1)},
                },
            ],
        )
        record_errors(conn, [ErrorReport("lead", "to_crm", "update", "person", 1, "c", None, "x")])

    status = read_status(migrated_engine, now=now)

    backlog = {b.entity: b for b in status.backlog}
    assert backlog["lead"].pending_creates == 1 and backlog["lead"].pending_updates == 1
    assert backlog["unlinked"].pending_creates == 2
    assert status.oldest_pending is not None and status.oldest_pending <= now
    assert status.last_cycle_status == "ok" and status.last_cycle_api_calls == 7
    assert status.last_cycle_duration_seconds == 2.0
    assert status.cycles_last_hour == 2 and status.records_synced_last_hour == 12
    assert status.api_calls_last_hour == 10 and status.open_errors == 1
    traffic = status.traffic_last_hour
    assert traffic.requests_by_kind == {"batch": 1, "delta": 8, "metadata": 1}
    assert traffic.throttled == 2 and traffic.retries == 4 and traffic.transport_errors == 0
    assert traffic.bytes_sent == 2_000 and traffic.bytes_received == 20_000
    assert status.as_dict()["backlog"][0]["entity"] == "lead"


def _traffic(**by_kind: int) -> dict[str, object]:
    """A cycle's traffic as the cycle records it: one 429, two retries, 1 kB out, 10 kB in."""
    return {
        "requests_by_kind": by_kind,
        "throttled": 1,
        "retries": 2,
        "transport_errors": 0,
        "bytes_sent": 1_000,
        "bytes_received": 10_000,
    }


def test_status_names_the_sync_user_once_a_cycle_met_it(migrated_engine: Engine) -> None:
    """The sync user is shown by name (as people know it in Dynamics), never as a GUID."""
    assert read_status(migrated_engine).sync_user is None
    with running_org(default_config(), 2) as org, engine_client(org.base) as client:
        assert SyncCycle(migrated_engine, client).run().status == "ok"
    app_user = org.config.users[0]
    status = read_status(migrated_engine)
    assert status.sync_user == app_user.fullname
    assert status.as_dict()["sync_user"] == app_user.fullname
