"""Planning what one page of Dynamics changes does on the marketing side. Pure: no I/O.

The cycle runner reads a page of :class:`~crmsync.dynamics.types.CrmChange` /
:class:`~crmsync.dynamics.types.CrmDelete`, loads the links, baselines and local records of the
ids on it, and calls :func:`plan_page`. The plan says, per record:

* **create** a local record (a person, company, …) for a Dynamics record with no link — never
  de-duplicated against existing persons (B4) — or whose local record was deleted (B27);
* **update** a linked record: the merge's writes for both sides, the new baseline and the
  collisions (B22–B24); Dynamics writes carry the ETag they were merged against (B25);
* **flag deleted**: a Dynamics delete only sets the CRM is-deleted flag (B26, B29);
* **skip**: the sync filter says No (B20), or the change has nothing to act on;
* **fail**: a value that does not convert fails that record alone, with a code and message for
  the activity log and the sync-errors table (B37); a marketing value Dynamics would reject
  stays unsent and out of the baseline, so it is retried (B38), while the record's other
  fields are sent as usual.

Lead qualification (B30, R76) follows :func:`qualify_outcome`: a new contact whose originating
lead is linked to a person and still synced continues that person (history and id kept) as a
Contact, merged against the lead's baseline; a lead the sync filter excludes (never synced, or
switched Yes→No) gives the contact a new person; a contact the filter excludes is not synced.
Later changes of a lead whose person continues as a contact are skipped.

A linked lead switched Yes→No keeps its person untouched (R64); the plan only wraps its
baseline under :data:`FILTERED_OUT_KEY`, which records that the lead is no longer synced
(read back through :attr:`LinkState.sync_filter_passes`), leaves no field to push while it is
excluded, and is unwrapped again when the filter says Yes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from crmsync.dynamics.types import CrmChange, CrmDelete, CrmRecord, CrmValue, LookupValue
from crmsync.errors import ValidationFailedError
from crmsync.sync.convert import canonical_value
from crmsync.sync.filtering import FILTERED_OUT_KEY as FILTERED_OUT_KEY
from crmsync.sync.filtering import QUALIFIED_KEY, is_qualified_lead
from crmsync.sync.filtering import SYNC_FILTER_ATTRIBUTE as SYNC_FILTER_ATTRIBUTE
from crmsync.sync.filtering import FilterAction as FilterAction
from crmsync.sync.filtering import QualifyOutcome as QualifyOutcome
from crmsync.sync.filtering import agreed_baseline as agreed_baseline
from crmsync.sync.filtering import passes_sync_filter as passes_sync_filter
from crmsync.sync.filtering import qualify_outcome as qualify_outcome
from crmsync.sync.filtering import sync_filter as sync_filter
from crmsync.sync.mapping import CrmWrites, EntityMapping
from crmsync.sync.merge import Collision, merge_record, normalize_value, same_value
from crmsync.sync.policy import CollisionPolicy, Side, policy_for

ORIGINATING_LEAD_ATTRIBUTE = "originatingleadid"
"""A contact's lookup to the lead it was qualified from (always read: an engine column, B30)."""

CUSTOMER_ATTRIBUTE = "customerid"
"""An opportunity's potential customer: an account or a contact (B6, R42)."""

CRM_TYPES = {"lead": "Lead", "contact": "Contact"}
"""The person's CRM type for each two-way entity (B7)."""

LOCAL_KINDS = {
    "lead": "person",
    "contact": "person",
    "account": "company",
    "opportunity": "opportunity",
    "systemuser": "salesperson",
    "team": "team",
}


def local_kind_for(entity: str) -> str:
    """The kind of local record a Dynamics entity syncs into (custom entities: ``custom``)."""
    return LOCAL_KINDS.get(entity, "custom")


@dataclass(frozen=True, slots=True)
class LocalRecord:
    """The marketing side of a link: the local record's id, values and (persons) CRM type."""

    local_id: int
    values: Mapping[str, object]
    crm_type: str | None = None


