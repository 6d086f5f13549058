"""The store's bulk inserts (B16's initial-sync pages, the REST API's upserts): what goes in is
what comes back, and new records get back their own ids.

The SQLite path builds its own statement and PostgreSQL copies the rows in (``COPY``), both
leaving out columns empty in every row; these tests read the rows back through SQLAlchemy and
compare them with a plain insert's result.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from crmsync.store.inserts import COPY_MIN_ROWS, insert_many, insert_returning_ids
from crmsync.store.tables import delta_cursors, persons, sync_baselines

STAMP = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def _person(n: int, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "email": f"p{n}@example.com",
        "email_key": f"p{n}@example.com",
        "firstName": None,
        "lastName": f"Last {n}",
        "city": None,
        "createdAt": "2026-03-04T05:06:07Z",
        "updatedAt": f"2026-03-04T05:06:{n % 60:02d}Z",
        "custom": None,
        "doNotCall": None,
    }
    row.update(values)
    return row


def _read_persons(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        query = select(*(c.label(c.key) for c in persons.c)).order_by(persons.c.id)
        rows = conn.execute(query).mappings().all()
    return [{k: v for k, v in row.items() if k != "id"} for row in rows]


def test_every_person_key_names_a_column() -> None:
    """The rows below use the table's column keys (``firstName``), not SQL names."""
    assert set(_person(0)) <= set(persons.c.keys())


def test_rows_read_back_as_a_plain_insert_writes_them(migrated_engine: Engine) -> None:
    """Texts, empties, JSON, UTC date-times and defaults for left-out keys all survive."""
    rows = [
        _person(1, firstName="Ada", custom={"tier": "gold", "n": [1, 2]}),
        _person(2, city="Paris", doNotCall=True),
        _person(3),
    ]
    with migrated_engine.begin() as conn:
        insert_many(conn, persons, rows)
    bulk = _read_persons(migrated_engine)
    with migrated_engine.begin() as conn:
        conn.execute(persons.delete())
        for row in rows:
            conn.execute(insert(persons), row)
    plain = _read_persons(migrated_engine)

    assert bulk == plain
    assert [r["firstName"] for r in bulk] == ["Ada", None, None]
    assert bulk[0]["custom"] == {"tier": "gold", "n": [1, 2]}
    assert bulk[1]["updatedAt"] == "2026-03-04T05:06:02Z"
    assert [r["doNotCall"] for r in bulk] == [None, True, None]
    # a key no row gives takes the column's default (booleans are false, as in Marketo)
    assert {r["unsubscribed"] for r in bulk} == {False}
    assert {r["leadPartitionId"] for r in bulk} == {1}


def test_a_column_empty_in_every_row_is_stored_empty(migrated_engine: Engine) -> None:
    """Leaving an all-empty column out of the statement stores NULL, not a default."""
    with migrated_engine.begin() as conn:
        insert_many(conn, persons, [_person(n) for n in range(5)])
    stored = _read_persons(migrated_engine)
    assert len(stored) == 5
    assert {r["city"] for r in stored} == {None}
    assert {r["custom"] for r in stored} == {None}


def test_a_server_default_still_applies(migrated_engine: Engine) -> None:
    """A column with a default in the schema gets it when the rows leave the key out."""
    with migrated_engine.begin() as conn:
        insert_many(
            conn,
            delta_cursors,
            [{"entity": "lead", "delta_link": None, "updated_at": STAMP}],
        )
        phase = conn.execute(select(delta_cursors.c.phase)).scalar_one()
    assert phase == "delta"


def test_utc_date_times_and_json_round_trip(migrated_engine: Engine) -> None:
    """A UTC column comes back as the same instant; a JSON column as the same value."""
    rows = [
        {"entity": "lead", "crm_id": f"id-{n}", "values": {"n": n, "s": None}, "updated_at": at}
        for n, at in enumerate([STAMP, STAMP + timedelta(days=1, microseconds=1)])
    ]
    with migrated_engine.begin() as conn:
        insert_many(conn, sync_baselines, rows)
        stored = conn.execute(
            select(sync_baselines.c["values"], sync_baselines.c["updated_at"]).order_by(
                sync_baselines.c.crm_id
            )
        ).all()
    assert [tuple(r) for r in stored] == [(r["values"], r["updated_at"]) for r in rows]


def test_a_failing_row_writes_nothing(migrated_engine: Engine) -> None:
    """A duplicate key in the batch fails the statement and the transaction keeps no row."""
    row = {"entity": "lead", "crm_id": "x", "values": {"a": 1}, "updated_at": STAMP}
    with pytest.raises(IntegrityError), migrated_engine.begin() as conn:
        insert_many(conn, sync_baselines, [row, {**row}])
    with migrated_engine.connect() as conn:
        assert conn.execute(select(sync_baselines)).all() == []


