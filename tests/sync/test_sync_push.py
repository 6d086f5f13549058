"""Planning outbox changes into conditional Dynamics updates (B2, B3, B12, B18, B25, B28,
B30, B37, B38)."""

from __future__ import annotations

import pytest

from crmsync.dynamics.types import (
    AttributeSchema,
    AttributeType,
    CrmChange,
    CrmRecord,
    EntitySchema,
    WriteKind,
)
from crmsync.errors import InvalidValueError
from crmsync.sync.convert import CODE_TOO_LONG
from crmsync.sync.mapping import default_mapping
from crmsync.sync.plan import LinkState, LocalRecord, plan_page
from crmsync.sync.push import PendingPush, plan_push

T = AttributeType
LEAD_ID = "11111111-1111-4111-8111-111111111111"


def _schema(entity: str) -> EntitySchema:
    columns = [
        AttributeSchema(entity + "id", T.UNIQUEIDENTIFIER, valid_for_update=False),
        AttributeSchema("firstname", T.STRING, max_length=10),
        AttributeSchema("address1_city", T.STRING, max_length=80),
        AttributeSchema("jobtitle", T.STRING, max_length=100, can_update=False),
        AttributeSchema("donotbulkemail", T.BOOLEAN),
        AttributeSchema("leadsourcecode", T.PICKLIST, options={8: "Web", 10: "Other"}),
        AttributeSchema("mkt_priority", T.INTEGER, is_custom=True),
    ]
    attrs = {a.logical_name: a for a in columns}
    return EntitySchema(entity, entity + "s", entity + "id", "fullname", True, False, attrs)


LEAD_MAP = default_mapping(_schema("lead"))
BASELINE = {
    "crmLeadId": LEAD_ID,
    "firstName": "Ada",
    "city": "Turin",
    "title": "CTO",
    "unsubscribed": False,
    "leadSource": "Web",
}


def _pending(crm_type: str = "Lead", baseline: dict[str, object] | None = None, **edits: object):
    values = dict(BASELINE, **edits)
    base = BASELINE if baseline is None else baseline
    return PendingPush(LEAD_ID, LocalRecord(7, values, crm_type), base, etag='W/"12"')


def test_a_person_edit_becomes_a_conditional_update() -> None:
    """B18/B25: changed fields only, as Dynamics columns, conditional on the stored ETag."""
    plan = plan_push(LEAD_MAP, [_pending(city="Milan", unsubscribed=True, leadSource="other")])
    (push,) = plan.pushes
    assert push.request.kind is WriteKind.UPDATE
    assert push.request.entity == "lead"
    assert push.request.record_id == LEAD_ID
    assert push.request.etag == 'W/"12"'
    assert dict(push.request.values) == {
        "address1_city": "Milan",
        "donotbulkemail": True,
        "leadsourcecode": 10,
    }
    assert push.new_baseline["city"] == "Milan"
    assert push.new_baseline["leadSource"] == "Other"
    # Rejected by Dynamics: the edit stays pending for the retry (B38).
    assert push.baseline_if_rejected["city"] == "Turin"
    assert push.baseline_if_rejected["leadSource"] == "Web"
    assert plan.unchanged == plan.skipped == plan.failures == ()


def test_nothing_to_send_clears_the_outbox() -> None:
    """An edit undone, or spelled differently ("web"), sends nothing."""
    plan = plan_push(LEAD_MAP, [_pending(leadSource="web", city=" Turin ")])
    assert plan.pushes == ()
    assert plan.unchanged == (7,)


def test_a_value_dynamics_would_reject_fails_that_record_alone() -> None:
    """B37/B38: a too-long name is not sent; the other person still goes."""
    bad = _pending(firstName="Bartholomew")
    good = PendingPush(
        "22222222-2222-4222-8222-222222222222",
        LocalRecord(8, dict(BASELINE, city="Oslo"), "Lead"),
        BASELINE,
    )
    plan = plan_push(LEAD_MAP, [bad, good])
    (failure,) = plan.failures
    assert (failure.local_id, failure.code, failure.direction) == (7, CODE_TOO_LONG, "to_crm")
    assert [p.local_id for p in plan.pushes] == [8]