@dataclass(frozen=True, slots=True)
class LinkState:
    """What the store knows about one Dynamics id: its local record (``None`` once deleted
    locally, B27), the baseline of the last sync and the ETag of the version last synced.

    ``filtered_out`` says whether the sync filter currently excludes the record (B20); when
    not given it is read from the baseline, which a plan wraps under :data:`FILTERED_OUT_KEY`
    when a linked lead switches Yes→No.
    """

    local: LocalRecord | None
    baseline: Mapping[str, object] | None
    filtered_out: bool | None = None
    etag: str | None = None

    def unchanged_since_local_delete(self, record: CrmRecord) -> bool:
        """Whether ``record`` is the very version last synced before its local record was
        deleted (B27): a full read that meets it again must not create a new person."""
        return self.local is None and self.etag is not None and record.etag == self.etag

    @property
    def sync_filter_passes(self) -> bool:
        """Whether the record was still synced when last read (R64, R76)."""
        if self.filtered_out is not None:
            return not self.filtered_out
        return self.baseline is None or FILTERED_OUT_KEY not in self.baseline

    @property
    def agreed_baseline(self) -> Mapping[str, object] | None:
        """The last state both sides agreed on, unwrapped if the filter excluded the record."""
        return agreed_baseline(self.baseline)


@dataclass(frozen=True, slots=True)
class PlannedCreate:
    """A new local record for a Dynamics record (B4, B27, B30 F/T)."""

    entity: str
    crm_id: str
    values: dict[str, object]
    baseline: dict[str, object]
    crm_type: str | None
    etag: str | None
    replaces_deleted: bool = False


@dataclass(frozen=True, slots=True)
class PlannedUpdate:
    """Writes for a linked record; ``crm_writes`` are Dynamics columns, sent with ``etag``.

    ``relinked_from`` is set when a contact continues the person of the lead it was qualified
    from (B30); ``crm_type`` is the person's CRM type after the update. Store ``new_baseline``
    once Dynamics accepted ``crm_writes``; if Dynamics rejects them, store
    ``baseline_if_rejected`` instead, which leaves the unsent fields changed so that they are
    retried (B38). A field whose value would not convert is in neither ``crm_writes`` nor
    either baseline (it stays pending, B38) and is named in the page's failures (B37).
    """

    entity: str
    crm_id: str
    local_id: int
    marketing_writes: dict[str, object]
    crm_writes: dict[str, CrmValue]
    new_baseline: dict[str, object]
    collisions: tuple[Collision, ...]
    etag: str | None
    crm_type: str | None = None
    relinked_from: str | None = None
    baseline_if_rejected: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlannedDeleteFlag:
    """Set the CRM is-deleted flag of a local record; nothing is deleted (B26, B29)."""

    entity: str
    crm_id: str
    local_id: int


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A change deliberately not applied, and why."""

    entity: str
    crm_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record that failed alone (B37): ``direction`` is ``to_marketing`` or ``to_crm``."""

    entity: str
    crm_id: str
    local_id: int | None
    direction: str
    code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class PlannedRole:
    """An opportunity role for the person linked to ``contact_crm_id`` (B6, R42)."""

    opportunity_crm_id: str
    contact_crm_id: str


@dataclass(frozen=True, slots=True)
class PagePlan:
    """Everything one page of changes does, grouped by kind of work."""

    entity: str
    creates: tuple[PlannedCreate, ...] = ()
    updates: tuple[PlannedUpdate, ...] = ()
    delete_flags: tuple[PlannedDeleteFlag, ...] = ()
    skipped: tuple[SkippedRecord, ...] = ()
    failures: tuple[RecordFailure, ...] = ()
    roles: tuple[PlannedRole, ...] = ()

    @property
    def collisions(self) -> tuple[Collision, ...]:
        """Every collision decided on this page (B24)."""
        return tuple(c for update in self.updates for c in update.collisions)


@dataclass(slots=True)
class _Builder:
    entity: str
    creates: list[PlannedCreate] = field(default_factory=list)
    updates: list[PlannedUpdate] = field(default_factory=list)
    delete_flags: list[PlannedDeleteFlag] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)
    roles: list[PlannedRole] = field(default_factory=list)

    def build(self) -> PagePlan:
        return PagePlan(
            self.entity,
            tuple(self.creates),
            tuple(self.updates),
            tuple(self.delete_flags),
            tuple(self.skipped),
            tuple(self.failures),
            tuple(self.roles),
        )


def originating_lead_ids(items: Iterable[CrmChange | CrmDelete]) -> tuple[str, ...]:
    """The lead ids a page of contact changes was qualified from (to load their links)."""
    ids: dict[str, None] = {}
    for item in items:
        if isinstance(item, CrmChange):
            origin = item.record.values.get(ORIGINATING_LEAD_ATTRIBUTE)
            if isinstance(origin, LookupValue):
                ids.setdefault(origin.id, None)
    return tuple(ids)


