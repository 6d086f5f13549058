"""Matching a column against long id lists: every id is found, whatever the backend."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from crmsync.store.id_match import among, id_conditions
from crmsync.store.inserts import CHUNK, insert_many, insert_returning_ids
from crmsync.store.outbox import delete_outbox, enqueue, read_outbox
from crmsync.store.tables import persons, sync_baselines, sync_outbox

STAMP = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _person(n: int) -> dict[str, object]:
    return {"email": f"p{n}@example.com", "email_key": f"p{n}@example.com", "lastName": f"Last {n}"}


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


def test_among_finds_what_an_in_list_finds(migrated_engine: Engine) -> None:
    """One bound list selects the same rows as SQLAlchemy's ``IN``, by text and by id, with
    quotes and commas in the values, and nothing for an empty list."""
    tricky = ["plain", "it's", 'say "hi"', "a,b", "[1]", "ünï"]
    rows = [
        {"entity": "lead", "crm_id": crm_id, "values": {}, "updated_at": STAMP}
        for crm_id in [*tricky, "other"]
    ]
    with migrated_engine.begin() as conn:
        insert_many(conn, sync_baselines, rows)
        ids = insert_returning_ids(conn, persons, [_person(n) for n in range(4)])

        def crm_ids(values: list[str]) -> set[str]:
            query = select(sync_baselines.c.crm_id).where(
                among(conn, sync_baselines.c.crm_id, values)
            )
            return set(conn.execute(query).scalars())

        assert crm_ids(tricky) == set(tricky)
        assert crm_ids(["other", "missing"]) == {"other"}
        assert crm_ids([]) == set()
        wanted = [ids[0], ids[2], 10**12]
        found = conn.execute(select(persons.c.id).where(among(conn, persons.c.id, wanted)))
        assert set(found.scalars()) == {ids[0], ids[2]}
