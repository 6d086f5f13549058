"""The sync filter ``new_synctomkto`` and what it means when a lead is qualified (B20, B30).

Pure decision functions: whether one record's current values let it sync (R62–R65), the R76
table for qualifying a lead under the filter, and the baseline wrapper that records that a
linked lead was switched Yes→No — the person stays as it was (stale, never deleted), nothing
is pushed for it, and a contact later qualified from it gets a new person.

A **qualified lead** is read-only in Dynamics, and the contact made from it holds a copy of
its values at that moment; the person continues as that contact, merged against the lead's
baseline (B30). So nothing is written to a lead once it is known to be qualified: its
baseline is marked (:data:`QUALIFIED_KEY`) and keeps the values of the qualification, and the
person's changes are sent to the contact once it is read. A write to the lead in between
would make the lead's baseline newer than the contact's copy, and the continuation would then
take the contact's older value for a Dynamics change and overwrite the person's edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from crmsync.dynamics.types import CrmValue

SYNC_FILTER_ATTRIBUTE = "new_synctomkto"
"""The Dynamics boolean that excludes a record when explicitly No (B20, R62)."""

FILTERED_OUT_KEY = "@syncFilterNo"
"""Baseline key of a linked lead the sync filter excludes; it holds the last agreed baseline.

No marketing field can take this name (REST names are letters and digits), so a baseline
wrapped under it offers no field to compare, push or merge until it is unwrapped (R64)."""


LEAD_STATE_ATTRIBUTE = "statecode"
"""A lead's state: 0 open, 1 qualified, 2 disqualified (read with every lead, B30)."""

QUALIFIED_STATE = 1

QUALIFIED_KEY = "@qualified"
"""Baseline key of a linked lead Dynamics has qualified: nothing is pushed to it any more.

Like :data:`FILTERED_OUT_KEY`, no marketing field can take this name, so the key is never
compared, merged or pushed as a field."""


def is_qualified_lead(values: Mapping[str, CrmValue]) -> bool:
    """Whether a lead's Dynamics values say it was qualified (B30)."""
    return values.get(LEAD_STATE_ATTRIBUTE) == QUALIFIED_STATE


def known_qualified(baseline: Mapping[str, object] | None) -> bool:
    """Whether a lead's stored baseline records that it was qualified when last read."""
    return baseline is not None and baseline.get(QUALIFIED_KEY) is True


class FilterAction(Enum):
    """What the sync filter says about one Dynamics record (B20)."""

    SYNC = "sync"  # create the local record, or update it (No→Yes included)
    SKIP = "skip"  # leave the local record as it is (Yes→No: stale, never deleted)


def sync_filter(values: Mapping[str, CrmValue], filter_selected: bool) -> FilterAction:
    """The ``new_synctomkto`` decision for a record's current values (B20, R63, R64).

    The filter only takes effect when the column is selected (R33). Then absent, empty or Yes
    → sync; only an explicit No skips. Transitions need no memory: No→Yes syncs (creating the
    local record when there is none, updating it otherwise) and Yes→No skips, so the local
    record stays, unchanged and not deleted.
    """
    if filter_selected and values.get(SYNC_FILTER_ATTRIBUTE) is False:
        return FilterAction.SKIP
    return FilterAction.SYNC


def passes_sync_filter(values: Mapping[str, CrmValue], filter_selected: bool) -> bool:
    """Whether :func:`sync_filter` lets the record sync."""
    return sync_filter(values, filter_selected) is FilterAction.SYNC


class QualifyOutcome(Enum):
    """What qualifying a lead into a contact does on the marketing side (B30, R76)."""

    NOTHING = "nothing"  # lead filtered out, contact filtered out
    CONTINUE_AS_CONTACT = "continue_as_contact"  # both synced: the same person continues
    NEW_PERSON_FOR_CONTACT = "new_person_for_contact"  # lead was not synced, contact is
    LEAD_ONLY = "lead_only"  # the lead's person stays; the contact is not synced


def qualify_outcome(lead_synced: bool, contact_passes: bool) -> QualifyOutcome:
    """The R76 table: lead F/contact F → nothing; T/T → continue; F/T → new; T/F → lead only."""
    if contact_passes:
        return (
            QualifyOutcome.CONTINUE_AS_CONTACT
            if lead_synced
            else QualifyOutcome.NEW_PERSON_FOR_CONTACT
        )
    return QualifyOutcome.LEAD_ONLY if lead_synced else QualifyOutcome.NOTHING


def agreed_baseline(baseline: Mapping[str, object] | None) -> Mapping[str, object] | None:
    """``baseline`` without the :data:`FILTERED_OUT_KEY` wrapper (R64)."""
    if baseline is None or FILTERED_OUT_KEY not in baseline:
        return baseline
    inner = baseline[FILTERED_OUT_KEY]
    return inner if isinstance(inner, Mapping) else None
