"""Validate setup (B43) against an emulated org over real HTTP: write privileges per two-way
table, every selected column readable, and the sync filter column, each failing line with
its fix, and passing again once the org or the selection is put right."""

from __future__ import annotations

from sqlalchemy import Engine, delete
from sync_harness import engine_client, running_org, select_lead_sync_filter, store_selection

from crmsync.dynamics.check import CheckItem
from crmsync.emulator.config import default_config
from crmsync.emulator.metadata import AttributeDef
from crmsync.store.tables import field_selection
from crmsync.sync.validate import validate_setup

WRITE_LINE = "lead: write privileges (create and update)"
SELECTED_LINE = "lead: selected fields readable"
FILTER_LINE = "lead: sync filter column new_synctomkto"


def _lines(base: str, engine: Engine | None) -> dict[str, CheckItem]:
    with engine_client(base) as client:
        report = validate_setup(client, engine, ("lead", "contact"))
    return {item.name: item for item in report.items}


def test_a_revoked_write_privilege_fails_its_line_until_granted(migrated_engine: Engine) -> None:
    with running_org(default_config(), 1) as org:
        assert _lines(org.base, migrated_engine)[WRITE_LINE].ok
        org.admin("PATCH", "privileges", {"table": "lead", "revoke": ["write"]})
        revoked = _lines(org.base, migrated_engine)
        org.admin("PATCH", "privileges", {"table": "lead", "grant": ["write"]})
        granted = _lines(org.base, migrated_engine)
    line = revoked[WRITE_LINE]
    assert not line.ok and "missing prvWriteLead" in line.detail
    assert "Add prvWriteLead at Organization depth to the sync user's security role" in line.fix
    assert revoked["contact: write privileges (create and update)"].ok
    assert revoked["lead: read privilege"].ok
    assert granted[WRITE_LINE].ok and granted[WRITE_LINE].fix == ""


def test_a_selected_column_deleted_in_dynamics_fails_until_deselected(
    migrated_engine: Engine,
) -> None:
    with running_org(default_config(), 1) as org:
        org.app.state.storage.add_attribute(
            "lead", AttributeDef("new_segment", "String", "Segment", max_length=100, is_custom=True)
        )
        with engine_client(org.base) as client:
            store_selection(migrated_engine, client, "lead", ["new_segment"])
        assert _lines(org.base, migrated_engine)[SELECTED_LINE].ok
        org.app.state.storage.remove_attribute("lead", "new_segment")
        deleted = _lines(org.base, migrated_engine)
        with migrated_engine.begin() as conn:  # the admin removes it from the selection
            conn.execute(
                delete(field_selection).where(field_selection.c.attribute == "new_segment")
            )
        deselected = _lines(org.base, migrated_engine)
    line = deleted[SELECTED_LINE]
    assert not line.ok and line.detail == "new_segment does not exist"
    assert "crmsync fields select lead --remove new_segment" in line.fix
    assert deselected[SELECTED_LINE].ok
    assert "contact: selected fields readable" not in deselected  # nothing selected there


def test_the_sync_filter_column_must_exist_when_it_is_selected(migrated_engine: Engine) -> None:
    with running_org(default_config(), 1) as org:
        assert FILTER_LINE not in _lines(org.base, migrated_engine)  # no filter configured
        select_lead_sync_filter(migrated_engine, org).close()
        present = _lines(org.base, migrated_engine)
        org.app.state.storage.remove_attribute("lead", "new_synctomkto")
        missing = _lines(org.base, migrated_engine)
        without_store = _lines(org.base, None)
    assert present[FILTER_LINE].ok
    line = missing[FILTER_LINE]
    assert not line.ok and line.detail == "missing in Dynamics"
    assert "Create the Yes/No column new_synctomkto on the lead table" in line.fix
    assert FILTER_LINE not in without_store and SELECTED_LINE not in without_store
