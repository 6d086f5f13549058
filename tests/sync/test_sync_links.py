"""Links and baselines in the store: they round trip in bulk, and replacing baselines keeps one
row per record."""

from __future__ import annotations

from sqlalchemy import Engine

from crmsync.sync.cursors import get_cursor, set_cursor
from crmsync.sync.links import LinkRow, insert_links, load_baselines, load_links, save_baselines


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
