"""A cycle's start-up schema read under a 429/5xx burst: retried like other transient reads,
and an entity whose schema stays unreadable makes the cycle ``partial``, not ``failed``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sync_harness import Org, edit_person, outbox_count, person_by_crm_id, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.dynamics.retry import RetryPolicy
from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET, default_config
from crmsync.emulator.metadata import AttributeDef
from crmsync.settings import DynamicsSettings, Secret
from crmsync.sync.cycle import SyncCycle


def _client(org: Org) -> DynamicsClient:
    """The sync user's client with the production retry policy (6 attempts), no real pauses."""
    settings = DynamicsSettings(
        url=org.base,
        authority=org.base,
        auth_mode="adfs",
        client_id=DEFAULT_APP_CLIENT_ID,
        client_secret=Secret(DEFAULT_APP_SECRET),
    )
    return build_client(settings, retry_policy=RetryPolicy(jitter=0.0), sleep=lambda _: None)


@pytest.fixture
def org() -> Iterator[Org]:
    with running_org(default_config(), 4) as running:
        yield running


def test_a_burst_longer_than_the_request_retries_is_ridden_out(
    migrated_engine: Engine, org: Org
) -> None:
    pauses: list[float] = []
    org.admin(
        "PATCH",
        "faults",
        {
            "throttle_burst": 9,  # more than one request's six attempts
            "throttle_retry_after_seconds": 2,
            "path_contains": "EntityDefinitions",
        },
    )
    with _client(org) as client:
        report = SyncCycle(migrated_engine, client, sleep=pauses.append).run()
    assert report.status == "ok", report.as_dict()
    assert [e.error for e in report.entities] == [None] * len(report.entities)
    assert pauses == [2.0]  # one pause, as long as Dynamics asked
    lead_id = org.alex().first_ids("leads", 1)[0]
    assert person_by_crm_id(migrated_engine, "lead", lead_id)["crmLeadId"] == lead_id


def test_an_unreadable_schema_makes_the_cycle_partial_and_loses_nothing(
    migrated_engine: Engine, org: Org
) -> None:
    with _client(org) as client:
        assert SyncCycle(migrated_engine, client).run().status == "ok"
    lead_id = org.alex().first_ids("leads", 1)[0]
    person = person_by_crm_id(migrated_engine, "lead", lead_id)
    edit_person(migrated_engine, person["id"], city="Waiting City")
    # The contact table changes in Dynamics, so the next process must read its schema again
    # (schemas Dynamics did not change are kept from the previous run).
    org.app.state.storage.add_attribute(
        "contact", AttributeDef("new_hobby", "String", "Hobby", max_length=100, is_custom=True)
    )
    org.admin(
        "PATCH",
        "faults",
        {"error_rate": 1.0, "path_contains": "EntityDefinitions(LogicalName='contact')"},
    )
    with _client(org) as client:  # a new process: the changed schema is read again
        report = SyncCycle(migrated_engine, client, sleep=lambda _: None).run()
    assert report.status == "partial", report.as_dict()
    errors = {e.entity: e.error for e in report.entities}
    assert [e.entity for e in report.entities] == [
        "systemuser", "team", "account", "lead", "contact", "opportunity"
    ]  # fmt: skip
    assert errors["systemuser"] is None and errors["lead"] is None
    assert errors["contact"] is not None and "schema could not be read" in errors["contact"]
    assert errors["opportunity"] is not None and "contact" in errors["opportunity"]
    assert outbox_count(migrated_engine) == 1  # the push waited: the change is kept

    org.admin("PUT", "faults", {})
    with _client(org) as client:
        report = SyncCycle(migrated_engine, client).run()
    assert report.status == "ok", report.as_dict()
    assert outbox_count(migrated_engine) == 0
    assert org.alex().get("leads", lead_id, "address1_city")["address1_city"] == "Waiting City"


def test_no_schema_at_all_is_a_failed_cycle(migrated_engine: Engine, org: Org) -> None:
    org.admin("PATCH", "faults", {"error_rate": 1.0, "path_contains": "EntityDefinitions"})
    with _client(org) as client:
        report = SyncCycle(migrated_engine, client, sleep=lambda _: None).run()
    assert report.status == "failed"
    assert report.error
