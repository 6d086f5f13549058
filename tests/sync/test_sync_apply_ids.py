"""New persons of an initial sync are linked to the records they came from (B1, B16, B19).

Pages of new records are inserted in bulk and their new ids taken as the run after the newest
id when the store numbered them so, or read back by Dynamics id when it did not (ids freed at
the top of the table). Either way every link must point at the person made from its record.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sync_harness import engine_client, running_org

from crmsync.emulator.config import default_config
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import crm_links, persons
from crmsync.sync.cycle import SyncCycle

PERSON_KEYS = {"lead": "crmLeadId", "contact": "crmContactId"}


def _mislinked(engine: Engine) -> list[tuple[str, str, object]]:
    """Links of leads and contacts whose person does not carry that record's id."""
    wrong: list[tuple[str, str, object]] = []
    with engine.connect() as conn:
        rows = conn.execute(
            select(crm_links.c.entity, crm_links.c.crm_id, persons).join(
                persons, persons.c.id == crm_links.c.local_id
            )
        ).mappings()
        for row in rows:
            key = PERSON_KEYS.get(row["entity"])
            if key is not None and row[key] != row["crm_id"]:
                wrong.append((row["entity"], row["crm_id"], row[key]))
    return wrong


def _linked_people(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(
                select(crm_links.c.local_id).where(crm_links.c.entity.in_(list(PERSON_KEYS)))
            ).all()
        )


def test_every_new_person_is_linked_to_its_own_record(migrated_engine: Engine) -> None:
    """B16: an initial sync over several pages links each lead and contact to its person."""
    with running_org(default_config(), 15) as org:
        client = engine_client(org.base, page_size=7)
        try:
            report = SyncCycle(migrated_engine, client).run()
        finally:
            client.close()
        storage = org.app.state.storage
        assert report.status == "ok"
        assert _linked_people(migrated_engine) == storage.count("lead") + storage.count("contact")
        assert _mislinked(migrated_engine) == []


def test_ids_freed_at_the_top_of_the_table_do_not_mislink(migrated_engine: Engine) -> None:
    """B16: marketing-side people created and the newest deleted before the initial sync (so
    the store skips the freed ids) — new persons are still linked to their own records."""
    service = PersonService(migrated_engine)
    created = service.sync(
        [{"email": f"local{n}@example.com", "lastName": f"Local {n}"} for n in range(3)],
        lookup_field="email",
    )
    newest = max(int(outcome.id) for outcome in created if outcome.id is not None)
    service.delete([newest])
    with running_org(default_config(), 15) as org:
        client = engine_client(org.base, page_size=7)
        try:
            report = SyncCycle(migrated_engine, client).run()
        finally:
            client.close()
        storage = org.app.state.storage
        assert report.status == "ok"
        assert _linked_people(migrated_engine) == storage.count("lead") + storage.count("contact")
        assert _mislinked(migrated_engine) == []
        with migrated_engine.connect() as conn:
            ids = conn.execute(select(persons.c.id)).scalars().all()
        assert newest not in ids
