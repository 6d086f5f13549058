"""Sync errors: they count their attempts and close when the record syncs (B37, B38), and an
admin can search them (B39)."""

from __future__ import annotations

from sqlalchemy import Engine

from crmsync.sync.failures import ErrorReport, open_errors, record_errors, resolve_errors


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
