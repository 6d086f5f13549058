"""The outbox: the push removes only what it read (B18)."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine

from crmsync.marketing.persons import PersonService
from crmsync.store.outbox import delete_outbox, read_outbox


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


def test_only_the_outbox_module_writes_outbox_entries() -> None:
    """One writer: no other module of the product inserts into ``sync_outbox``."""
    src = Path(__file__).resolve().parents[2] / "src" / "crmsync"
    pattern = re.compile(r"insert\(sync_outbox\)|sync_outbox\.insert\(")
    writers = sorted(
        str(path.relative_to(src)) for path in src.rglob("*.py") if pattern.search(path.read_text())
    )
    assert writers == ["store/outbox.py"]


def test_only_the_audit_module_writes_the_audit_trail() -> None:
    """One writer: no other module of the product inserts into ``audit_log``."""
    src = Path(__file__).resolve().parents[2] / "src" / "crmsync"
    pattern = re.compile(r"insert\((tables\.)?audit_log\)|audit_log\.insert\(")
    writers = sorted(
        str(path.relative_to(src)) for path in src.rglob("*.py") if pattern.search(path.read_text())
    )
    assert writers == ["store/audit.py"]
