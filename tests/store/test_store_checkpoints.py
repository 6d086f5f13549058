"""SQLite's WAL checkpoints taken between the pages of a long load instead of in its commits:
the commits leave the log alone, the connection gets its setting back, every row is kept and
the read ends with the log copied into the database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from crmsync.store.checkpoints import AUTOCHECKPOINT_PAGES, PagedCheckpoints
from crmsync.store.db import open_database
from crmsync.store.inserts import insert_many
from crmsync.store.tables import sync_baselines

STAMP = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ROWS_PER_PAGE = 3000
PAGES = 3


def _page(number: int) -> list[dict[str, object]]:
    # enough rows with wide values that one page's log is past SQLite's 1,000-page mark
    return [
        {
            "entity": "lead",
            "crm_id": f"{number}-{n}",
            "values": {"text": "x" * 1500, "n": n},
            "updated_at": STAMP,
        }
        for n in range(ROWS_PER_PAGE)
    ]


def _frames_in_log(path: Path) -> int:
    """Frames in the database's log file (a 32-byte header, then 24 bytes and a page each)."""
    wal = Path(f"{path}-wal")
    return 0 if not wal.exists() else (wal.stat().st_size - 32) // (24 + 4096)


def test_commits_leave_the_log_and_the_read_ends_checkpointed(
    sqlite_database_url: str,
) -> None:
    engine = open_database(sqlite_database_url)
    path = Path(engine.url.database or "")
    with engine.begin() as conn:  # the migrations' log copied in first
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    size_before = path.stat().st_size
    try:
        with PagedCheckpoints(engine) as checkpoints:
            assert checkpoints.active
            with engine.connect() as conn, checkpoints.deferred(conn), conn.begin():
                insert_many(conn, sync_baselines, _page(0))
            # the commit ran no checkpoint: the page is in the log, not yet in the file
            assert _frames_in_log(path) > AUTOCHECKPOINT_PAGES
            assert path.stat().st_size < size_before + 4096 * 10
            with engine.connect() as conn:
                # the pooled connection got SQLite's own setting back
                setting = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
                assert setting == AUTOCHECKPOINT_PAGES
            checkpoints.page_done()
            for number in range(1, PAGES):
                with engine.connect() as conn, checkpoints.deferred(conn), conn.begin():
                    insert_many(conn, sync_baselines, _page(number))
                checkpoints.page_done()
        # the read ended with the log copied into the database file
        assert path.stat().st_size > size_before + 4096 * AUTOCHECKPOINT_PAGES
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(sync_baselines)).scalar()
            assert count == PAGES * ROWS_PER_PAGE
    finally:
        engine.dispose()


def test_a_failed_page_still_gets_the_setting_back(sqlite_database_url: str) -> None:
    engine = open_database(sqlite_database_url)
    try:
        with PagedCheckpoints(engine) as checkpoints:
            try:
                with engine.connect() as conn, checkpoints.deferred(conn), conn.begin():
                    insert_many(conn, sync_baselines, _page(0))
                    raise RuntimeError("the page fails")
            except RuntimeError:
                pass
            with engine.connect() as conn:
                setting = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
                assert setting == AUTOCHECKPOINT_PAGES
                count = conn.execute(select(func.count()).select_from(sync_baselines)).scalar()
                assert count == 0
    finally:
        engine.dispose()


def test_memory_databases_and_short_reads_are_left_alone(tmp_path: Path) -> None:
    engine = open_database("sqlite://", require_migrated=False)
    try:
        with PagedCheckpoints(engine) as checkpoints:
            assert not checkpoints.active
            checkpoints.page_done()
    finally:
        engine.dispose()
    file_engine = open_database(f"sqlite:///{tmp_path / 'x.db'}", require_migrated=False)
    try:
        assert not PagedCheckpoints(file_engine, enabled=False).active
    finally:
        file_engine.dispose()