def customer_contact_ids(items: Iterable[CrmChange | CrmDelete]) -> tuple[str, ...]:
    """The contacts a page of opportunities names as potential customer (to load their
    companies for B6)."""
    ids: dict[str, None] = {}
    for item in items:
        if isinstance(item, CrmChange):
            customer = item.record.values.get(CUSTOMER_ATTRIBUTE)
            if isinstance(customer, LookupValue) and customer.entity == "contact":
                ids.setdefault(customer.id, None)
    return tuple(ids)


def _apply_customer(
    plan: _Builder,
    record: CrmRecord,
    crm_values: dict[str, object],
    contact_companies: Mapping[str, str | None],
) -> None:
    """B6/R42: a contact customer gives a role, and the company is the contact's account."""
    customer = record.values.get(CUSTOMER_ATTRIBUTE)
    if not isinstance(customer, LookupValue) or customer.entity != "contact":
        return
    plan.roles.append(PlannedRole(record.id, customer.id))
    if "externalCompanyId" in crm_values:
        crm_values["externalCompanyId"] = contact_companies.get(customer.id)


def _latest_per_record(
    items: Iterable[CrmChange | CrmDelete],
) -> list[CrmChange | CrmDelete]:
    """One item per record id, the latest one, in first-seen order."""
    latest: dict[str, CrmChange | CrmDelete] = {}
    for item in items:
        record_id = item.record.id if isinstance(item, CrmChange) else item.id
        latest.pop(record_id, None)
        latest[record_id] = item
    return list(latest.values())


def plan_page(
    mapping: EntityMapping,
    items: Iterable[CrmChange | CrmDelete],
    links: Mapping[str, LinkState],
    *,
    originating_leads: Mapping[str, LinkState] | None = None,
    contact_companies: Mapping[str, str | None] | None = None,
    filter_selected: bool | None = None,
) -> PagePlan:
    """Plan a page of changes of ``mapping.entity`` against the stored ``links``.

    ``links`` holds the link state of every linked id on the page (absent = never linked).
    ``originating_leads`` holds the link state of the leads returned by
    :func:`originating_lead_ids` (contacts only). ``contact_companies`` maps the contacts
    returned by :func:`customer_contact_ids` to their account id (opportunities only; B6).
    ``filter_selected`` defaults to whether the sync-filter column is in the mapping (R33).
    """
    entity = mapping.entity
    if filter_selected is None:
        filter_selected = SYNC_FILTER_ATTRIBUTE in mapping.attributes
    leads = originating_leads or {}
    plan = _Builder(entity)
    for item in _latest_per_record(items):
        if isinstance(item, CrmDelete):
            _plan_delete(plan, item, links.get(item.id))
            continue
        record = item.record
        state = links.get(record.id)
        if state is not None and state.unchanged_since_local_delete(record):
            plan.skipped.append(
                SkippedRecord(entity, record.id, "deleted locally; unchanged in Dynamics since")
            )
            continue
        linked = state is not None and state.local is not None
        origin = None if linked else _originating_lead(entity, record, leads)
        if not passes_sync_filter(record.values, filter_selected):
            _plan_filtered_out(plan, record, state, origin)
            continue
        try:
            crm_values = mapping.to_marketing(record.values, record.id)
        except ValidationFailedError as exc:
            local_id = state.local.local_id if state and state.local else None
            plan.failures.append(
                RecordFailure(entity, record.id, local_id, "to_marketing", exc.code, exc.message)
            )
            continue
        if entity == "opportunity":
            _apply_customer(plan, record, crm_values, contact_companies or {})
        if state is not None and state.local is not None:
            _plan_linked(plan, mapping, record, crm_values, state)
            continue
        if origin is not None and _qualify(origin, True) is QualifyOutcome.CONTINUE_AS_CONTACT:
            _plan_continuation(plan, mapping, record, crm_values, origin)
            continue
        _plan_create(plan, mapping, record, crm_values, replaces_deleted=state is not None)
    return plan.build()


def _plan_delete(plan: _Builder, item: CrmDelete, state: LinkState | None) -> None:
    if state is None or state.local is None:
        plan.skipped.append(
            SkippedRecord(plan.entity, item.id, "deleted in Dynamics; no local record to flag")
        )
        return
    if plan.entity == "lead" and state.local.crm_type == CRM_TYPES["contact"]:
        # B30: the person lives on as the contact; its qualified lead going away changes nothing.
        plan.skipped.append(
            SkippedRecord(plan.entity, item.id, "the person continues as a contact (B30)")
        )
        return
    plan.delete_flags.append(PlannedDeleteFlag(plan.entity, item.id, state.local.local_id))


