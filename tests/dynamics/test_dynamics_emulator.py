"""The client against the Dataverse emulator in process (spec §3–§9; B17, B25, B33, B38)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator

import pytest
from dynamics_emulator import InProcessEmulator

from crmsync.dynamics.types import (
    AttributeType,
    CrmChange,
    CrmDelete,
    LookupValue,
    WriteRequest,
    WriteStatus,
)
from crmsync.errors import DeltaTokenExpiredError, RecordNotFoundError

pytest.importorskip("crmsync.emulator.app")

SELECT = ["firstname", "lastname", "emailaddress1", "leadsourcecode", "ownerid", "modifiedon"]


@pytest.fixture
def emulator() -> Iterator[InProcessEmulator]:
    running = InProcessEmulator(leads=120)
    yield running
    running.close()


def test_paging_reads_every_lead_once_in_ceil_n_over_page_size_requests(
    emulator: InProcessEmulator,
) -> None:
    """§3: server-driven paging with odata.maxpagesize; nextLink followed to the end."""
    client = emulator.client(page_size=50)
    records = list(client.iter_records("leads", SELECT))
    total = emulator.count("lead")
    assert len(records) == total
    assert len({r.id for r in records}) == total
    assert client.stats().requests_by_kind["read"] == math.ceil(total / 50)
    first = records[0]
    assert first.etag and first.etag.startswith('W/"')
    assert isinstance(first.values["ownerid"], LookupValue)
    assert first.values["ownerid"].entity in ("systemuser", "team")
    assert first.modified_on is not None and first.modified_on.tzinfo is not None


def test_get_and_missing_record(emulator: InProcessEmulator) -> None:
    client = emulator.client()
    some = next(iter(client.iter_records("leads", ["lastname"], page_size=1)))
    again = client.get("leads", some.id, ["lastname"])
    assert again.values["lastname"] == some.values["lastname"]
    with pytest.raises(RecordNotFoundError):
        client.get("leads", str(uuid.uuid4()), ["lastname"])


def test_change_tracking_initial_then_delta_with_updates_creates_and_tombstones(
    emulator: InProcessEmulator,
) -> None:
    """§4 / B17: initial read + cursor; a delta gives the update, the create and the delete."""
    client = emulator.client(page_size=40)
    pages = list(client.start_tracking("leads", ["firstname", "lastname"]))
    assert all(page.cursor is None for page in pages[:-1])
    cursor = pages[-1].cursor
    assert cursor is not None
    initial = [item for page in pages for item in page.items]
    assert len(initial) == emulator.count("lead")

    first, second = (item.record for item in initial[:2] if isinstance(item, CrmChange))
    new_id = str(uuid.uuid4())
    results = client.write_batch(
        [
            WriteRequest.update("lead", first.id, {"lastname": "Changed"}, etag=first.etag),
            WriteRequest.delete("lead", second.id),
            WriteRequest.create("lead", new_id, {"lastname": "Created"}),
        ]
    )
    assert [r.status for r in results] == [WriteStatus.OK] * 3

    delta = list(client.read_changes(cursor))
    items = [item for page in delta for item in page.items]
    changed = {
        item.record.id: item.record.values["lastname"]
        for item in items
        if isinstance(item, CrmChange)
    }
    deleted = {item.id for item in items if isinstance(item, CrmDelete)}
    assert changed == {first.id: "Changed", new_id: "Created"}
    assert deleted == {second.id}
    assert delta[-1].cursor is not None and delta[-1].cursor != cursor

    (quiet,) = list(client.read_changes(delta[-1].cursor))
    assert quiet.items == ()


def test_expired_delta_token_raises_so_the_engine_reconciles(emulator: InProcessEmulator) -> None:
    """§4 / B17: ExpiredVersionStamp → DeltaTokenExpiredError, never a silent empty delta."""
    client = emulator.client()
    cursor = list(client.start_tracking("leads", ["lastname"]))[-1].cursor
    assert cursor is not None
    emulator.admin("POST", "expire-delta-tokens")
    with pytest.raises(DeltaTokenExpiredError) as caught:
        list(client.read_changes(cursor))
    assert caught.value.entity == "lead"


def test_each_write_kind_against_the_emulator(emulator: InProcessEmulator) -> None:
    """§5: create with a chosen key, conditional update, stale ETag, upsert, delete, QualifyLead."""
    client = emulator.client()
    account = next(iter(client.iter_records("accounts", ["name"], page_size=1)))
    lead_id, upserted, qualified = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    created = client.write_batch(
        [
            WriteRequest.create("lead", lead_id, {"lastname": "Lovelace", "leadsourcecode": 8}),
            WriteRequest.upsert("lead", upserted, {"lastname": "Upserted"}),
            WriteRequest.create("lead", qualified, {"firstname": "Grace", "lastname": "Hopper"}),
        ]
    )
    assert [r.status for r in created] == [WriteStatus.OK] * 3
    etag = created[0].etag
    assert etag

    update, stale, link, upsert_again = client.write_batch(
        [
            WriteRequest.update("lead", lead_id, {"jobtitle": "Analyst"}, etag=etag),
            WriteRequest.update("lead", lead_id, {"jobtitle": "Stale"}, etag=etag),
            WriteRequest.associate(
                "lead", lead_id, "parentaccountid", LookupValue(account.id, "account")
            ),
            WriteRequest.upsert("lead", upserted, {"lastname": "Upserted again"}),
        ]
    )
    assert update.status is WriteStatus.OK
    assert stale.status is WriteStatus.PRECONDITION_FAILED  # B25
    assert link.status is WriteStatus.OK
    assert upsert_again.status is WriteStatus.OK
    record = client.get("leads", lead_id, ["jobtitle", "parentaccountid"])
    assert record.values["jobtitle"] == "Analyst"
    assert record.values["parentaccountid"] == LookupValue(account.id, "account")

    (unlink,) = client.write_batch([WriteRequest.disassociate("lead", lead_id, "parentaccountid")])
    assert unlink.status is WriteStatus.OK
    assert client.get("leads", lead_id, ["parentaccountid"]).values["parentaccountid"] is None

    (qualify,) = client.write_batch([WriteRequest.qualify_lead(qualified, create_contact=True)])
    assert qualify.status is WriteStatus.OK, qualify.message
    assert [ref.entity for ref in qualify.created] == ["contact"]
    contact = client.get("contacts", qualify.created[0].id, ["lastname"])
    assert contact.values["lastname"] == "Hopper"

    deleted, gone = client.write_batch(
        [WriteRequest.delete("lead", upserted), WriteRequest.delete("lead", str(uuid.uuid4()))]
    )
    assert deleted.status is WriteStatus.OK
    assert gone.status is WriteStatus.NOT_FOUND


def test_batch_with_mixed_successes_and_failures(emulator: InProcessEmulator) -> None:
    """§6 continue-on-error + §7 codes: each part gets its own result; the good ones land (B37)."""
    client = emulator.client()
    ok_id = str(uuid.uuid4())
    results = client.write_batch(
        [
            WriteRequest.create("lead", ok_id, {"lastname": "Fine"}),
            WriteRequest.create("lead", str(uuid.uuid4()), {"lastname": "x" * 51}),
            WriteRequest.create(
                "lead", str(uuid.uuid4()), {"lastname": "B", "leadsourcecode": 999}
            ),
            WriteRequest.create(
                "lead", str(uuid.uuid4()), {"lastname": "C", "new_doesnotexist": "v"}
            ),
            WriteRequest.update("lead", str(uuid.uuid4()), {"lastname": "nobody"}),
        ]
    )
    assert [r.status for r in results] == [
        WriteStatus.OK,
        WriteStatus.VALIDATION_ERROR,
        WriteStatus.VALIDATION_ERROR,
        WriteStatus.UNKNOWN_ATTRIBUTE,
        WriteStatus.NOT_FOUND,
    ]
    assert results[1].error_code == "0x80044331"
    assert results[2].error_code == "0x8004431A"
    assert client.get("leads", ok_id, ["lastname"]).values["lastname"] == "Fine"
    assert client.stats().requests_by_kind["batch"] == 1


def test_duplicate_create_is_created_already(emulator: InProcessEmulator) -> None:
    """B33: creating again with the same chosen key reports "already created", one record."""
    client = emulator.client()
    lead_id = str(uuid.uuid4())
    before = emulator.count("lead")
    first = client.write_batch([WriteRequest.create("lead", lead_id, {"lastname": "Once"})])
    again = client.write_batch([WriteRequest.create("lead", lead_id, {"lastname": "Once"})])
    assert first[0].status is WriteStatus.OK
    assert again[0].status is WriteStatus.CREATED_ALREADY
    assert emulator.count("lead") == before + 1


def test_expired_access_token_is_refreshed_once_and_the_call_succeeds(
    emulator: InProcessEmulator,
) -> None:
    """§1c: a 401 triggers one refresh and a retry; the caller never notices."""
    provider = emulator.provider()
    client = emulator.client(provider=provider)
    identity = client.who_am_i()
    emulator.admin("POST", "expire-tokens")
    assert client.who_am_i() == identity
    assert provider.issued == 2


def test_429_storm_every_record_written_exactly_once(emulator: InProcessEmulator) -> None:
    """§8 / B38: a burst of 429s with Retry-After; every create lands once, pauses honoured."""
    client = emulator.client(batch_size=10, concurrency=4)
    emulator.admin("PATCH", "faults", {"throttle_burst": 6, "throttle_retry_after_seconds": 2})
    before = emulator.count("lead")
    ids = [str(uuid.uuid4()) for _ in range(60)]
    results = client.write_batch(
        [WriteRequest.create("lead", i, {"lastname": "Storm"}) for i in ids]
    )
    assert all(r.status is WriteStatus.OK for r in results), {r.status for r in results}
    assert emulator.count("lead") == before + 60
    stats = client.stats()
    assert stats.throttled >= 6
    assert stats.concurrency_limit < 4
    assert 2.0 in emulator.sleeps


def test_server_errors_and_dropped_connections_are_retried(emulator: InProcessEmulator) -> None:
    """B38: injected 503s and dropped connections; reads complete and creates land once."""
    client = emulator.client(page_size=25, batch_size=5)
    emulator.admin("PATCH", "faults", {"error_rate": 0.3, "error_status": 503, "drop_rate": 0.2})
    total = emulator.count("lead")
    records = list(client.iter_records("leads", ["lastname"]))
    assert len({r.id for r in records}) == total
    ids = [str(uuid.uuid4()) for _ in range(30)]
    results = client.write_batch(
        [WriteRequest.create("lead", i, {"lastname": "Flaky"}) for i in ids]
    )
    assert all(r.ok for r in results), {r.status for r in results}
    emulator.admin("PATCH", "faults", {"error_rate": 0.0, "drop_rate": 0.0})
    assert emulator.count("lead") == total + 30
    assert client.stats().retries > 0


def test_metadata_identity_privileges_and_tracking(emulator: InProcessEmulator) -> None:
    """§9: schema with types/lengths/options, WhoAmI = the app user, Global read, tracking on."""
    client = emulator.client()
    schema = client.entity_schema("lead")
    assert schema.entity_set_name == "leads" and schema.primary_id == "leadid"
    assert schema.attributes["lastname"].max_length == 50
    assert schema.attributes["leadsourcecode"].type is AttributeType.PICKLIST
    assert schema.attributes["leadsourcecode"].options[8] == "Web"
    assert set(schema.attributes["ownerid"].targets) == {"systemuser", "team"}
    identity = client.who_am_i()
    app_user = emulator.config.users[0]
    assert identity.user_id == app_user.systemuserid.lower()
    assert client.user_privileges().can("Read", "Lead", "Global")
    assert client.change_tracking_enabled("lead") is True


def test_marketing_list_membership_and_owner_assignment(emulator: InProcessEmulator) -> None:
    """B34: static marketing list membership through $ref; assign = ownerid@odata.bind (§2d)."""
    client = emulator.client()
    lead = next(iter(client.iter_records("leads", ["lastname"], page_size=1)))
    salesperson = emulator.config.users[1].systemuserid
    list_id, new_lead = str(uuid.uuid4()), str(uuid.uuid4())
    owner = LookupValue(salesperson, "systemuser")
    created = client.write_batch(
        [
            WriteRequest.create(
                "list", list_id, {"listname": "Mkto-leads-1", "createdfromcode": 4, "type": False}
            ),
            WriteRequest.create("lead", new_lead, {"lastname": "Owned", "ownerid": owner}),
        ]
    )
    assert [r.status for r in created] == [WriteStatus.OK] * 2, [r.message for r in created]
    member = LookupValue(lead.id, "lead")
    added, assigned = client.write_batch(
        [
            WriteRequest.associate("list", list_id, "listlead_association", member),
            WriteRequest.update("lead", lead.id, {"ownerid": owner}),
        ]
    )
    assert added.status is WriteStatus.OK, added.message
    assert assigned.status is WriteStatus.OK, assigned.message
    assert client.get("leads", lead.id, ["ownerid"]).values["ownerid"] == LookupValue(
        salesperson.lower(), "systemuser"
    )
    assert client.get("leads", new_lead, ["ownerid"]).values["ownerid"] == LookupValue(
        salesperson.lower(), "systemuser"
    )
    (removed,) = client.write_batch(
        [WriteRequest.disassociate("list", list_id, "listlead_association", member)]
    )
    assert removed.status is WriteStatus.OK, removed.message


def test_a_deleted_column_surfaces_as_unknown_field_on_reads_and_writes(
    emulator: InProcessEmulator,
) -> None:
    """B14: reading or writing a column Dynamics does not have names the column."""
    from crmsync.dynamics.classify import unknown_property_of
    from crmsync.errors import UnknownFieldError

    client = emulator.client()
    with pytest.raises(UnknownFieldError) as caught:
        list(client.iter_records("leads", ["lastname", "new_gone"]))
    assert unknown_property_of(caught.value.message) == "new_gone"
    lead = next(iter(client.iter_records("leads", ["lastname"], page_size=1)))
    (result,) = client.write_batch([WriteRequest.update("lead", lead.id, {"new_gone": "x"})])
    assert result.status is WriteStatus.UNKNOWN_ATTRIBUTE
    assert unknown_property_of(result.message) == "new_gone"
