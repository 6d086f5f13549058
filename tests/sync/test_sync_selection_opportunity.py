"""B11 for opportunities: a custom column of a Dynamics opportunity selected after go-live gets
an opportunity field of its own in the catalog, its values arrive (by the quick sync for the
records already synced, by the regular cycle for later edits), and the REST API's opportunity
calls show them. Real HTTP against the emulator, SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sync_harness import engine_client, running_org

from crmsync.emulator.config import default_config
from crmsync.emulator.metadata import AttributeDef
from crmsync.errors import InvalidValueError
from crmsync.marketing.fields import add_local_field, load_catalog
from crmsync.marketing.objects import ObjectService
from crmsync.store.tables import opportunities
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.quick_sync import QuickSync
from crmsync.sync.selection import save_selection

pytestmark = pytest.mark.e2e


def _custom(engine: Engine, crm_id: str) -> dict[str, object]:
    with engine.connect() as conn:
        value = conn.execute(
            select(opportunities.c.custom).where(opportunities.c.externalOpportunityId == crm_id)
        ).scalar_one()
    return dict(value or {})


def test_a_custom_opportunity_column_gets_a_field_and_its_values(
    migrated_engine: Engine,
) -> None:
    with running_org(default_config(), 20) as org:
        org.app.state.storage.add_attribute(
            "opportunity",
            AttributeDef("new_stage", "String", "Deal Stage", max_length=40, is_custom=True),
        )
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        assert cycle.run().status == "ok"  # go-live without the column
        alex = org.alex()
        first, second = alex.first_ids("opportunities", 2)
        assert alex.patch("opportunities", first, {"new_stage": "Proposal"}).is_success

        with migrated_engine.begin() as conn:
            saved = save_selection(conn, client, "opportunity", add=["new_stage"])
        assert saved.quick_sync
        [field_name] = [m.field for m in saved.mapping.fields if m.attribute == "new_stage"]
        with migrated_engine.connect() as conn:
            field = load_catalog(conn, "opportunity").require(field_name)
        assert (field.display_name, field.data_type, field.is_custom) == (
            "Deal Stage",
            "string",
            True,
        )

        QuickSync(migrated_engine, client).run()  # the opportunities already synced
        assert _custom(migrated_engine, first) == {field_name: "Proposal"}
        assert alex.patch("opportunities", second, {"new_stage": "Won"}).is_success
        assert cycle.run().status == "ok"  # a later edit, with the regular cycle
        assert _custom(migrated_engine, second) == {field_name: "Won"}
        client.close()

    service = ObjectService(migrated_engine)
    described = service.describe("opportunity")
    assert field_name in [f["name"] for f in described["fields"]]  # type: ignore[union-attr]
    rows, _ = service.query(
        "opportunity",
        "externalOpportunityId",
        [first, second],
        fields=["externalOpportunityId", field_name],
    )
    assert {r["externalOpportunityId"]: r[field_name] for r in rows} == {
        first: "Proposal",
        second: "Won",
    }


def test_an_opportunity_column_maps_onto_an_existing_field_of_a_fitting_type(
    migrated_engine: Engine,
) -> None:
    with running_org(default_config(), 20) as org:
        storage = org.app.state.storage
        storage.add_attribute(
            "opportunity", AttributeDef("new_note", "String", "Note", max_length=40, is_custom=True)
        )
        storage.add_attribute(
            "opportunity", AttributeDef("new_count", "Integer", "Count", is_custom=True)
        )
        client = engine_client(org.base)
        alex = org.alex()
        [first] = alex.first_ids("opportunities", 1)
        assert alex.patch("opportunities", first, {"new_note": "Call on Tuesday"}).is_success
        with migrated_engine.begin() as conn:
            add_local_field(conn, "opportunity", "dealNote", "Deal note", "string", 255)
            save_selection(conn, client, "opportunity", add=["new_note=dealNote"])
        with pytest.raises(InvalidValueError) as refused, migrated_engine.begin() as conn:
            save_selection(conn, client, "opportunity", add=["new_count=dealNote"])
        assert "dealNote" in refused.value.message
        assert SyncCycle(migrated_engine, client).run().status == "ok"
        client.close()
    assert _custom(migrated_engine, first) == {"dealNote": "Call on Tuesday"}
