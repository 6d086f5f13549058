"""Change-tracking cursors: stored relative to the Web API root, with the read they continue
(B16, B17)."""

from __future__ import annotations

from sqlalchemy import Engine, insert

from crmsync.dynamics.links import portable_link
from crmsync.store.tables import delta_cursors, now_utc
from crmsync.sync.cursors import INITIAL_PHASE, StoredCursor, get_cursor, read_cursor, set_cursor


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
