"""Mapping, planning and merging on the emulated org's real metadata and wire values.

The emulator is reached through the Dynamics client in process (Starlette's test client is an
httpx client whose transport calls the ASGI app). Nothing here is mocked: the schema comes from
the metadata API, the records from a change-tracking read, and an update goes back through
``$batch`` and returns in the next delta read (Appendix A, B4, B7, B9, B19, B22, B25).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select
from sync_harness import (
    Org,
    edit_person,
    engine_client,
    person_by_crm_id,
    running_org,
    select_lead_sync_filter,
)

from crmsync.dynamics.auth import BearerAuth, OAuth2TokenEndpointProvider
from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import CrmChange, WriteRequest
from crmsync.emulator.app import create_emulator_app
from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET, default_config
from crmsync.emulator.seed import seed_dataset
from crmsync.settings import Secret
from crmsync.store.tables import persons
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.mapping import (
    DEFAULT_MAPPING,
    ENGINE_ATTRIBUTES,
    Direction,
    default_mapping,
    mapping_for_selection,
)
from crmsync.sync.plan import LinkState, LocalRecord, originating_lead_ids, plan_page

with warnings.catch_warnings():
    # Starlette suggests another HTTP package for its test client; httpx is what we use.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ORG = "https://org.crm.example"
LEADS = 25


@pytest.fixture(scope="module")
def client() -> Iterator[DynamicsClient]:
    config = default_config()
    app = create_emulator_app(config)
    seed_dataset(app.state.storage, LEADS, 11)
    provider = OAuth2TokenEndpointProvider(
        TestClient(app, base_url=ORG),
        token_url=f"{ORG}/{config.tenant}/oauth2/v2.0/token",
        client_id=DEFAULT_APP_CLIENT_ID,
        client_secret=Secret(DEFAULT_APP_SECRET),
        scope=f"{ORG}/.default",
    )
    http = TestClient(app, base_url=ORG)
    http.auth = BearerAuth(provider)
    dynamics = DynamicsClient(http, ORG)
    yield dynamics
    dynamics.close()
    app.state.storage.close()


@pytest.mark.parametrize("entity", sorted(DEFAULT_MAPPING))
def test_the_default_mapping_is_complete_on_the_org(client: DynamicsClient, entity: str) -> None:
    """B9: every Appendix A column exists and is readable, so each one is mapped."""
    mapping = default_mapping(client.entity_schema(entity))
    assert mapping.field_attributes == tuple(attr for attr, _, _ in DEFAULT_MAPPING[entity])
    # B6/B30: the engine's own columns are read too, whatever is mapped.
    extra = tuple(a for a in ENGINE_ATTRIBUTES.get(entity, ()) if a not in mapping.field_attributes)
    assert mapping.attributes == mapping.field_attributes + extra
    assert mapping.unreadable == mapping.missing == ()
    two_way = {m.field for m in mapping.fields if m.direction is Direction.BOTH}
    if entity in ("lead", "contact"):
        assert {"email", "firstName", "lastName", "unsubscribed", "leadStatus"} <= two_way
        assert not two_way & {"crmCreatedAt", "externalSalesPersonId", "crmLeadId"}
    else:
        assert two_way == set()


def test_tracked_leads_become_persons_whose_values_go_back_unchanged(
    client: DynamicsClient,
) -> None:
    """B4/B7: every seeded lead plans a new person; its two-way values convert back to the
    exact Dynamics values (labels, booleans, money, date-times), so nothing drifts."""
    mapping = default_mapping(client.entity_schema("lead"))
    items = [
        item for page in client.start_tracking("leads", mapping.attributes) for item in page.items
    ]
    assert len(items) == LEADS
    plan = plan_page(mapping, items, {})
    assert plan.failures == ()
    assert len(plan.creates) == LEADS
    records = {item.record.id: item.record for item in items if isinstance(item, CrmChange)}
    two_way = [m for m in mapping.fields if m.two_way]
    for create in plan.creates:
        assert create.values["crmLeadId"] == create.crm_id
        assert create.values["crmType"] == "Lead"
        record = records[create.crm_id]
        back = mapping.to_crm({m.field: create.values[m.field] for m in two_way})
        for m in two_way:
            original = record.values.get(m.attribute)
            if isinstance(original, str) and not original.strip():
                original = None  # blank text is cleared text (merge normalisation)
            assert back[m.attribute] == original, m.attribute
        source = create.values["leadSource"]
        assert (
            source is None
            or source in mapping.for_field("leadSource").converter.attribute.options.values()
        )


def test_a_marketing_edit_reaches_dynamics_and_its_echo_is_ignored(client: DynamicsClient) -> None:
    """B22/B25/B19: a person edit merges into a conditional update; when Dynamics reports the
    change back in the next delta read, the plan has nothing left to do."""
    mapping = default_mapping(client.entity_schema("lead"))
    pages = list(client.start_tracking("leads", mapping.attributes))
    cursor = pages[-1].cursor
    assert cursor is not None
    first = next(item for item in pages[0].items if isinstance(item, CrmChange))
    created = plan_page(mapping, [first], {}).creates[0]
    flipped = not created.values["unsubscribed"]
    person = LocalRecord(1, dict(created.values, city="Reykjavik", unsubscribed=flipped), "Lead")
    links = {first.record.id: LinkState(person, created.baseline)}

    plan = plan_page(mapping, [first], links)
    (update,) = plan.updates
    assert update.crm_writes == {"address1_city": "Reykjavik", "donotbulkemail": flipped}
    assert update.marketing_writes == {}
    (result,) = client.write_batch(
        [WriteRequest.update("lead", first.record.id, update.crm_writes, update.etag)]
    )
    assert result.ok, result

    echoes = [item for page in client.read_changes(cursor) for item in page.items]
    assert [item.record.id for item in echoes if isinstance(item, CrmChange)] == [first.record.id]
    after = {first.record.id: LinkState(person, update.new_baseline)}
    (echo,) = plan_page(mapping, echoes, after).updates
    assert echo.crm_writes == {}
    assert echo.marketing_writes == {}
    assert echo.collisions == ()


@pytest.mark.parametrize("selection", [None, ("firstname", "lastname", "emailaddress1")])
def test_a_qualified_lead_continues_as_the_same_person(
    client: DynamicsClient, selection: tuple[str, ...] | None
) -> None:
    """B30: QualifyLead creates a contact; read with the default mapping (or an admin's
    selection without originatingleadid), the contact continues the lead's person as a
    Contact instead of creating a second person."""
    schema = client.entity_schema("contact")
    contacts = (
        default_mapping(schema) if selection is None else mapping_for_selection(schema, selection)
    )
    assert "originatingleadid" not in contacts.field_names
    leads = default_mapping(client.entity_schema("lead"))
    lead_items = [
        item
        for page in client.start_tracking("leads", leads.attributes)
        for item in page.items
        if isinstance(item, CrmChange) and item.record.values.get("statecode") == 0
    ]
    lead = lead_items[0 if selection is None else 1].record
    created = plan_page(leads, [CrmChange(lead)], {}).creates[0]
    person = LocalRecord(41, dict(created.values), "Lead")
    cursor = list(client.start_tracking("contacts", contacts.attributes))[-1].cursor
    assert cursor is not None

    (qualified,) = client.write_batch([WriteRequest.qualify_lead(lead.id)])
    assert qualified.ok, qualified.message
    contact_id = qualified.created[0].id

    items = [item for page in client.read_changes(cursor) for item in page.items]
    assert originating_lead_ids(items) == (lead.id,)
    plan = plan_page(
        contacts, items, {}, originating_leads={lead.id: LinkState(person, created.baseline)}
    )
    assert plan.creates == ()
    (update,) = plan.updates
    assert (update.crm_id, update.local_id, update.relinked_from) == (contact_id, 41, lead.id)
    assert update.crm_type == update.marketing_writes["crmType"] == "Contact"
    if selection is None:
        assert update.marketing_writes["crmContactId"] == contact_id


def _open_lead(client: DynamicsClient, org: Org) -> str:
    for lead_id in org.alex().first_ids("leads", 10):
        if client.get("leads", lead_id, ["statecode"]).values.get("statecode") == 0:
            return lead_id
    raise AssertionError("the seeded org has no open lead")


def _person_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(persons)).scalar_one())


@pytest.mark.e2e
def test_a_sync_cycle_continues_a_qualified_leads_person_as_the_contact(
    migrated_engine: Engine,
) -> None:
    """B30 through whole cycles with the default mapping: after QualifyLead the person keeps
    its id and history, becomes a Contact linked to the new contact, and no second person
    appears."""
    with running_org(default_config(), 3) as org:
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        cycle.run()
        lead_id = _open_lead(client, org)
        person = person_by_crm_id(migrated_engine, "lead", lead_id)
        before = _person_count(migrated_engine)

        (qualified,) = client.write_batch([WriteRequest.qualify_lead(lead_id)])
        assert qualified.ok, qualified.message
        contact_id = qualified.created[0].id
        cycle.run()

        continued = person_by_crm_id(migrated_engine, "contact", contact_id)
        assert continued["id"] == person["id"]
        assert (continued["crmType"], continued["crmContactId"]) == ("Contact", contact_id)
        assert _person_count(migrated_engine) == before
        client.close()


@pytest.mark.e2e
def test_a_lead_switched_to_no_then_qualified_gives_its_contact_a_new_person(
    migrated_engine: Engine,
) -> None:
    """R64 + R76 F/T through whole cycles: the lead's filter goes Yes→No (its person stays,
    stale, and a marketing edit is not pushed), then the lead is qualified: the contact gets
    a new person and the lead's person stays a Lead."""
    with running_org(default_config(), 3) as org:
        client = select_lead_sync_filter(migrated_engine, org)
        cycle = SyncCycle(migrated_engine, client)
        cycle.run()
        alex = org.alex()
        lead_id = _open_lead(client, org)
        person = person_by_crm_id(migrated_engine, "lead", lead_id)
        assert alex.patch("leads", lead_id, {"new_synctomkto": False}).is_success
        cycle.run()
        edit_person(migrated_engine, int(person["id"]), city="Nowhere-While-Excluded")
        cycle.run()
        assert client.get("leads", lead_id, ["address1_city"]).values["address1_city"] != (
            "Nowhere-While-Excluded"
        )

        (qualified,) = client.write_batch([WriteRequest.qualify_lead(lead_id)])
        assert qualified.ok, qualified.message
        contact_id = qualified.created[0].id
        cycle.run()

        contact_person = person_by_crm_id(migrated_engine, "contact", contact_id)
        assert contact_person["id"] != person["id"]
        assert contact_person["crmType"] == "Contact"
        lead_person = person_by_crm_id(migrated_engine, "lead", lead_id)
        assert (lead_person["id"], lead_person["crmType"]) == (person["id"], "Lead")
        client.close()


@pytest.mark.e2e
def test_a_marketing_edit_made_while_a_lead_is_qualified_reaches_the_contact(
    migrated_engine: Engine,
) -> None:
    """B30 with B18: a marketer edits the person after the salesperson qualified its lead but
    before the next cycle; the edit is not lost: the person and the new contact end with it."""
    with running_org(default_config(), 3) as org:
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        cycle.run()
        lead_id = _open_lead(client, org)
        person = person_by_crm_id(migrated_engine, "lead", lead_id)

        (qualified,) = client.write_batch([WriteRequest.qualify_lead(lead_id)])
        assert qualified.ok, qualified.message
        contact_id = qualified.created[0].id
        edit_person(migrated_engine, int(person["id"]), title="Edited during qualification")
        cycle.run()
        cycle.run()

        continued = person_by_crm_id(migrated_engine, "contact", contact_id)
        assert continued["id"] == person["id"]
        assert continued["title"] == "Edited during qualification"
        contact = client.get("contacts", contact_id, ["jobtitle"])
        assert contact.values["jobtitle"] == "Edited during qualification"
        client.close()
