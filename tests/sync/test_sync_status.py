"""``read_status``: backlog per entity with the oldest pending change, last cycle, last-hour
throughput and API calls, open errors (B40)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from crmsync.marketing.persons import PersonService
from crmsync.store.tables import persons
from crmsync.sync.state import ErrorReport, insert_history, record_errors
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
                    "details": {"records_synced": 1000},
                },
                {
                    "kind": "cycle",
                    "status": "ok",
                    "started_at": now - timedelta(minutes=5),
                    "finished_at": now - timedelta(minutes=5) + timedelta(seconds=2),
                    "api_calls": 7,
                    "details": {"records_synced": 12},
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
    assert status.cycles_last_hour == 1 and status.records_synced_last_hour == 12
    assert status.api_calls_last_hour == 7 and status.open_errors == 1
    assert status.as_dict()["backlog"][0]["entity"] == "lead"
