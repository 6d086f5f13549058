"""Migration ``0015_custom_parent_links``: custom-entity records stored before it get their
parent id from their stored values (the path's first lookup), on both databases."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import create_engine, insert, select

from crmsync.store.db import _alembic_config, upgrade_database
from crmsync.store.tables import custom_entities, custom_object_rows

STAMP = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
PATH = [
    {"entity": "new_visit", "attribute": "new_projectid", "target": "new_project"},
    {"entity": "new_project", "attribute": "new_contactid", "target": "contact"},
]


def test_records_stored_before_get_their_parent(unmigrated_database_url: str) -> None:
    engine = create_engine(unmigrated_database_url)
    try:
        with engine.begin() as conn:
            config = _alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0014_admin_indexes")
        with engine.begin() as conn:
            conn.execute(
                insert(custom_entities).values(
                    name="new_visit",
                    display_name="Visit",
                    entity_set="new_visits",
                    primary_id="new_visitid",
                    path=PATH,
                    fields=[{"name": "new_projectid", "displayName": "P", "dataType": "string"}],
                    enabled=True,
                    created_at=STAMP,
                    updated_at=STAMP,
                )
            )
            for crm_id, project in (("v-1", "AB-12"), ("v-2", None)):
                conn.execute(
                    insert(custom_object_rows).values(
                        entity="new_visit",
                        crm_id=crm_id,
                        values={"new_projectid": project},
                        crm_is_deleted=False,
                        created_at=STAMP,
                        updated_at=STAMP,
                    )
                )
    finally:
        engine.dispose()
    upgrade_database(unmigrated_database_url)
    engine = create_engine(unmigrated_database_url)
    try:
        with engine.connect() as conn:
            parents = dict(
                conn.execute(
                    select(custom_object_rows.c.crm_id, custom_object_rows.c.parent_crm_id)
                ).all()
            )
    finally:
        engine.dispose()
    assert parents == {"v-1": "ab-12", "v-2": None}
