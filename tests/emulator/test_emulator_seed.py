"""The emulator's realistic data seeder (issue 3 'Data')."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from crmsync.emulator.config import default_config
from crmsync.emulator.metadata import Catalog
from crmsync.emulator.runtime import ManualClock
from crmsync.emulator.schema import builtin_entities
from crmsync.emulator.seed import planned_counts, seed_dataset
from crmsync.emulator.storage import Storage


# Storage keeps each table in e_<logical name>.
def make_storage(path: Path) -> Storage:
    catalog = Catalog(builtin_entities(default_config().change_tracking))
    return Storage(str(path), catalog, ManualClock())


def dump(path: Path, table: str, order: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT * FROM e_{table} ORDER BY {order}").fetchall()


def test_counts_are_proportional(tmp_path: Path) -> None:
    """N leads → N/5 accounts, N contacts, N/10 opportunities, users and teams."""
    storage = make_storage(tmp_path / "e.db")
    summary = seed_dataset(storage, 200, seed=3)
    assert summary == planned_counts(200)
    assert {table: storage.count(table) for table in summary.as_dict()} == {
        "lead": 200,
        "account": 40,
        "contact": 200,
        "opportunity": 20,
        "systemuser": 5,
        "team": 1,
    }
    storage.close()


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    """Deterministic for a seed: two databases seeded alike hold identical rows."""
    paths = [tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"]
    for path, seed in zip(paths, (11, 11, 12), strict=True):
        storage = make_storage(path)
        seed_dataset(storage, 120, seed=seed)
        storage.close()
    for table, order in (("lead", "leadid"), ("contact", "contactid"), ("account", "accountid")):
        assert dump(paths[0], table, order) == dump(paths[1], table, order)
    assert dump(paths[0], "lead", "leadid") != dump(paths[2], "lead", "leadid")


def test_leads_look_real_and_respect_the_schema(tmp_path: Path) -> None:
    """Values fit the documented lengths and option sets (spec §2b) and are varied."""
    storage = make_storage(tmp_path / "e.db")
    seed_dataset(storage, 300, seed=5)
    leads = storage.execute(
        "SELECT leadid, firstname, lastname, fullname, companyname, emailaddress1, mobilephone, "
        "telephone1, address1_city, leadsourcecode, statecode, statuscode, ownerid FROM e_lead"
    ).fetchall()
    user_ids = {row[0] for row in storage.execute("SELECT systemuserid FROM e_systemuser")}
    team_ids = {row[0] for row in storage.execute("SELECT teamid FROM e_team")}
    assert len({lead[4] for lead in leads}) > 50
    assert len({lead[5] for lead in leads}) == 300  # e-mail addresses are unique
    for (_id, first, last, full, company, email, mobile, phone, city, source, state, status,
         owner) in leads:  # fmt: skip
        assert full == f"{first} {last}"
        assert company and "@" in email and len(email) <= 100
        assert len(mobile) <= 20 and phone.startswith("+")
        assert city
        assert 1 <= source <= 10
        assert (state, status) in {(0, 1), (0, 2), (2, 4), (2, 5), (2, 6), (2, 7)}
        assert owner in user_ids | team_ids
    linked = storage.execute(
        "SELECT COUNT(*) FROM e_contact WHERE parentcustomerid IN (SELECT accountid FROM e_account)"
    ).fetchone()[0]
    assert linked > 200
    storage.close()


def test_zero_leads_still_creates_users(tmp_path: Path) -> None:
    """An empty org still has salespeople and a team to own records."""
    storage = make_storage(tmp_path / "e.db")
    summary = seed_dataset(storage, 0, seed=1)
    assert summary.leads == 0 and storage.count("systemuser") == 5
    with pytest.raises(ValueError, match="negative"):
        seed_dataset(storage, -1, seed=1)
    storage.close()


def test_progress_is_reported_per_batch(tmp_path: Path) -> None:
    """Callers (the CLI progress bar) see each table's progress."""
    storage = make_storage(tmp_path / "e.db")
    seen: list[tuple[str, int]] = []
    seed_dataset(storage, 50, seed=2, progress=lambda table, done: seen.append((table, done)))
    assert ("lead", 50) in seen and ("contact", 50) in seen and seen[-1] == ("opportunity", 5)
    storage.close()
