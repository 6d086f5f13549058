"""The counts of open sync errors (``sync_error_counts``) stay equal to counting the open
errors themselves, whatever sequence of failures and recoveries writes them, on SQLite and
PostgreSQL; the migration that adds them counts the errors already open."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, insert
from sync_harness import open_error_counts_afresh as counted_afresh
from sync_harness import stored_error_counts as stored_counts

from crmsync.store.db import _alembic_config, upgrade_database
from crmsync.store.tables import now_utc, sync_errors
from crmsync.sync.error_counts import open_error_groups, open_error_total, rebuild_error_counts
from crmsync.sync.failures import ErrorReport, count_open_errors, record_errors, resolve_errors


def _report(entity: str, crm_id: str, code: str | None, direction: str = "to_crm") -> ErrorReport:
    return ErrorReport(entity, direction, "update", "person", 1, crm_id, code, f"failed {code}")


def test_counts_follow_record_refresh_recode_and_resolve(migrated_engine: Engine) -> None:
    with migrated_engine.begin() as conn:
        record_errors(
            conn,
            [
                _report("lead", "a", "0x1"),
                _report("lead", "b", "0x1"),
                _report("contact", "c", None),
                _report("contact", "d", ""),
                _report("lead", "e", "0x2", "to_marketing"),
            ],
        )
        assert (
            stored_counts(conn)
            == counted_afresh(conn)
            == Counter(
                {
                    ("lead", "to_crm", "0x1"): 2,
                    ("contact", "to_crm", ""): 2,
                    ("lead", "to_marketing", "0x2"): 1,
                }
            )
        )
        # "a" fails again with another code: it moves from one group to the other
        record_errors(conn, [_report("lead", "a", "0x3"), _report("lead", "a", "0x4")])
        assert stored_counts(conn) == counted_afresh(conn)
        assert stored_counts(conn)[("lead", "to_crm", "0x4")] == 1
        resolve_errors(conn, "lead", ["a", "b"], "to_crm")
        resolve_errors(conn, "contact", ["c"], "to_crm")
        resolve_errors(conn, "lead", ["e"], "to_crm")  # wrong direction: stays open
    with migrated_engine.connect() as conn:
        assert (
            stored_counts(conn)
            == counted_afresh(conn)
            == Counter({("contact", "to_crm", ""): 1, ("lead", "to_marketing", "0x2"): 1})
        )
        assert open_error_total(conn) == 2 == count_open_errors(conn)
        assert count_open_errors(conn, entity=" Contact ") == 1
        assert count_open_errors(conn, search="0x2") == 1


def test_counts_roll_back_with_the_errors(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as conn:
        with conn.begin() as transaction:
            record_errors(conn, [_report("lead", "a", "0x1")])
            transaction.rollback()
        assert stored_counts(conn) == Counter() == counted_afresh(conn)


OPERATION = st.tuples(
    st.sampled_from(["record", "resolve"]),
    st.sampled_from(["lead", "contact"]),
    st.sampled_from(["to_crm", "to_marketing"]),
    st.lists(st.sampled_from(["r1", "r2", "r3", "r4"]), min_size=1, max_size=4),
    st.sampled_from([None, "", "0x1", "0x2"]),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=st.lists(OPERATION, max_size=12))
def test_counts_equal_a_fresh_count_after_any_sequence(
    migrated_engine: Engine,
    operations: list[tuple[str, str, str, list[str], str | None]],
) -> None:
    """Property: after any sequence of failures (new, repeated, re-coded, several of one
    record in one batch) and recoveries, the counts equal a fresh COUNT(*) GROUP BY."""
    with migrated_engine.connect() as conn, conn.begin() as transaction:
        for action, entity, direction, crm_ids, code in operations:
            if action == "record":
                record_errors(
                    conn, [_report(entity, crm_id, code, direction) for crm_id in crm_ids]
                )
            else:
                resolve_errors(conn, entity, crm_ids, direction)
            assert stored_counts(conn) == counted_afresh(conn)
        assert open_error_groups(conn) == counted_afresh(conn)
        transaction.rollback()


def test_rebuild_counts_errors_stored_without_the_counting_code(migrated_engine: Engine) -> None:
    stamp = now_utc()
    row = {
        "direction": "to_crm",
        "operation": "update",
        "message": "m",
        "attempts": 1,
        "first_seen": stamp,
        "last_seen": stamp,
    }
    with migrated_engine.begin() as conn:
        record_errors(conn, [_report("lead", "a", "0x9")])
        conn.execute(
            insert(sync_errors),
            [
                {**row, "entity": "lead", "error_code": "0x1", "resolved_at": None},
                {**row, "entity": "lead", "error_code": None, "resolved_at": None},
                {**row, "entity": "lead", "error_code": "0x1", "resolved_at": stamp},
            ],
        )
        rebuild_error_counts(conn)
        assert stored_counts(conn) == counted_afresh(conn)
        assert open_error_total(conn) == 3


def test_the_migration_counts_the_errors_already_open(unmigrated_database_url: str) -> None:
    stamp = now_utc()
    row = {"operation": "update", "message": "m", "attempts": 1}
    engine = create_engine(unmigrated_database_url)
    try:
        with engine.begin() as conn:
            config = _alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0017_smartlist_filter_indexes")
        with engine.begin() as conn:
            conn.execute(
                insert(sync_errors).values(
                    [
                        {**row, "entity": e, "direction": d, "error_code": c, "resolved_at": r}
                        | {"first_seen": stamp, "last_seen": stamp}
                        for e, d, c, r in (
                            ("lead", "to_crm", "0x1", None),
                            ("lead", "to_crm", "0x1", None),
                            ("lead", "to_crm", "0x1", stamp),
                            ("lead", "to_crm", None, None),
                            ("lead", "to_crm", "", None),
                            ("contact", "to_marketing", "0x2", None),
                        )
                    ]
                )
            )
    finally:
        engine.dispose()
    upgrade_database(unmigrated_database_url)
    engine = create_engine(unmigrated_database_url)
    try:
        with engine.begin() as conn:
            assert (
                stored_counts(conn)
                == counted_afresh(conn)
                == Counter(
                    {
                        ("lead", "to_crm", "0x1"): 2,
                        ("lead", "to_crm", ""): 2,
                        ("contact", "to_marketing", "0x2"): 1,
                    }
                )
            )
    finally:
        engine.dispose()


def test_a_recoded_error_closed_meanwhile_leaves_the_counts_right(
    migrated_engine: Engine,
) -> None:
    """Two writers at once: one closes an error while the other refreshes it with a new code
    (the refresh waits on the closing transaction's row lock). The counts still equal a fresh
    count. Only PostgreSQL runs the two at once; SQLite lets one writer in at a time."""
    if migrated_engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers")
    with migrated_engine.begin() as conn:
        record_errors(conn, [_report("lead", "a", "0x1")])
    closing = migrated_engine.connect()
    closing.begin()
    resolve_errors(closing, "lead", ["a"], "to_crm")  # holds the row until it commits
    failed: list[BaseException] = []

    def refresh() -> None:
        try:
            with migrated_engine.begin() as conn:
                record_errors(conn, [_report("lead", "a", "0x2")])
        except BaseException as exc:  # reported by the test below
            failed.append(exc)

    writer = threading.Thread(target=refresh)
    writer.start()
    time.sleep(0.5)  # the refresh has read the error as open and waits on its row
    closing.commit()
    closing.close()
    writer.join(timeout=30)
    assert not writer.is_alive() and not failed
    with migrated_engine.connect() as conn:
        assert stored_counts(conn) == counted_afresh(conn)
