"""Matching a column against long id lists: every id is found, whatever the backend."""

from __future__ import annotations

from sqlalchemy import Engine, select

from crmsync.store.id_match import id_conditions
from crmsync.store.inserts import CHUNK
from crmsync.store.outbox import delete_outbox, enqueue, read_outbox
from crmsync.store.tables import sync_outbox


def test_more_ids_than_one_in_list_all_match(migrated_engine: Engine) -> None:
    """Ids beyond one ``IN`` list's worth are all read and all removed; others stay."""
    count = 2 * CHUNK + 7
    with migrated_engine.begin() as conn:
        enqueue(conn, range(1, count + 2), operation="update", source="test")
    with migrated_engine.connect() as conn:
        entries = read_outbox(conn, limit=count + 1)
        wanted = [e.id for e in entries[:count]]
        found = [
            row_id
            for matching in id_conditions(conn, sync_outbox.c.id, wanted)
            for (row_id,) in conn.execute(select(sync_outbox.c.id).where(matching))
        ]
    assert sorted(found) == sorted(wanted)
    with migrated_engine.begin() as conn:
        delete_outbox(conn, wanted)
    with migrated_engine.connect() as conn:
        left = read_outbox(conn)
    assert [e.person_id for e in left] == [count + 1]


def test_no_ids_match_nothing_and_run_no_statement(migrated_engine: Engine) -> None:
    """An empty id list gives no condition at all (no statement to run)."""
    with migrated_engine.connect() as conn:
        assert list(id_conditions(conn, sync_outbox.c.id, [])) == []
