"""The people search by the start of a name or company: the same answers whether the matches
are gathered through the lower-case indexes (a rare start) or by reading the persons newest
first (a common one), paged by id, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine, insert

from crmsync.store.tables import persons
from crmsync.web.admin.queries import PAGE_SIZE, search_people

NAMES = (
    ("Ana", "Smith", "Acme"),
    ("Mary Ann", "Smithers", "Globex"),
    ("Bob", "Jones", "Smithfield Foods"),
    ("Carla", "O'Brien", "Initech"),
    ("Dan", "smith", None),
    (None, "Smyth", "Umbrella"),
    ("Eve", "100%_Smith", "Hooli"),
)


def _fill(engine: Engine, copies: int) -> None:
    rows = [
        {
            "firstName": first,
            "lastName": last,
            "company": company,
            "email": f"p{n}-{i}@example.com",
            "email_key": f"p{n}-{i}@example.com",
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
        }
        for i in range(copies)
        for n, (first, last, company) in enumerate(NAMES)
    ]
    with engine.begin() as conn:
        conn.execute(insert(persons), rows)


def _names(rows: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(r["firstName"], r["lastName"]) for r in rows]


def test_both_ways_of_searching_find_the_same_persons(migrated_engine: Engine) -> None:
    _fill(migrated_engine, 2)
    with migrated_engine.connect() as conn:
        for term in ("smi", "SMITH", "mary ann s", "ana s", "100%_", "smithf", "o'b", "zz", "sm"):
            by_index = search_people(conn, term)
            by_reading = search_people(conn, term, candidates=0)  # every column "too common"
            assert by_index == by_reading, term
        found = _names(search_people(conn, "smi"))
    # last names and companies starting with "smi", any case, newest first
    assert (
        found
        == [
            ("Dan", "smith"),
            ("Bob", "Jones"),
            ("Mary Ann", "Smithers"),
            ("Ana", "Smith"),
        ]
        * 2
    )
    with migrated_engine.connect() as conn:
        assert _names(search_people(conn, "mary ann s")) == [("Mary Ann", "Smithers")] * 2
        assert _names(search_people(conn, "100%_")) == [("Eve", "100%_Smith")] * 2
        assert search_people(conn, "100%x") == []


def test_a_search_pages_by_id_through_the_index(migrated_engine: Engine) -> None:
    _fill(migrated_engine, 30)  # 60 Smiths/Smithers beside the rest: more than a page
    pages = []
    before: int | None = None
    with migrated_engine.connect() as conn:
        while True:
            page = search_people(conn, "smith", before=before)
            assert page == search_people(conn, "smith", before=before, candidates=0)
            if not page:
                break
            pages.append(page)
            before = int(str(page[-1]["id"]))
    assert [len(p) for p in pages] == [PAGE_SIZE, PAGE_SIZE, 20]
    ids = [int(str(r["id"])) for page in pages for r in page]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert len(ids) == 30 * 4  # Smith, Smithers, Smithfield Foods, smith
