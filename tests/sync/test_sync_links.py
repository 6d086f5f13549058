"""Links and baselines in the store: they round trip in bulk, replacing baselines keeps one
row per record, and patching them sets only the given fields."""

from __future__ import annotations

from sqlalchemy import Engine

from crmsync.sync.cursors import get_cursor, set_cursor
from crmsync.sync.links import (
    LinkRow,
    insert_links,
    links_with_baseline,
    load_baselines,
    load_links,
    patch_baselines,
    save_baselines,
)


def test_links_baselines_and_cursors_round_trip(migrated_engine: Engine) -> None:
    """Bulk writes read back exactly; replacing baselines keeps one row per record."""
    rows = [LinkRow("lead", f"id-{n}", "person", n, f'W/"{n}"') for n in range(1, 2501)]
    with migrated_engine.begin() as conn:
        insert_links(conn, rows)
        save_baselines(conn, "lead", {r.crm_id: {"city": "A", "n": r.local_id} for r in rows})
        save_baselines(conn, "lead", {"id-7": {"city": "B"}})
        set_cursor(conn, "lead", "https://org/api/data/v9.2/leads?$deltatoken=1")
        set_cursor(conn, "lead", "https://org/api/data/v9.2/leads?$deltatoken=2")
    with migrated_engine.connect() as conn:
        links = load_links(conn, "lead", [r.crm_id for r in rows] + ["unknown"])
        baselines = load_baselines(conn, "lead", ["id-7", "id-8"])
        assert len(links) == 2500 and links["id-42"] == rows[41]
        assert baselines == {"id-7": {"city": "B"}, "id-8": {"city": "A", "n": 8}}
        assert get_cursor(conn, "lead").endswith("deltatoken=2")  # type: ignore[union-attr]
        assert get_cursor(conn, "contact") is None


def test_patching_baselines_sets_only_the_given_fields(migrated_engine: Engine) -> None:
    """A quick sync's baseline write: the given fields are set (a blank as JSON null, not
    removed), the others kept, other records and entities untouched; links are found with
    whether they have a baseline, from one bound list of ids."""
    rows = [LinkRow("lead", f"id-{n}", "person", n, f'W/"{n}"') for n in range(1, 2502)]
    with migrated_engine.begin() as conn:
        insert_links(conn, rows)
        save_baselines(conn, "lead", {r.crm_id: {"city": "A", "n": r.local_id} for r in rows[:-1]})
        save_baselines(conn, "contact", {"id-1": {"city": "C"}})
        patch_baselines(
            conn,
            "lead",
            {
                "id-1": {"website": "https://a.example", "city": None},
                "id-2": {"website": None},
                "id-3": {"website": 'quote " and \\ back'},
            },
        )
    with migrated_engine.connect() as conn:
        baselines = load_baselines(conn, "lead", ["id-1", "id-2", "id-3", "id-4"])
        other = load_baselines(conn, "contact", ["id-1"])
        found = links_with_baseline(conn, "lead", [r.crm_id for r in rows] + ["unknown"])
    assert baselines == {
        "id-1": {"city": None, "n": 1, "website": "https://a.example"},
        "id-2": {"city": "A", "n": 2, "website": None},
        "id-3": {"city": "A", "n": 3, "website": 'quote " and \\ back'},
        "id-4": {"city": "A", "n": 4},
    }
    assert other == {"id-1": {"city": "C"}}
    assert len(found) == 2501 and found["id-42"] == (rows[41], True)
    assert found["id-2501"] == (rows[-1], False)  # linked, never agreed with Dynamics
