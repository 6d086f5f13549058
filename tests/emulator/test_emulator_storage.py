"""The storage contract used by the seeder and tests: bulk inserts, stamps, versions, columns."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from crmsync.emulator.metadata import AttributeDef, Catalog
from crmsync.emulator.runtime import ManualClock
from crmsync.emulator.schema import BASE_CURRENCY_ID, builtin_entities
from crmsync.emulator.storage import Storage

USER = "68a42b66-70d0-5a0c-a827-f419a7d0a7b5"


def _storage(path: str = ":memory:") -> Storage:
    tracking = {"lead": True, "contact": True, "account": True}
    return Storage(path, Catalog(builtin_entities(tracking)), ManualClock())


def test_insert_many_stamps_rows_like_api_creates() -> None:
    """Bulk rows get ids, audit stamps, owner, state/status defaults and fresh row versions."""
    storage = _storage()
    account = storage.insert_many("account", [{"name": "Contoso"}], acting_user=USER)[0]
    ids = storage.insert_many(
        "lead",
        [
            {
                "firstname": "Ada",
                "lastname": "Lovelace",
                "revenue": 5.0,
                "parentaccountid": account,
                "customerid": ("account", account),
                "mkt_lastinterestingmomentdate": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            },
            {"lastname": "Hopper", "statuscode": 4, "donotemail": True},
        ],
        acting_user=USER.upper(),
    )
    assert storage.count("lead") == 2
    first = storage.get("lead", ids[0])
    assert first is not None
    assert first["fullname"] == "Ada Lovelace"
    assert first["createdby"] == first["modifiedby"] == first["ownerid"] == USER
    assert first["createdon"] == "2026-01-05T09:00:00Z"
    assert (first["statecode"], first["statuscode"]) == (0, 1)
    assert first["leadqualitycode"] == 2  # the column's default option
    assert first["customerid"] == account and first["parentaccountid"] == account
    assert first["mkt_lastinterestingmomentdate"] == "2026-01-02T03:04:05Z"
    assert first["transactioncurrencyid"] == BASE_CURRENCY_ID
    second = storage.get("lead", ids[1])
    assert second is not None
    assert (second["statecode"], second["statuscode"]) == (2, 4)
    assert second["donotemail"] is True
    assert second["versionnumber"] > first["versionnumber"]
    assert storage.get("lead", "00000000-0000-0000-0000-000000000000") is None


def test_row_versions_survive_a_restart_and_only_grow(tmp_path: Path) -> None:
    """The global row version continues from the highest stored one after reopening."""
    path = str(tmp_path / "versions.db")
    storage = _storage(path)
    storage.insert_many("lead", [{"lastname": "One"}], acting_user=USER)
    before = storage.current_version()
    storage.close()
    reopened = _storage(path)
    assert reopened.current_version() >= before
    assert reopened.next_version() > before
    reopened.close()


def test_add_and_remove_a_custom_column() -> None:
    """add_attribute/remove_attribute change the table and the catalog together."""
    storage = _storage()
    storage.add_attribute("contact", AttributeDef("new_tier", "Integer", "Tier", is_custom=True))
    contact = storage.insert_many("contact", [{"lastname": "C", "new_tier": 3}], acting_user=USER)[
        0
    ]
    assert (storage.get("contact", contact) or {})["new_tier"] == 3
    storage.remove_attribute("contact", "new_tier")
    assert "new_tier" not in storage.catalog.require("contact").attributes
    assert "new_tier" not in (storage.get("contact", contact) or {})


def test_a_failed_transaction_leaves_nothing_behind() -> None:
    """Rows written inside a transaction that fails are rolled back (never half-written)."""
    storage = _storage()
    leads = storage.catalog.require("lead")
    try:
        with storage.transaction():
            row = storage.stamp_new(leads, {"lastname": "Ghost"}, USER)
            storage.insert(leads, row)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert storage.count("lead") == 0
