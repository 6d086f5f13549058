"""Concurrent object upserts and setting writes on a shared database (spec marketo-rest §7.1).

Two writers (the sync engine and the REST API, or two API calls) may upsert the same new
record at the same moment: one creates it, the other updates it, and neither call fails.
Concurrent updates of different custom fields both survive. The races are run many times so
that an unlocked implementation fails reliably; on SQLite writers already run one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

from sqlalchemy import Engine, select

from crmsync.marketing.fields import add_local_field
from crmsync.marketing.objects import ObjectService
from crmsync.marketing.outcomes import RecordOutcome
from crmsync.store.key_values import get_setting, set_setting
from crmsync.store.tables import companies

ROUNDS = 15


def _race(first: Callable[[], object], second: Callable[[], object]) -> list[object]:
    """Run two calls at the same moment; return their results (or the exceptions raised)."""
    barrier = threading.Barrier(2)
    results: list[object] = [None, None]

    def run(slot: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[slot] = call()
        except Exception as exc:  # a failed call is the outcome under test
            results[slot] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_upserts_of_one_new_company_create_it_once(migrated_engine: Engine) -> None:
    """§7.1: the same new externalCompanyId upserted by two calls at once → one created, one
    updated, no failed batch, one row."""
    service = ObjectService(migrated_engine)
    for round_no in range(ROUNDS):
        key = f"NEW-{round_no}"
        results = _race(
            partial(service.upsert, "company", [{"externalCompanyId": key, "company": "A"}]),
            partial(service.upsert, "company", [{"externalCompanyId": key, "company": "B"}]),
        )
        outcomes: list[RecordOutcome] = []
        for result in results:
            assert isinstance(result, list), f"round {round_no}: {result!r}"
            outcomes += result
        assert sorted(o.status for o in outcomes) == ["created", "updated"], f"round {round_no}"
        assert len({o.id for o in outcomes}) == 1
    with migrated_engine.connect() as conn:
        count = len(conn.execute(select(companies.c.id)).all())
    assert count == ROUNDS


def test_concurrent_updates_keep_both_custom_fields(migrated_engine: Engine) -> None:
    """§7.1: two calls setting different custom fields of one company at once both keep their
    value (each merges into the stored fields as they are when it writes, not a stale read)."""
    with migrated_engine.begin() as conn:
        add_local_field(conn, "company", "tier", "Tier", "string")
        add_local_field(conn, "company", "region", "Region", "string")
    service = ObjectService(migrated_engine)
    for round_no in range(ROUNDS):
        key = f"C-{round_no}"
        service.upsert("company", [{"externalCompanyId": key}])
        results = _race(
            partial(service.upsert, "company", [{"externalCompanyId": key, "tier": "gold"}]),
            partial(service.upsert, "company", [{"externalCompanyId": key, "region": "EU"}]),
        )
        assert all(isinstance(r, list) for r in results), results
        [found], _ = service.query("company", "externalCompanyId", [key], ["tier", "region"])
        assert (found["tier"], found["region"]) == ("gold", "EU"), f"round {round_no}"


def _write_setting(engine: Engine, key: str, value: str) -> None:
    with engine.begin() as conn:
        set_setting(conn, key, value)


def test_concurrent_first_writes_of_one_setting(migrated_engine: Engine) -> None:
    """B44: two writers storing a new setting at once both succeed; the value is one of theirs."""
    for round_no in range(ROUNDS):
        key = f"race.{round_no}"

        results = _race(
            partial(_write_setting, migrated_engine, key, "a"),
            partial(_write_setting, migrated_engine, key, "b"),
        )
        assert results == [None, None], f"round {round_no}: {results!r}"
        with migrated_engine.connect() as conn:
            assert get_setting(conn, key) in {"a", "b"}