def _originating_lead(
    entity: str, record: CrmRecord, leads: Mapping[str, LinkState]
) -> tuple[str, LinkState | None] | None:
    """The lead a contact was qualified from and its link state (``None``: never linked)."""
    if entity != "contact":
        return None
    origin = record.values.get(ORIGINATING_LEAD_ATTRIBUTE)
    if not isinstance(origin, LookupValue):
        return None
    return origin.id, leads.get(origin.id)


def _qualify(origin: tuple[str, LinkState | None], contact_passes: bool) -> QualifyOutcome:
    """R76 for a contact qualified from ``origin``: the lead counts as synced when it is linked
    to a person that still exists and its sync filter did not exclude it since."""
    state = origin[1]
    lead_synced = state is not None and state.local is not None and state.sync_filter_passes
    return qualify_outcome(lead_synced, contact_passes)


def _plan_filtered_out(
    plan: _Builder,
    record: CrmRecord,
    state: LinkState | None,
    origin: tuple[str, LinkState | None] | None,
) -> None:
    """B20/R64: skip a record the sync filter excludes; a linked lead records that it is no
    longer synced (its baseline is wrapped, its person untouched) for R76 at qualify time."""
    reason = "the sync filter new_synctomkto is No (B20)"
    if origin is not None:
        outcome = _qualify(origin, False)
        reason += (
            "; the lead's person stays a Lead (R76 T/F)"
            if outcome is QualifyOutcome.LEAD_ONLY
            else "; neither the lead nor the contact is synced (R76 F/F)"
        )
    plan.skipped.append(SkippedRecord(plan.entity, record.id, reason))
    local = state.local if state is not None else None
    if (
        plan.entity != "lead"
        or state is None
        or local is None
        or local.crm_type == CRM_TYPES["contact"]
        or not state.sync_filter_passes
    ):
        return
    agreed = state.agreed_baseline
    wrapped: dict[str, object] = {FILTERED_OUT_KEY: None if agreed is None else dict(agreed)}
    plan.updates.append(
        PlannedUpdate(
            plan.entity,
            record.id,
            local.local_id,
            {},
            {},
            wrapped,
            (),
            record.etag,
            local.crm_type,
            None,
            dict(wrapped),
        )
    )


def _plan_create(
    plan: _Builder,
    mapping: EntityMapping,
    record: CrmRecord,
    crm_values: dict[str, object],
    *,
    replaces_deleted: bool,
) -> None:
    crm_type = CRM_TYPES.get(plan.entity)
    # normalize_value inlined: this runs for every field of every record of an initial sync
    baseline = {
        name: (value.strip() or None) if value.__class__ is str else value
        for name, value in crm_values.items()
    }
    values = dict(baseline)
    if crm_type is not None:
        values["crmType"] = crm_type
    values["crmIsDeleted"] = False
    plan.creates.append(
        PlannedCreate(
            plan.entity, record.id, values, baseline, crm_type, record.etag, replaces_deleted
        )
    )


def _policy(entity: str, crm_type: str | None) -> CollisionPolicy:
    if entity in CRM_TYPES:
        return policy_for(entity, crm_type or CRM_TYPES[entity])
    return policy_for(entity)


def _marketing_values(mapping: EntityMapping, local: LocalRecord) -> dict[str, object]:
    return {
        m.field: canonical_value(m.converter, local.values.get(m.field)) for m in mapping.fields
    }


def _plan_linked(
    plan: _Builder,
    mapping: EntityMapping,
    record: CrmRecord,
    crm_values: dict[str, object],
    state: LinkState,
) -> None:
    local = state.local
    if local is None:
        return
    if plan.entity == "lead" and local.crm_type == CRM_TYPES["contact"]:
        plan.skipped.append(
            SkippedRecord(
                plan.entity, record.id, "the person continues as a contact since qualify (B30)"
            )
        )
        return
    baseline = state.agreed_baseline
    # A lead or contact linked before anything was agreed was asked for by Sync Person to
    # Microsoft (B31, B33) and created by a push whose answer was never stored (a lost answer,
    # a killed process): Dynamics holds what that create sent, so the person's values win.
    origin = Side.MARKETING if baseline is None and plan.entity in CRM_TYPES else Side.CRM
    # B30: a qualified lead is read-only and its contact holds the values of the moment it
    # was qualified; the person's changes wait for that contact (see crmsync.sync.filtering).
    qualified = plan.entity == "lead" and is_qualified_lead(record.values)
    _plan_merge(
        plan,
        mapping,
        record,
        crm_values,
        local,
        baseline,
        local.crm_type,
        None,
        origin=origin,
        hold_writes=qualified,
    )


