"""A person shows its company (B3, R40, R41), end to end over real HTTP: contacts synced from
an emulated org read their account's fields through the Marketo API, an API edit of a company
field changes the shared company for every person of it and nothing goes to Dynamics, the next
Dynamics update of the account overwrites it, and that update writes a Change Data Value
activity on each person of the account."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sync_harness import Org, engine_client, outbox_count, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.emulator.config import default_config
from crmsync.settings import Settings
from crmsync.store.tables import companies, persons
from crmsync.sync.cycle import SyncCycle
from crmsync.web.app import create_app
from crmsync.web.clients import ApiClientStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.e2e


@dataclass
class World:
    org: Org
    client: DynamicsClient
    cycle: SyncCycle
    api: TestClient
    headers: dict[str, str]
    company_id: int
    account_id: str
    person_ids: list[int]

    def read(self, person_id: int, fields: str) -> dict[str, Any]:
        reply = self.api.get(
            f"/rest/v1/lead/{person_id}.json", params={"fields": fields}, headers=self.headers
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["success"], body
        result: dict[str, Any] = body["result"][0]
        return result

    def changes(self, person_id: int) -> list[dict[str, Any]]:
        headers = self.headers
        token = self.api.get(
            "/rest/v1/activities/pagingtoken.json",
            params={"sinceDatetime": "2000-01-01T00:00:00Z"},
            headers=headers,
        ).json()["nextPageToken"]
        reply = self.api.get(
            "/rest/v1/activities/leadchanges.json",
            params={"nextPageToken": token, "leadIds": str(person_id), "fields": "company"},
            headers=headers,
        )
        assert reply.status_code == 200, reply.text
        return list(reply.json().get("result", []))


@pytest.fixture
def world(migrated_engine: Engine) -> Iterator[World]:
    with running_org(default_config(), 30) as org:
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        cycle.run()
        with migrated_engine.connect() as conn:
            rows = conn.execute(
                select(persons.c.id, persons.c.company_id).where(persons.c.company_id.is_not(None))
            ).all()
        by_company: dict[int, list[int]] = {}
        for person_id, company_id in rows:
            by_company.setdefault(company_id, []).append(person_id)
        company_id, person_ids = max(by_company.items(), key=lambda item: len(item[1]))
        assert len(person_ids) >= 2, "the seed should give some account two contacts"
        with migrated_engine.connect() as conn:
            account_id = conn.execute(
                select(companies.c.externalCompanyId).where(companies.c.id == company_id)
            ).scalar_one()
        app = create_app(Settings(), engine=migrated_engine)
        created = ApiClientStore(migrated_engine).create("tests")
        with TestClient(app) as api:
            token = api.get(
                "/identity/oauth/token",
                params={
                    "grant_type": "client_credentials",
                    "client_id": created.client_id,
                    "client_secret": created.client_secret.reveal(),
                },
            ).json()["access_token"]
            yield World(
                org,
                client,
                cycle,
                api,
                {"Authorization": f"Bearer {token}"},
                company_id,
                str(account_id),
                sorted(person_ids),
            )
        client.close()


def test_person_reads_its_company_fields(migrated_engine: Engine, world: World) -> None:
    """B3: a contact linked to an account shows the account's name and fields."""
    account = world.org.row("account", world.account_id)
    assert account is not None
    lead = world.read(world.person_ids[0], "company,industry,website,externalCompanyId")
    assert lead["company"] == account["name"]
    assert lead["company"]
    assert lead["externalCompanyId"] == world.account_id


