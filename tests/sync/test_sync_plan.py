"""Planning a page of Dynamics changes (B4, B20, B22–B30, B37, B38; R33, R63, R76)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crmsync.dataverse_codes import STRING_TOO_LONG
from crmsync.dynamics.types import (
    AttributeSchema,
    AttributeType,
    CrmChange,
    CrmDelete,
    CrmRecord,
    CrmValue,
    EntitySchema,
    LookupValue,
)
from crmsync.sync.mapping import default_mapping, mapping_for_selection
from crmsync.sync.plan import (
    FilterAction,
    LinkState,
    LocalRecord,
    PlannedRole,
    QualifyOutcome,
    customer_contact_ids,
    local_kind_for,
    originating_lead_ids,
    passes_sync_filter,
    plan_page,
    qualify_outcome,
    sync_filter,
)
from crmsync.sync.policy import CollisionRule, Side

T = AttributeType
LEAD_ID = "11111111-1111-4111-8111-111111111111"
LEAD_2 = "22222222-2222-4222-8222-222222222222"
CONTACT_ID = "33333333-3333-4333-8333-333333333333"
ACCOUNT_ID = "44444444-4444-4444-8444-444444444444"


def _schema(entity: str, *extra: AttributeSchema) -> EntitySchema:
    columns = [
        AttributeSchema(entity + "id", T.UNIQUEIDENTIFIER, valid_for_update=False),
        AttributeSchema("firstname", T.STRING, max_length=10),
        AttributeSchema("address1_city", T.STRING, max_length=80),
        AttributeSchema("createdon", T.DATETIME, valid_for_update=False),
        AttributeSchema("leadsourcecode", T.PICKLIST, options={8: "Web", 10: "Other"}),
        AttributeSchema("new_synctomkto", T.BOOLEAN, is_custom=True),
        *extra,
    ]
    attrs = {a.logical_name: a for a in columns}
    return EntitySchema(entity, entity + "s", entity + "id", "fullname", True, False, attrs)


LEAD_SCHEMA = _schema("lead")
CONTACT_SCHEMA = _schema(
    "contact", AttributeSchema("originatingleadid", T.LOOKUP, targets=("lead",))
)
LEAD_MAP = default_mapping(LEAD_SCHEMA)
CONTACT_MAP = default_mapping(CONTACT_SCHEMA)
CREATED = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _lead(record_id: str = LEAD_ID, etag: str = 'W/"7"', **values: CrmValue) -> CrmChange:
    # Like the client's reads, the primary key is the record's id, not one of its values.
    row: dict[str, CrmValue] = {
        "firstname": "Ada",
        "address1_city": "Turin",
        "createdon": CREATED,
        "leadsourcecode": 8,
    }
    row.update(values)
    return CrmChange(CrmRecord("lead", record_id, row, etag=etag))


def _person(local_id: int = 7, crm_type: str = "Lead", **values: object) -> LocalRecord:
    base: dict[str, object] = {
        "crmLeadId": LEAD_ID,
        "firstName": "Ada",
        "city": "Turin",
        "crmCreatedAt": "2026-01-05T08:00:00Z",
        "leadSource": "Web",
    }
    base.update(values)
    return LocalRecord(local_id, base, crm_type)


BASELINE = {
    "crmLeadId": LEAD_ID,
    "firstName": "Ada",
    "city": "Turin",
    "crmCreatedAt": "2026-01-05T08:00:00Z",
    "leadSource": "Web",
}


def test_an_unlinked_lead_becomes_a_new_person() -> None:
    """B4/B7: a Dynamics lead with no link creates a person (no dedupe), CRM type Lead."""
    plan = plan_page(LEAD_MAP, [_lead()], {})
    (create,) = plan.creates
    assert create.crm_id == LEAD_ID
    assert create.crm_type == "Lead"
    assert create.etag == 'W/"7"'
    assert create.values["firstName"] == "Ada"
    assert create.values["leadSource"] == "Web"
    assert create.values["crmCreatedAt"] == "2026-01-05T08:00:00Z"
    assert create.values["crmType"] == "Lead"
    assert create.values["crmIsDeleted"] is False
    assert create.baseline == BASELINE
    assert not create.replaces_deleted
    assert plan.updates == plan.skipped == plan.failures == ()


def test_a_linked_lead_merges_with_marketing_winning_collisions() -> None:
    """B22/B23/B25: a lead edited on both sides; the write carries the ETag it merged against."""
    change = _lead(firstname="Adeline", address1_city="Milan")
    state = LinkState(_person(firstName="Addy"), BASELINE)
    plan = plan_page(LEAD_MAP, [change], {LEAD_ID: state})
    (update,) = plan.updates
    assert update.local_id == 7
    assert update.crm_writes == {"firstname": "Addy"}
    assert update.marketing_writes == {"city": "Milan"}
    assert update.etag == 'W/"7"'
    assert update.new_baseline["firstName"] == "Addy"
    (collision,) = plan.collisions
    assert (collision.field, collision.winner) == ("firstName", Side.MARKETING)
    assert collision.rule is CollisionRule.MARKETING_WINS_FOR_LEADS
    # If Dynamics rejects the write, the baseline must still show the edit as pending (B38).
    assert update.baseline_if_rejected["firstName"] == "Ada"
    assert update.baseline_if_rejected["city"] == "Milan"


def test_an_echo_of_our_own_write_plans_nothing() -> None:
    """B19: the page returns the value we wrote; it equals the baseline, so nothing happens."""
    plan = plan_page(LEAD_MAP, [_lead()], {LEAD_ID: LinkState(_person(), BASELINE)})
    (update,) = plan.updates
    assert update.crm_writes == {}
    assert update.marketing_writes == {}
    assert update.collisions == ()


def test_marketing_values_are_compared_in_canonical_form() -> None:
    """A label typed in another case is the same option, not an edit (B19, B22)."""
    person = _person(leadSource="web")
    plan = plan_page(LEAD_MAP, [_lead()], {LEAD_ID: LinkState(person, BASELINE)})
    assert plan.updates[0].crm_writes == {}


def test_a_dynamics_delete_only_flags_the_person() -> None:
    """B26/B29: deletes never delete locally; they set the CRM is-deleted flag."""
    links = {LEAD_ID: LinkState(_person(), BASELINE)}
    plan = plan_page(LEAD_MAP, [CrmDelete("lead", LEAD_ID), CrmDelete("lead", LEAD_2)], links)
    (flag,) = plan.delete_flags
    assert (flag.crm_id, flag.local_id) == (LEAD_ID, 7)
    (skipped,) = plan.skipped
    assert skipped.crm_id == LEAD_2
    assert plan.creates == plan.updates == ()


def test_a_record_changed_after_its_person_was_deleted_gets_a_new_person() -> None:
    """B27/R70: identity is the CRM id; the deleted person is not revived, a new one is made."""
    plan = plan_page(LEAD_MAP, [_lead()], {LEAD_ID: LinkState(None, BASELINE)})
    (create,) = plan.creates
    assert create.replaces_deleted


def test_a_record_unchanged_since_its_person_was_deleted_gets_no_new_person() -> None:
    """B27: a full read (an expired delta token) meets the very version last synced before the
    person was deleted here: the record did not change, so no person is made; a later version
    of the same record does make one."""
    state = LinkState(None, BASELINE, etag='W/"7"')
    unchanged = plan_page(LEAD_MAP, [_lead(etag='W/"7"')], {LEAD_ID: state})
    assert unchanged.creates == ()
    (skipped,) = unchanged.skipped
    assert skipped.crm_id == LEAD_ID
    changed = plan_page(LEAD_MAP, [_lead(etag='W/"8"', firstname="Eve")], {LEAD_ID: state})
    (create,) = changed.creates
    assert create.replaces_deleted


@pytest.mark.parametrize(
    ("value", "selected", "syncs"),
    [
        (None, True, True),  # empty → sync
        (True, True, True),  # Yes → sync
        (False, True, False),  # only an explicit No skips
        (False, False, True),  # R33: the filter only counts when selected
    ],
)
def test_sync_filter_decision_table(value: bool | None, selected: bool, syncs: bool) -> None:
    """B20/R63: absent/empty/Yes → sync; explicit No → skip."""
    assert passes_sync_filter({"new_synctomkto": value}, selected) is syncs
    expected = FilterAction.SYNC if syncs else FilterAction.SKIP
    assert sync_filter({"new_synctomkto": value}, selected) is expected
    assert passes_sync_filter({}, selected) is True


def test_the_sync_filter_skips_without_touching_the_person() -> None:
    """B20: Yes→No stops syncing the record without deleting the person."""
    mapping = mapping_for_selection(LEAD_SCHEMA, [*LEAD_MAP.attributes, "new_synctomkto"])
    links = {LEAD_ID: LinkState(_person(), BASELINE)}
    page = [_lead(firstname="Eve", new_synctomkto=False), _lead(LEAD_2, new_synctomkto=None)]
    plan = plan_page(mapping, page, links)
    (skipped,) = plan.skipped
    assert skipped.crm_id == LEAD_ID
    assert "new_synctomkto" in skipped.reason
    assert [c.crm_id for c in plan.creates] == [LEAD_2]  # No→Yes / empty creates the person
    assert plan.delete_flags == ()
    (marked,) = plan.updates  # the person is untouched; only "no longer synced" is recorded
    assert (marked.crm_id, marked.marketing_writes, marked.crm_writes) == (LEAD_ID, {}, {})
    assert LinkState(_person(), marked.new_baseline).sync_filter_passes is False
    assert LinkState(_person(), marked.new_baseline).agreed_baseline == BASELINE
    # Unselected, the column does not filter (R33).
    unselected = plan_page(LEAD_MAP, [_lead(new_synctomkto=False)], links)
    assert len(unselected.updates) == 1


@pytest.mark.parametrize(
    ("lead", "contact", "outcome"),
    [
        (False, False, QualifyOutcome.NOTHING),
        (True, True, QualifyOutcome.CONTINUE_AS_CONTACT),
        (False, True, QualifyOutcome.NEW_PERSON_FOR_CONTACT),
        (True, False, QualifyOutcome.LEAD_ONLY),
    ],
)
def test_qualify_table(lead: bool, contact: bool, outcome: QualifyOutcome) -> None:
    """B30/R76: qualifying under the sync filter."""
    assert qualify_outcome(lead, contact) is outcome


def _contact(origin: str | None, **values: CrmValue) -> CrmChange:
    row: dict[str, CrmValue] = {
        "firstname": "Ada",
        "address1_city": "Turin",
        "createdon": CREATED,
        "leadsourcecode": 8,
        "originatingleadid": LookupValue(origin, "lead") if origin else None,
    }
    row.update(values)
    return CrmChange(CrmRecord("contact", CONTACT_ID, row, etag='W/"1"'))


def test_a_qualified_lead_continues_as_the_same_person() -> None:
    """B30: the same person continues, its CRM type becomes Contact and it links the contact;
    a marketing edit not yet sent to the lead survives (merged against the lead's baseline)."""
    page = [_contact(LEAD_ID)]
    assert originating_lead_ids(page) == (LEAD_ID,)
    leads = {LEAD_ID: LinkState(_person(city="Genoa"), BASELINE)}
    plan = plan_page(CONTACT_MAP, page, {}, originating_leads=leads)
    assert plan.creates == ()
    (update,) = plan.updates
    assert update.local_id == 7
    assert update.relinked_from == LEAD_ID
    assert update.crm_type == "Contact"
    assert update.marketing_writes["crmType"] == "Contact"
    assert update.marketing_writes["crmContactId"] == CONTACT_ID
    assert update.crm_writes == {"address1_city": "Genoa"}


FILTER_LEAD_MAP = mapping_for_selection(LEAD_SCHEMA, [*LEAD_MAP.attributes, "new_synctomkto"])
FILTER_CONTACT_MAP = mapping_for_selection(
    CONTACT_SCHEMA, [*CONTACT_MAP.field_attributes, "new_synctomkto"]
)


def _baseline_after(plan_baseline: dict[str, object], person: LocalRecord) -> LinkState:
    """The link state the store holds after applying a plan's update."""
    return LinkState(person, plan_baseline)


def test_a_lead_switched_to_no_then_qualified_gives_the_contact_a_new_person() -> None:
    """R64 + R76 F/T: a linked lead whose filter went Yes→No keeps its person (stale), and when
    it is qualified the contact (filter Yes) becomes a new person, not a continuation."""
    synced = LinkState(_person(), {**BASELINE, "newSynctomkto": True})
    lead_plan = plan_page(FILTER_LEAD_MAP, [_lead(new_synctomkto=False)], {LEAD_ID: synced})
    (marked,) = lead_plan.updates
    assert marked.marketing_writes == {}
    stored = _baseline_after(marked.new_baseline, _person())
    contact = _contact(LEAD_ID, new_synctomkto=True)
    plan = plan_page(FILTER_CONTACT_MAP, [contact], {}, originating_leads={LEAD_ID: stored})
    assert plan.updates == ()
    (create,) = plan.creates
    assert (create.crm_type, create.values["crmContactId"]) == ("Contact", CONTACT_ID)
    # Still synced (T/T), the same lead's person continues as the contact.
    plan = plan_page(FILTER_CONTACT_MAP, [contact], {}, originating_leads={LEAD_ID: synced})
    assert plan.creates == ()
    assert plan.updates[0].relinked_from == LEAD_ID
    # The filter state may also be carried explicitly on the link state.
    told = LinkState(_person(), BASELINE, filtered_out=True)
    plan = plan_page(FILTER_CONTACT_MAP, [contact], {}, originating_leads={LEAD_ID: told})
    assert len(plan.creates) == 1


def test_a_lead_switched_back_to_yes_merges_against_the_last_agreed_baseline() -> None:
    """R64 No→Yes: the stale person updates again; a marketing edit made meanwhile is still a
    change to send (marketing wins for leads), merged against the baseline before the No."""
    synced = LinkState(_person(), {**BASELINE, "newSynctomkto": True})
    (marked,) = plan_page(FILTER_LEAD_MAP, [_lead(new_synctomkto=False)], {LEAD_ID: synced}).updates
    # Marked once: a later change while excluded is skipped without another update.
    again = plan_page(
        FILTER_LEAD_MAP,
        [_lead(firstname="Bo", new_synctomkto=False)],
        {LEAD_ID: LinkState(_person(), marked.new_baseline)},
    )
    assert again.updates == ()
    assert len(again.skipped) == 1
    edited = _person(city="Genoa", newSynctomkto=True)
    plan = plan_page(
        FILTER_LEAD_MAP,
        [_lead(firstname="Bo", new_synctomkto=True)],
        {LEAD_ID: LinkState(edited, marked.new_baseline)},
    )
    (update,) = plan.updates
    assert update.marketing_writes == {"firstName": "Bo"}
    assert update.crm_writes == {"address1_city": "Genoa"}
    assert LinkState(edited, update.new_baseline).sync_filter_passes is True


def test_a_filtered_contact_of_a_synced_lead_leaves_the_lead_person_alone() -> None:
    """R76 T/F: the contact is not synced and the lead's person is not continued."""
    leads = {LEAD_ID: LinkState(_person(), BASELINE)}
    contact = _contact(LEAD_ID, new_synctomkto=False)
    plan = plan_page(FILTER_CONTACT_MAP, [contact], {}, originating_leads=leads)
    assert plan.creates == ()
    assert plan.updates == ()
    assert "R76 T/F" in plan.skipped[0].reason


def test_a_contact_from_an_unsynced_lead_gets_a_new_person() -> None:
    """R76 F/T: the lead never synced, so the contact becomes a new person."""
    plan = plan_page(CONTACT_MAP, [_contact(LEAD_ID)], {}, originating_leads={})
    (create,) = plan.creates
    assert create.crm_type == "Contact"
    assert create.values["crmContactId"] == CONTACT_ID


def test_later_lead_changes_do_not_override_the_contact() -> None:
    """B30: once the person continues as a contact, the qualified lead no longer drives it."""
    person = _person(crm_type="Contact")
    plan = plan_page(LEAD_MAP, [_lead(firstname="Old")], {LEAD_ID: LinkState(person, BASELINE)})
    assert plan.updates == ()
    assert "contact" in plan.skipped[0].reason
    # Nor does deleting that lead flag the person: it lives on as the contact.
    deleted = plan_page(
        LEAD_MAP, [CrmDelete("lead", LEAD_ID)], {LEAD_ID: LinkState(person, BASELINE)}
    )
    assert deleted.delete_flags == ()
    assert "contact" in deleted.skipped[0].reason


def test_a_value_that_does_not_convert_fails_that_record_alone() -> None:
    """B37: one bad record is reported; the rest of the page is planned."""
    bad = _lead(LEAD_2, address1_city=42)
    plan = plan_page(LEAD_MAP, [bad, _lead()], {})
    (failure,) = plan.failures
    assert (failure.crm_id, failure.direction) == (LEAD_2, "to_marketing")
    assert "address1_city" in failure.message
    assert [c.crm_id for c in plan.creates] == [LEAD_ID]


def test_one_value_dynamics_would_reject_does_not_hold_back_the_others() -> None:
    """B37/B38: a too-long first name stays pending alone; the city edit is sent and agreed
    once Dynamics accepts it, and the failure names the field."""
    person = _person(firstName="Bartholomew-Jones", city="Genoa")
    plan = plan_page(LEAD_MAP, [_lead()], {LEAD_ID: LinkState(person, BASELINE)})
    (failure,) = plan.failures
    assert (failure.direction, failure.code) == ("to_crm", STRING_TOO_LONG)
    assert "firstName" in failure.message
    (update,) = plan.updates
    assert update.crm_writes == {"address1_city": "Genoa"}
    assert update.new_baseline["city"] == "Genoa"
    assert update.new_baseline["firstName"] == "Ada"  # never agreed: retried next time
    assert update.baseline_if_rejected["city"] == "Turin"
    assert update.baseline_if_rejected["firstName"] == "Ada"


def test_a_marketing_value_dynamics_would_reject_stays_pending() -> None:
    """B37/B38: a too-long first name is not sent and not agreed; the other side still syncs."""
    person = _person(firstName="Bartholomew-Jones")
    plan = plan_page(
        LEAD_MAP, [_lead(address1_city="Milan")], {LEAD_ID: LinkState(person, BASELINE)}
    )
    (failure,) = plan.failures
    assert failure.direction == "to_crm"
    assert failure.code == STRING_TOO_LONG
    assert failure.local_id == 7
    (update,) = plan.updates
    assert update.crm_writes == {}
    assert update.marketing_writes == {"city": "Milan"}
    assert update.new_baseline["firstName"] == "Ada"  # still differs: retried next time


def test_only_the_latest_change_of_a_record_counts() -> None:
    plan = plan_page(LEAD_MAP, [_lead(firstname="One"), _lead(firstname="Two")], {})
    (create,) = plan.creates
    assert create.values["firstName"] == "Two"


def test_one_way_records_take_dynamics_values_and_never_write_back() -> None:
    """B2/B3/R40: a local company edit is overwritten by the next Dynamics update."""
    schema = EntitySchema(
        "account",
        "accounts",
        "accountid",
        "name",
        True,
        False,
        {
            "accountid": AttributeSchema("accountid", T.UNIQUEIDENTIFIER),
            "name": AttributeSchema("name", T.STRING, max_length=160),
            "address1_city": AttributeSchema("address1_city", T.STRING, max_length=80),
        },
    )
    mapping = default_mapping(schema)
    row: dict[str, CrmValue] = {"accountid": ACCOUNT_ID, "name": "Acme", "address1_city": "Lyon"}
    company = LocalRecord(3, {"externalCompanyId": ACCOUNT_ID, "company": "ACME Corp"})
    baseline = {"externalCompanyId": ACCOUNT_ID, "company": "Acme", "billingCity": "Paris"}
    plan = plan_page(
        mapping,
        [CrmChange(CrmRecord("account", ACCOUNT_ID, row))],
        {ACCOUNT_ID: LinkState(company, baseline)},
    )
    (update,) = plan.updates
    assert update.crm_writes == {}
    assert update.marketing_writes == {"company": "Acme", "billingCity": "Lyon"}
    assert local_kind_for("account") == "company"
    assert local_kind_for("lead") == local_kind_for("contact") == "person"
    assert local_kind_for("new_project") == "custom"


OPPORTUNITY_SCHEMA = EntitySchema(
    "opportunity",
    "opportunities",
    "opportunityid",
    "name",
    True,
    False,
    {
        "opportunityid": AttributeSchema("opportunityid", T.UNIQUEIDENTIFIER),
        "name": AttributeSchema("name", T.STRING, max_length=300),
        "customerid": AttributeSchema("customerid", T.CUSTOMER, targets=("account", "contact")),
    },
)
OPP_1 = "55555555-5555-4555-8555-555555555555"
OPP_2 = "66666666-6666-4666-8666-666666666666"


def _opportunity(record_id: str, customer: LookupValue) -> CrmChange:
    row: dict[str, CrmValue] = {"opportunityid": record_id, "name": "Deal", "customerid": customer}
    return CrmChange(CrmRecord("opportunity", record_id, row))


def test_opportunity_customer_gives_company_and_role() -> None:
    """B6/R42: a contact customer → a role for that contact, the company is the contact's
    account; an account customer → the company only."""
    page = [
        _opportunity(OPP_1, LookupValue(CONTACT_ID, "contact")),
        _opportunity(OPP_2, LookupValue(ACCOUNT_ID, "account")),
    ]
    assert customer_contact_ids(page) == (CONTACT_ID,)
    plan = plan_page(
        default_mapping(OPPORTUNITY_SCHEMA),
        page,
        {},
        contact_companies={CONTACT_ID: ACCOUNT_ID},
    )
    by_id = {c.crm_id: c for c in plan.creates}
    assert by_id[OPP_1].values["externalCompanyId"] == ACCOUNT_ID
    assert by_id[OPP_2].values["externalCompanyId"] == ACCOUNT_ID
    assert "crmType" not in by_id[OPP_1].values
    assert plan.roles == (PlannedRole(OPP_1, CONTACT_ID),)
    # A contact with no account leaves the opportunity without a company.
    alone = plan_page(default_mapping(OPPORTUNITY_SCHEMA), page[:1], {})
    assert alone.creates[0].values["externalCompanyId"] is None