def _ids_by_email(engine: Engine) -> dict[object, int]:
    with engine.connect() as conn:
        return {email: int(i) for i, email in conn.execute(select(persons.c.id, persons.c.email))}


def test_new_ids_come_back_in_row_order(migrated_engine: Engine) -> None:
    """Rows with different keys go in as separate statements, yet each row gets its own id."""
    rows = [_person(1), _person(2, firstName="B"), _person(3), _person(4, firstName="D")]
    for row in rows[1::2]:
        row.pop("city")  # another set of keys
    with migrated_engine.begin() as conn:
        ids = insert_returning_ids(conn, persons, rows)
    by_email = _ids_by_email(migrated_engine)
    assert ids == [by_email[row["email"]] for row in rows]
    assert len(set(ids)) == 4


def test_ids_freed_at_the_top_are_not_handed_out(migrated_engine: Engine) -> None:
    """A table that never reuses ids skips those of deleted newest rows: the ids returned are
    still those the rows got."""
    with migrated_engine.begin() as conn:
        first = insert_returning_ids(conn, persons, [_person(n) for n in range(1, 4)])
        conn.execute(persons.delete().where(persons.c.id == max(first)))
    with migrated_engine.begin() as conn:
        again = insert_returning_ids(conn, persons, [_person(n) for n in range(4, 7)])
    by_email = _ids_by_email(migrated_engine)
    assert again == [by_email[f"p{n}@example.com"] for n in range(4, 7)]
    assert min(again) > max(first)


PAGE = COPY_MIN_ROWS + 10
"""Rows enough for PostgreSQL's ``COPY`` path (an initial sync's page)."""


def test_a_plain_insert_after_bulk_ids_gets_a_new_id(migrated_engine: Engine) -> None:
    """Ids handed out in bulk are taken from the table's numbering: a later ordinary insert
    (the REST API creating one person) never collides with them."""
    with migrated_engine.begin() as conn:
        bulk = insert_returning_ids(conn, persons, [_person(n) for n in range(1, PAGE)])
    with migrated_engine.begin() as conn:
        single = conn.execute(
            insert(persons).values(_person(PAGE + 1)).returning(persons.c.id)
        ).scalar()
    assert single is not None
    assert int(single) not in bulk
    assert sorted(_ids_by_email(migrated_engine).values()) == sorted([*bulk, int(single)])


def test_json_values_and_empty_json_read_back(migrated_engine: Engine) -> None:
    """A person's custom fields (JSON) go in as given, and an empty one stays empty."""
    rows = [
        _person(n, custom={"shoe": n, "tags": ["a", "b"]} if n % 2 else None) for n in range(PAGE)
    ]
    with migrated_engine.begin() as conn:
        ids = insert_returning_ids(conn, persons, rows)
    assert ids == sorted(ids) and len(set(ids)) == PAGE
    stored = _read_persons(migrated_engine)
    assert [row["custom"] for row in stored] == [row["custom"] for row in rows]
    assert [row["lastName"] for row in stored] == [f"Last {n}" for n in range(PAGE)]


def test_a_failing_page_writes_nothing(migrated_engine: Engine) -> None:
    """A duplicate key in a page-sized batch fails as an ``INSERT`` would (an integrity error)
    and the transaction keeps no row."""
    rows = [
        {"entity": "lead", "crm_id": f"id-{n}", "values": {"n": n}, "updated_at": STAMP}
        for n in range(PAGE)
    ]
    with pytest.raises(IntegrityError), migrated_engine.begin() as conn:
        insert_many(conn, sync_baselines, [*rows, {**rows[0]}])
    with migrated_engine.connect() as conn:
        assert conn.execute(select(sync_baselines)).all() == []


def test_a_shared_time_stamp_is_stored_as_a_plain_insert_stores_it(
    migrated_engine: Engine,
) -> None:
    """A page's one time stamp (whole seconds, so no microseconds to print) is stored in the
    very form a plain insert gives it, so the two kinds of row sort and compare alike."""
    whole = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    rows = [
        {"entity": "lead", "crm_id": f"id-{n}", "values": {"n": n}, "updated_at": whole}
        for n in range(COPY_MIN_ROWS)
    ]
    plain = {"entity": "contact", "crm_id": "plain", "values": {}, "updated_at": whole}
    with migrated_engine.begin() as conn:
        insert_many(conn, sync_baselines, rows)
        conn.execute(insert(sync_baselines), plain)
        stored = {
            str(entity): str(text)
            for entity, text in conn.exec_driver_sql(
                "SELECT entity, CAST(updated_at AS TEXT) FROM sync_baselines"
            )
        }
        read_back = conn.execute(select(sync_baselines.c.updated_at).distinct()).scalars().all()
    assert stored["lead"] == stored["contact"]
    assert read_back == [whole]