def test_company_edit_through_api_is_shared_and_local(
    migrated_engine: Engine, world: World
) -> None:
    """R40: an API edit of a company field changes it on every person of the company, is not
    sent to Dynamics, and the next Dynamics update of the account overwrites it."""
    first, second = world.person_ids[:2]
    before = outbox_count(migrated_engine)
    reply = world.api.post(
        "/rest/v1/leads.json",
        json={
            "action": "updateOnly",
            "lookupField": "id",
            "input": [{"id": first, "company": "Renamed Locally Ltd", "industry": "Retail"}],
        },
        headers=world.headers,
    ).json()
    assert reply["result"] == [{"id": first, "status": "updated"}], reply
    for person_id in world.person_ids:
        shown = world.read(person_id, "company,industry")
        assert shown == {"id": person_id, "company": "Renamed Locally Ltd", "industry": "Retail"}
    assert outbox_count(migrated_engine) == before, "a company edit must not go to Dynamics"
    account = world.org.row("account", world.account_id)
    assert account is not None and account["name"] != "Renamed Locally Ltd"

    edited = world.org.alex().patch("accounts", world.account_id, {"name": "Acme From Dynamics"})
    assert edited.status_code == 204, edited.text
    world.cycle.run()
    assert world.read(second, "company")["company"] == "Acme From Dynamics"
    assert world.read(first, "company")["company"] == "Acme From Dynamics"


def test_account_change_in_dynamics_logs_on_each_person(
    migrated_engine: Engine, world: World
) -> None:
    """R41: a Dynamics account change writes a Change Data Value on each of its people."""
    edited = world.org.alex().patch("accounts", world.account_id, {"name": "Globex Renamed"})
    assert edited.status_code == 204, edited.text
    world.cycle.run()
    for person_id in world.person_ids:
        found = [
            change
            for change in world.changes(person_id)
            if change["fields"] and change["fields"][0]["newValue"] == "Globex Renamed"
        ]
        assert len(found) == 1, (person_id, world.changes(person_id))
        assert found[0]["fields"][0]["name"] == "company"


ADDRESS_FIELDS = (
    "billingStreet,billingCity,billingState,billingPostalCode,billingCountry,mainPhone,sicCode"
)


def test_person_shows_its_company_address_phone_and_sic(
    migrated_engine: Engine, world: World
) -> None:
    """B3 (Appendix A): a person of an account shows the account's billing address, main phone
    and SIC code; an API edit of one changes the shared company, not Dynamics."""
    edited = world.org.alex().patch(
        "accounts",
        world.account_id,
        {
            "address1_line1": "1 Harbour Road",
            "address1_city": "Bristol",
            "address1_stateorprovince": "Avon",
            "address1_postalcode": "BS1 5TY",
            "address1_country": "United Kingdom",
            "telephone1": "+44 117 000 0000",
            "sic": "6201",
        },
    )
    assert edited.status_code == 204, edited.text
    world.cycle.run()
    expected = {
        "billingStreet": "1 Harbour Road",
        "billingCity": "Bristol",
        "billingState": "Avon",
        "billingPostalCode": "BS1 5TY",
        "billingCountry": "United Kingdom",
        "mainPhone": "+44 117 000 0000",
        "sicCode": "6201",
    }
    for person_id in world.person_ids:
        assert world.read(person_id, ADDRESS_FIELDS) == {"id": person_id, **expected}

    before = outbox_count(migrated_engine)
    first, second = world.person_ids[:2]
    reply = world.api.post(
        "/rest/v1/leads.json",
        json={
            "action": "updateOnly",
            "lookupField": "id",
            "input": [{"id": first, "billingCity": "Bath", "mainPhone": "+44 1225 000000"}],
        },
        headers=world.headers,
    ).json()
    assert reply["result"] == [{"id": first, "status": "updated"}], reply
    shown = world.read(second, "billingCity,mainPhone")
    assert shown == {"id": second, "billingCity": "Bath", "mainPhone": "+44 1225 000000"}
    assert outbox_count(migrated_engine) == before, "a company edit must not go to Dynamics"
    account = world.org.row("account", world.account_id)
    assert account is not None and account["address1_city"] == "Bristol"

    described = world.api.get("/rest/v1/leads/describe.json", headers=world.headers).json()
    names = {field["rest"]["name"] for field in described["result"]}
    assert set(ADDRESS_FIELDS.split(",")) <= names
