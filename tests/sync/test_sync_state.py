"""Sync state in the store: links and baselines round trip in bulk, the outbox removes only
what was read (B18), errors count their attempts and close when the record syncs (B37, B38)."""

from __future__ import annotations

from sqlalchemy import Engine, insert

from crmsync.marketing.persons import PersonService
from crmsync.store.tables import delta_cursors
from crmsync.sync.state import (
    INITIAL_PHASE,
    ErrorReport,
    LinkRow,
    StoredCursor,
    delete_outbox,
    get_cursor,
    insert_links,
    load_baselines,
    load_links,
    now_utc,
    open_errors,
    portable_link,
    read_cursor,
    read_outbox,
    record_errors,
    resolve_errors,
    save_baselines,
    set_cursor,
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


def test_cursors_are_stored_relative_to_the_web_api_root(migrated_engine: Engine) -> None:
    """Portable cursors: a delta or page link keeps no host, so a new address of the same
    org is followed; links stored absolute before are read back relative too."""
    with migrated_engine.begin() as conn:
        set_cursor(conn, "lead", "https://org.crm.dynamics.com/api/data/v9.2/leads?$deltatoken=7")
        set_cursor(
            conn,
            "contact",
            "http://127.0.0.1:5580/api/data/v9.2/contacts?$select=a,b&$skiptoken=%3Ccookie%3E",
            phase=INITIAL_PHASE,
        )
        conn.execute(
            insert(delta_cursors).values(
                entity="account",
                delta_link="http://old-host:81/org/api/data/v9.1/accounts?$deltatoken=3",
                updated_at=now_utc(),
            )
        )
    with migrated_engine.connect() as conn:
        assert get_cursor(conn, "lead") == "leads?$deltatoken=7"
        assert read_cursor(conn, "contact") == StoredCursor(
            "contacts?$select=a,b&$skiptoken=%3Ccookie%3E", INITIAL_PHASE
        )
        assert get_cursor(conn, "contact") is None  # its initial read has not finished
        assert get_cursor(conn, "account") == "accounts?$deltatoken=3"
    assert portable_link("accounts?$deltatoken=3") == "accounts?$deltatoken=3"


def test_only_the_outbox_entries_read_are_removed(migrated_engine: Engine) -> None:
    """B18: an edit made after the push read the outbox stays queued."""
    service = PersonService(migrated_engine)
    (created,) = service.sync([{"email": "a@example.com", "firstName": "A"}])
    with migrated_engine.connect() as conn:
        read = read_outbox(conn)
    service.sync([{"id": created.id, "firstName": "B"}], lookup_field="id")
    with migrated_engine.begin() as conn:
        delete_outbox(conn, [entry.id for entry in read])
    with migrated_engine.connect() as conn:
        left = read_outbox(conn)
    assert [(e.person_id, e.operation) for e in left] == [(created.id, "update")]
    assert left[0].changed_fields == ("firstName",)


def test_errors_count_attempts_and_close_when_synced(migrated_engine: Engine) -> None:
    """B38: the same record failing again is one open error with more attempts; once it syncs
    the error is resolved."""
    report = ErrorReport("lead", "to_crm", "update", "person", 5, "crm-5", "0x1", "too long")
    with migrated_engine.begin() as conn:
        record_errors(conn, [report])
        record_errors(conn, [report])
        record_errors(
            conn, [ErrorReport("lead", "to_crm", "update", "person", 6, "crm-6", None, "x")]
        )
    with migrated_engine.connect() as conn:
        errors = {e["crm_id"]: e for e in open_errors(conn)}
    assert errors["crm-5"]["attempts"] == 2 and errors["crm-6"]["attempts"] == 1
    with migrated_engine.begin() as conn:
        resolve_errors(conn, "lead", ["crm-5"], "to_crm")
    with migrated_engine.connect() as conn:
        assert [e["crm_id"] for e in open_errors(conn)] == ["crm-6"]


def test_open_errors_search_any_case_and_wildcards_as_typed(migrated_engine: Engine) -> None:
    """B39 on both backends: the search matches message, code or Dynamics id in any case, and
    ``%`` or ``_`` in it are plain characters."""
    with migrated_engine.begin() as conn:
        record_errors(
            conn,
            [
                ErrorReport(
                    "lead", "to_crm", "update", "person", 1, "id_1", "0x80044331", "Too LONG"
                ),
                ErrorReport("lead", "to_crm", "update", "person", 2, "id-2", None, "50% off"),
                ErrorReport("contact", "to_crm", "update", "person", 3, "id-3", None, "other"),
            ],
        )
        found = {
            query: sorted(str(r["crm_id"]) for r in open_errors(conn, search=query))
            for query in ("too long", "44331", "ID_", "50%", "%", "_")
        }
        by_entity = [str(r["crm_id"]) for r in open_errors(conn, entity="contact")]
    assert found == {
        "too long": ["id_1"],
        "44331": ["id_1"],
        "ID_": ["id_1"],
        "50%": ["id-2"],
        "%": ["id-2"],
        "_": ["id_1"],
    }
    assert by_entity == ["id-3"]