def _plan_continuation(
    plan: _Builder,
    mapping: EntityMapping,
    record: CrmRecord,
    crm_values: dict[str, object],
    continued: tuple[str, LinkState | None],
) -> None:
    lead_id, lead_state = continued
    local = lead_state.local if lead_state is not None else None
    if lead_state is None or local is None:
        return
    fields = set(mapping.field_names)
    baseline = {k: v for k, v in (lead_state.agreed_baseline or {}).items() if k in fields}
    contact = CRM_TYPES["contact"]
    _plan_merge(plan, mapping, record, crm_values, local, baseline, contact, lead_id)


def _plan_merge(
    plan: _Builder,
    mapping: EntityMapping,
    record: CrmRecord,
    crm_values: dict[str, object],
    local: LocalRecord,
    baseline: Mapping[str, object] | None,
    crm_type: str | None,
    relinked_from: str | None,
    *,
    origin: Side = Side.CRM,
    hold_writes: bool = False,
) -> None:
    """Merge one linked record and plan its update. With ``hold_writes`` (a qualified lead)
    nothing is written to Dynamics: the fields the merge would send stay out of the baseline,
    which is marked :data:`QUALIFIED_KEY`, so the contact's merge finds them changed here."""
    marketing_values = _marketing_values(mapping, local)
    result = merge_record(
        baseline,
        crm_values,
        marketing_values,
        _policy(plan.entity, crm_type),
        mapping.field_names,
        one_way_fields=mapping.crm_only_fields,
        origin=origin,
        rules=mapping.field_rules,
    )
    # Fields sent to Dynamics are only agreed once it accepts them (B38); a field whose value
    # does not convert is not sent at all and stays out of the baseline, alone (B37).
    old = baseline or {}
    unsent_baseline = _without_agreement(result.new_baseline, result.crm_writes, old)
    _keep_pending(unsent_baseline, result.crm_writes, old, crm_values, marketing_values)
    new_baseline = result.new_baseline
    crm_writes: dict[str, CrmValue] = {}
    if hold_writes:
        unsent_baseline[QUALIFIED_KEY] = True
        new_baseline = unsent_baseline
    elif result.crm_writes:
        converted = mapping.convert_writes(result.crm_writes)
        crm_writes = converted.values
        if converted.rejected:
            new_baseline = _without_agreement(new_baseline, converted.rejected_fields, old)
            plan.failures.append(_rejection(plan.entity, record.id, local.local_id, converted))
    marketing_writes = dict(result.marketing_writes)
    if relinked_from is not None:
        marketing_writes["crmType"] = crm_type
    plan.updates.append(
        PlannedUpdate(
            plan.entity,
            record.id,
            local.local_id,
            marketing_writes,
            crm_writes,
            new_baseline,
            result.collisions,
            record.etag,
            crm_type,
            relinked_from,
            unsent_baseline,
        )
    )


def _without_agreement(
    baseline: Mapping[str, object], names: Iterable[str], old: Mapping[str, object]
) -> dict[str, object]:
    """``baseline`` with ``names`` put back to their ``old`` values (absent if they had none)."""
    result = dict(baseline)
    for name in names:
        if name in old:
            result[name] = normalize_value(old[name])
        else:
            result.pop(name, None)
    return result


def _keep_pending(
    unsent: dict[str, object],
    names: Iterable[str],
    old: Mapping[str, object],
    crm_values: Mapping[str, object],
    marketing_values: Mapping[str, object],
) -> None:
    """Make every field of ``names`` differ from the marketing value in ``unsent``, so that the
    push sends it. A write the marketing side did not change (a Dynamics edit overwritten under
    a marketing → Dynamics only rule, a blank refilled under never-blank, a field without a
    baseline yet; B46) is pending against Dynamics' current value rather than the old one."""
    for name in names:
        marketing = normalize_value(marketing_values.get(name))
        if name not in old or same_value(normalize_value(old[name]), marketing):
            unsent[name] = normalize_value(crm_values.get(name))


def _rejection(entity: str, crm_id: str, local_id: int, converted: CrmWrites) -> RecordFailure:
    """The failure naming every field whose value Dynamics would reject (B37)."""
    return RecordFailure(entity, crm_id, local_id, "to_crm", converted.code, converted.message)