def test_a_rejected_value_holds_back_only_its_own_field() -> None:
    """B37/B38: the too-long first name stays unsent and unagreed (named in the failure); the
    same person's city edit is still sent, and agreed once Dynamics accepts it."""
    plan = plan_push(LEAD_MAP, [_pending(firstName="Bartholomew", city="Oslo")])
    (failure,) = plan.failures
    assert failure.code == CODE_TOO_LONG
    assert "firstName" in failure.message
    (push,) = plan.pushes
    assert dict(push.request.values) == {"address1_city": "Oslo"}
    assert push.new_baseline["city"] == "Oslo"
    assert push.new_baseline["firstName"] == "Ada"
    assert push.baseline_if_rejected["city"] == "Turin"


def test_a_lead_the_sync_filter_excludes_is_not_pushed() -> None:
    """R64: a lead switched Yes→No is no longer synced, so its person's edits stay local."""
    yes_to_no = plan_page(
        LEAD_MAP,
        [CrmChange(CrmRecord("lead", LEAD_ID, {"new_synctomkto": False}, etag='W/"13"'))],
        {LEAD_ID: LinkState(LocalRecord(7, BASELINE, "Lead"), BASELINE)},
        filter_selected=True,
    )
    (marked,) = yes_to_no.updates
    plan = plan_push(LEAD_MAP, [_pending(baseline=marked.new_baseline, city="Oslo")])
    assert plan.pushes == ()
    assert plan.failures == ()
    assert "new_synctomkto" in plan.skipped[0].reason


def test_a_dynamics_only_field_is_put_back_not_sent() -> None:
    """B3: the sync user may not update jobtitle, so a local edit is reverted, never sent."""
    plan = plan_push(LEAD_MAP, [_pending(title="Chief", city="Rome")])
    (push,) = plan.pushes
    assert dict(push.request.values) == {"address1_city": "Rome"}
    (revert,) = plan.reverts
    assert revert.marketing_writes == {"title": "CTO"}


def test_a_newly_selected_field_is_not_pushed_before_its_backfill() -> None:
    """B12: a field missing from the baseline is neither pushed nor cleared locally; the quick
    sync or the next Dynamics read settles it."""
    assert "priority" in LEAD_MAP.field_names
    assert "priority" not in BASELINE
    plan = plan_push(LEAD_MAP, [_pending(priority=5, city="Rome")])
    (push,) = plan.pushes
    assert "mkt_priority" not in push.request.values
    assert "priority" not in push.new_baseline
    assert plan.reverts == ()


def test_persons_without_a_live_record_are_not_pushed() -> None:
    """B28/B31: no Dynamics record (or a deleted one): only Sync Person to Microsoft creates."""
    person = LocalRecord(9, dict(BASELINE, city="Rome"), "Lead")
    plan = plan_push(
        LEAD_MAP,
        [
            PendingPush(None, person, None),
            PendingPush(LEAD_ID, person, BASELINE, crm_is_deleted=True),
            PendingPush(LEAD_ID, person, None),
            _pending(crm_type="Contact", city="Rome"),
        ],
    )
    assert plan.pushes == ()
    reasons = [s.reason for s in plan.skipped]
    assert "Sync Person to Microsoft creates one" in reasons[0]
    assert "deleted" in reasons[1]
    assert "not synced yet" in reasons[2]
    assert "contact" in reasons[3]  # B30: a qualified lead's person pushes to its contact


def test_contacts_push_too() -> None:
    """B1: non-conflicting marketing edits of a contact reach Dynamics."""
    contact_map = default_mapping(_schema("contact"))
    baseline = {k: v for k, v in BASELINE.items() if k not in ("crmLeadId", "leadSource")}
    pending = PendingPush(LEAD_ID, LocalRecord(3, dict(baseline, city="Bonn"), "Contact"), baseline)
    (push,) = plan_push(contact_map, [pending]).pushes
    assert push.request.entity == "contact"
    assert dict(push.request.values) == {"address1_city": "Bonn"}


def test_one_way_entities_are_never_pushed() -> None:
    """B2: nothing is ever written to accounts, users, teams or opportunities."""
    account = default_mapping(
        EntitySchema(
            "account",
            "accounts",
            "accountid",
            "name",
            True,
            False,
            {"name": AttributeSchema("name", T.STRING, max_length=160)},
        )
    )
    with pytest.raises(InvalidValueError, match="Dynamics only"):
        plan_push(account, [])
