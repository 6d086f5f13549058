"""Bulk updates through the driver (:func:`crmsync.store.updates.execute_many`): every row gets
its own values, converted as SQLAlchemy would convert them (JSON, UTC date-times, booleans),
bound literals keep their value, and rows not named stay as they were; on both databases."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, bindparam, insert, literal, select, update

from crmsync.store.tables import custom_object_rows, persons
from crmsync.store.updates import execute_many

STAMP = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def test_each_row_gets_its_values_converted_by_type(migrated_engine: Engine) -> None:
    with migrated_engine.begin() as conn:
        people = [
            conn.execute(insert(persons).values(email=f"p{n}@example.com")).inserted_primary_key[0]
            for n in range(3)
        ]
        conn.execute(
            insert(custom_object_rows),
            [
                {
                    "entity": "new_visit",
                    "crm_id": f"v-{n}",
                    "values": {"n": n},
                    "crm_is_deleted": False,
                    "created_at": STAMP,
                    "updated_at": STAMP,
                }
                for n in range(3)
            ],
        )
        later = STAMP + dt.timedelta(days=1)
        execute_many(
            conn,
            update(custom_object_rows)
            .where(custom_object_rows.c.crm_id == bindparam("_crm_id"))
            .values(entity=literal("new_trip")),
            [
                {
                    "_crm_id": "v-0",
                    "values": {"note": "a"},
                    "person_id": people[0],
                    "updated_at": later,
                },
                {
                    "_crm_id": "v-2",
                    "values": {"note": None},
                    "person_id": None,
                    "updated_at": later,
                },
            ],
        )
        execute_many(
            conn,
            update(persons).where(persons.c.id == bindparam("_id")),
            [{"_id": people[1], "unsubscribed": True, "website": "https://b.example"}],
        )
    with migrated_engine.connect() as conn:
        rows = {
            r["crm_id"]: (r["entity"], r["values"], r["person_id"], r["updated_at"])
            for r in conn.execute(select(custom_object_rows)).mappings()
        }
        flags = dict(conn.execute(select(persons.c.id, persons.c.unsubscribed)).all())
        sites = dict(conn.execute(select(persons.c.id, persons.c.website)).all())
    assert rows == {
        "v-0": ("new_trip", {"note": "a"}, people[0], later),
        "v-1": ("new_visit", {"n": 1}, None, STAMP),
        "v-2": ("new_trip", {"note": None}, None, later),
    }
    assert flags[people[1]] is True and not flags[people[0]]
    assert sites == {people[0]: None, people[1]: "https://b.example", people[2]: None}


def test_no_rows_is_nothing_to_do(migrated_engine: Engine) -> None:
    with migrated_engine.begin() as conn:
        execute_many(conn, update(persons).where(persons.c.id == bindparam("_id")), [])
        assert conn.execute(select(persons.c.id)).all() == []
