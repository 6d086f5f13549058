"""A sync killed after Dynamics created a person's lead but before the link's baseline was
stored must not lose a marketing edit made before the restart (Sync Person to Microsoft).

The kill is simulated deterministically: the push sends the create, Dynamics carries it out,
and the process stops before it stores the answer (nothing of it is committed locally).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sync_harness import Org, edit_person, engine_client, person_by_crm_id, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.emulator.config import default_config
from crmsync.marketing.persons import PersonService
from crmsync.sync.crm_create import request_crm_create
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.push import OutboxPusher
from crmsync.sync.push_settle import RoundSettler

pytestmark = pytest.mark.e2e

OLD_PHONE = "+1 555 0100"
NEW_PHONE = "+1 555 0199"


class Killed(BaseException):
    """The sync process stopping dead (as a SIGKILL would): nothing after it runs."""


def _killed_before_storing(*_args: object, **_kwargs: object) -> None:
    raise Killed


@pytest.fixture
def org_and_engine(migrated_engine: Engine) -> Iterator[tuple[Org, Engine, DynamicsClient]]:
    """An emulated org synced once, and the sync's client."""
    with running_org(default_config(), 4) as org:
        client = engine_client(org.base)
        assert SyncCycle(migrated_engine, client).run().status == "ok"
        yield org, migrated_engine, client
        client.close()


def _create_lost_locally(
    org: Org, engine: Engine, client: DynamicsClient, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    """A new person asks for a lead; the push creates it in Dynamics with the old phone and
    the process dies before storing the answer. Returns the person id and the lead id."""
    (outcome,) = PersonService(engine).sync(
        [{"email": "kim.lost@example.com", "lastName": "Lost", "phone": OLD_PHONE}]
    )
    assert outcome.id is not None
    person_id = int(outcome.id)
    with engine.begin() as conn:
        lead_id = request_crm_create(conn, person_id, "lead").crm_id
    with monkeypatch.context() as patched:
        patched.setattr(RoundSettler, "settle", _killed_before_storing)
        with pytest.raises(Killed):
            SyncCycle(engine, client).run()
    assert org.alex().get("leads", lead_id, "telephone1")["telephone1"] == OLD_PHONE
    return person_id, lead_id


def _both_sides_have_the_new_phone(org: Org, engine: Engine, lead_id: str) -> None:
    assert org.alex().get("leads", lead_id, "telephone1")["telephone1"] == NEW_PHONE
    assert person_by_crm_id(engine, "lead", lead_id)["phone"] == NEW_PHONE


def test_an_edit_after_a_lost_create_survives_the_next_cycles(
    org_and_engine: tuple[Org, Engine, DynamicsClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restarted cycle reads the new lead (old phone, no baseline yet) before its push:
    the marketer's newer phone must win on both sides."""
    org, engine, client = org_and_engine
    person_id, lead_id = _create_lost_locally(org, engine, client, monkeypatch)

    edit_person(engine, person_id, phone=NEW_PHONE)
    restarted = SyncCycle(engine, client)
    assert restarted.run().status == "ok"
    assert restarted.run().status == "ok"

    _both_sides_have_the_new_phone(org, engine, lead_id)


def test_an_edit_after_a_lost_create_survives_a_push_before_any_read(
    org_and_engine: tuple[Org, Engine, DynamicsClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restarted push sends the create again first (Dynamics answers that the record
    exists): what it now sends is not what Dynamics holds, and the new phone must still win."""
    org, engine, client = org_and_engine
    person_id, lead_id = _create_lost_locally(org, engine, client, monkeypatch)

    edit_person(engine, person_id, phone=NEW_PHONE)
    restarted = SyncCycle(engine, client)
    counts = OutboxPusher(engine, client, restarted.mappings()).push()
    assert counts.created == 1 and counts.failed == 0
    assert restarted.run().status == "ok"
    assert restarted.run().status == "ok"

    _both_sides_have_the_new_phone(org, engine, lead_id)


def test_a_field_blank_when_the_lead_was_created_syncs_once_set(
    org_and_engine: tuple[Org, Engine, DynamicsClient],
) -> None:
    """Found by the soak: a person synced to Dynamics with no mobile phone, then given one (a
    campaign's Change Data Value step). The create's baseline must hold the blank too, or the
    push skips the new value and the next read of the lead overwrites it with Dynamics' blank."""
    org, engine, client = org_and_engine
    (outcome,) = PersonService(engine).sync(
        [{"email": "kim.blank@example.com", "lastName": "Blank", "phone": OLD_PHONE}]
    )
    assert outcome.id is not None
    person_id = int(outcome.id)
    with engine.begin() as conn:
        lead_id = request_crm_create(conn, person_id, "lead").crm_id
    cycle = SyncCycle(engine, client)
    assert cycle.run().status == "ok"
    assert org.alex().get("leads", lead_id, "mobilephone")["mobilephone"] is None

    edit_person(engine, person_id, mobilePhone=NEW_PHONE)
    assert cycle.run().status == "ok"
    assert cycle.run().status == "ok"

    assert org.alex().get("leads", lead_id, "mobilephone")["mobilephone"] == NEW_PHONE
    assert person_by_crm_id(engine, "lead", lead_id)["mobilePhone"] == NEW_PHONE
