"""Activity paging never loses an activity (spec marketo-rest §5.2, §5.3; B18).

A reader pages with ``id > last id``. On PostgreSQL ids come from a sequence at insert time
while transactions commit in any order, so an activity with a smaller id could become visible
after a reader has already passed a larger one. The store makes ids follow commit order for
activities; these tests hold one writer's transaction open while another writes, and check that
paging before and after the first commit together returns every activity.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select, text

from crmsync.marketing.activities import ActivityService, decode_paging_token
from crmsync.marketing.activity_types import DELETE_LEAD, NEW_LEAD
from crmsync.store.tables import activities

SINCE = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def _wait_until_blocked_or_done(engine: Engine, writer: threading.Thread, pid: list[int]) -> None:
    """Give the second writer time to insert: until it finished, or (PostgreSQL) it waits for
    a lock, or (SQLite, where it always waits for the write lock) a moment passed."""
    deadline = time.monotonic() + 10
    while writer.is_alive() and time.monotonic() < deadline:
        if engine.dialect.name != "postgresql":
            time.sleep(0.2)
            return
        if pid:
            with engine.connect() as conn:
                waiting = conn.execute(
                    text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted"),
                    {"pid": pid[0]},
                ).scalar_one()
            if waiting:
                return
        time.sleep(0.02)


def _ids(service: ActivityService, token: str, reader: str = "activities") -> tuple[list[int], str]:
    if reader == "lead_changes":
        page = service.lead_changes(token, ["email"])
    elif reader == "deleted_leads":
        page = service.deleted_leads(token)
    else:
        page = service.list(token, [NEW_LEAD])
    return [int(str(item["id"])) for item in page.items], page.next_page_token


@pytest.mark.parametrize("reader", ["activities", "lead_changes", "deleted_leads"])
def test_an_activity_committed_late_is_not_skipped(migrated_engine: Engine, reader: str) -> None:
    """§5.3–5.5: writer A inserts and keeps its transaction open, writer B inserts and commits,
    a reader pages, A commits, the reader pages on: every activity is read exactly once, by
    each of the three paged reads."""
    type_id = DELETE_LEAD if reader == "deleted_leads" else NEW_LEAD
    service = ActivityService(migrated_engine)
    start = service.paging_token(SINCE)
    holder = migrated_engine.connect()
    transaction = holder.begin()
    service.record(holder, 1, type_id, "held", {})
    pid: list[int] = []
    failures: list[BaseException] = []

    def second_writer() -> None:
        try:
            with migrated_engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    pid.append(int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()))
                service.record(conn, 2, type_id, "quick", {})
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    writer = threading.Thread(target=second_writer)
    writer.start()
    try:
        _wait_until_blocked_or_done(migrated_engine, writer, pid)
        first, token = _ids(service, start, reader)
    finally:
        transaction.commit()
        holder.close()
        writer.join(timeout=30)
    assert not failures
    second, _ = _ids(service, token, reader)
    with migrated_engine.connect() as conn:
        stored = [int(i) for i in conn.execute(select(activities.c.id)).scalars()]
    assert sorted(first + second) == sorted(stored) and len(stored) == 2


def test_paging_token_starts_before_every_activity_since(migrated_engine: Engine) -> None:
    """§5.2: the token for ``sinceDatetime`` covers every activity dated at or after it, even
    when a later id carries an earlier date (activities recorded with their own date)."""
    service = ActivityService(migrated_engine)
    with migrated_engine.begin() as conn:
        service.record(conn, 1, NEW_LEAD, "a", {}, activity_date=SINCE.replace(minute=5))
        service.record(conn, 2, NEW_LEAD, "b", {}, activity_date=SINCE.replace(minute=1))
        service.record(conn, 3, NEW_LEAD, "old", {}, activity_date=SINCE.replace(hour=9))
    token = service.paging_token(SINCE)
    ids, _ = _ids(service, token)
    assert len(ids) >= 2
    with migrated_engine.connect() as conn:
        dated = conn.execute(
            select(activities.c.id).where(activities.c.activity_date >= "2026-01-01T10:00:00Z")
        ).scalars()
        assert set(dated) <= set(ids)
    later = service.paging_token(SINCE.replace(year=2030))
    assert _ids(service, later)[0] == []
    assert decode_paging_token(later) == max([*ids, 3])
