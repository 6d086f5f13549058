"""Planning the marketing → Dynamics direction: outbox changes into conditional updates.

Pure, no I/O. The cycle runner takes the persons with outbox entries (B18), loads their links
(Dynamics id, ETag) and baselines, and calls :func:`plan_push`. For each person the merge runs
with the baseline standing in for the Dynamics side — the last state both sides agreed on —
so every field the person changed since becomes a Dynamics write, sent as an update
conditional on the stored ETag (B25). If Dynamics changed the record meanwhile the update
fails its precondition, and the runner re-reads the record and plans it with
:func:`crmsync.sync.plan.plan_page`, where collisions are decided (B22, B23).

A value Dynamics would reject is not sent and not agreed: the record is reported as failing,
naming the field (B37), and its baseline keeps the old value, so the edit is retried when the
person changes again or an admin retries it (B38); the record's other fields are sent. A lead
the sync filter excludes since it switched Yes→No is not pushed (R64). Persons without a
Dynamics record, or whose record was deleted in Dynamics, are not pushed: only Sync Person to
Microsoft creates records (B28, B31).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from crmsync.dynamics.types import WriteRequest
from crmsync.errors import InvalidValueError
from crmsync.sync.convert import canonical_value
from crmsync.sync.filtering import FILTERED_OUT_KEY
from crmsync.sync.mapping import EntityMapping
from crmsync.sync.merge import merge_record, normalize_value
from crmsync.sync.plan import CRM_TYPES, LocalRecord, RecordFailure, SkippedRecord
from crmsync.sync.policy import policy_for


@dataclass(frozen=True, slots=True)
class PendingPush:
    """A linked local record with marketing-side changes waiting to go to Dynamics."""

    crm_id: str | None
    local: LocalRecord
    baseline: Mapping[str, object] | None
    etag: str | None = None
    crm_is_deleted: bool = False


@dataclass(frozen=True, slots=True)
class PlannedPush:
    """One conditional update, and the baselines to store after it succeeds or is rejected."""

    crm_id: str
    local_id: int
    request: WriteRequest
    new_baseline: dict[str, object]
    baseline_if_rejected: dict[str, object]


@dataclass(frozen=True, slots=True)
class LocalRevert:
    """Fields that sync from Dynamics only, put back after a local edit (never sent; B3)."""

    crm_id: str
    local_id: int
    marketing_writes: dict[str, object]


@dataclass(frozen=True, slots=True)
class PushPlan:
    """The updates to send, plus the records with nothing to send, skipped or failing.

    ``unchanged`` lists local ids whose outbox entries can be cleared: their values already
    agree with the baseline (e.g. an edit that was undone, or an echo of a Dynamics change).
    """

    entity: str
    pushes: tuple[PlannedPush, ...] = ()
    unchanged: tuple[int, ...] = ()
    skipped: tuple[SkippedRecord, ...] = ()
    failures: tuple[RecordFailure, ...] = ()
    reverts: tuple[LocalRevert, ...] = ()


def plan_push(mapping: EntityMapping, pending: Iterable[PendingPush]) -> PushPlan:
    """Plan the Dynamics updates of ``mapping.entity`` for records with outbox changes.

    Only fields present in the baseline are compared: a newly selected field is filled from
    Dynamics first (B12), never pushed blank. Raises :class:`~crmsync.errors.InvalidValueError`
    for a one-way entity, which is never written to Dynamics (B2).
    """
    entity = mapping.entity
    if not mapping.two_way:
        raise InvalidValueError(f"{entity} syncs from Dynamics only; nothing is pushed (B2)")
    pushes: list[PlannedPush] = []
    unchanged: list[int] = []
    skipped: list[SkippedRecord] = []
    failures: list[RecordFailure] = []
    reverts: list[LocalRevert] = []
    crm_only = mapping.crm_only_fields
    for item in pending:
        local = item.local
        if item.crm_id is None or item.crm_is_deleted:
            reason = (
                "the Dynamics record was deleted; Sync Person to Microsoft creates a new one"
                if item.crm_is_deleted
                else "no Dynamics record; Sync Person to Microsoft creates one"
            )
            skipped.append(SkippedRecord(entity, item.crm_id or "", reason))
            continue
        if entity == "lead" and local.crm_type == CRM_TYPES["contact"]:
            skipped.append(
                SkippedRecord(entity, item.crm_id, "the person continues as a contact (B30)")
            )
            continue
        if item.baseline is not None and FILTERED_OUT_KEY in item.baseline:
            skipped.append(
                SkippedRecord(entity, item.crm_id, "the sync filter new_synctomkto is No (R64)")
            )
            continue
        if item.baseline is None:
            skipped.append(
                SkippedRecord(
                    entity, item.crm_id, "not synced yet; the next Dynamics read merges it"
                )
            )
            continue
        fields = [m.field for m in mapping.fields if m.field in item.baseline]
        marketing = {
            m.field: canonical_value(m.converter, local.values.get(m.field))
            for m in mapping.fields
            if m.field in item.baseline
        }
        crm_type = local.crm_type or CRM_TYPES.get(entity)
        result = merge_record(
            item.baseline,
            item.baseline,
            marketing,
            policy_for(entity, crm_type),
            fields,
            one_way_fields=crm_only,
        )
        if result.marketing_writes:
            reverts.append(LocalRevert(item.crm_id, local.local_id, dict(result.marketing_writes)))
        if not result.crm_writes:
            unchanged.append(local.local_id)
            continue
        kept = dict(result.new_baseline)
        for name in result.crm_writes:
            kept[name] = normalize_value(item.baseline[name])
        converted = mapping.convert_writes(result.crm_writes)
        new_baseline = dict(result.new_baseline)
        for name in converted.rejected_fields:
            new_baseline[name] = kept[name]  # never agreed: retried on the next change (B38)
        if converted.rejected:
            failures.append(
                RecordFailure(
                    entity,
                    item.crm_id,
                    local.local_id,
                    "to_crm",
                    converted.code,
                    converted.message,
                )
            )
        if not converted.values:
            continue
        pushes.append(
            PlannedPush(
                item.crm_id,
                local.local_id,
                WriteRequest.update(entity, item.crm_id, converted.values, item.etag),
                new_baseline,
                kept,
            )
        )
    return PushPlan(
        entity, tuple(pushes), tuple(unchanged), tuple(skipped), tuple(failures), tuple(reverts)
    )
