"""Preparing one round of the push: the outbox entries read, the persons' changed fields
compared with their baselines, and one conditional write per person (B18, B25, B37, B46).

Entries with nothing to send (a deleted person, a marketing-only one, a record gone in
Dynamics, a qualified lead, no difference left) are settled here; a write Dynamics would
refuse is recorded as a failure before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.engine import Connection

from crmsync.dynamics.types import CrmValue, WriteKind
from crmsync.errors import ValidationFailedError
from crmsync.store.outbox import OutboxEntry, delete_outbox, queued_changes
from crmsync.sync.convert import canonical_value
from crmsync.sync.failures import failing_locals
from crmsync.sync.filtering import known_qualified
from crmsync.sync.links import LinkRow, links_of_local, load_baselines, local_values
from crmsync.sync.mapping import CrmWrites, EntityMapping, FieldMapping
from crmsync.sync.merge import normalize_value, same_value
from crmsync.sync.plan import LocalRecord
from crmsync.sync.push_round import (
    DROPPED_DELETED_HERE,
    DROPPED_GONE,
    DROPPED_MARKETING_ONLY,
    DROPPED_QUALIFIED,
    OWNER,
    Failure,
    PushContext,
    PushCounts,
    Send,
)


def _marketing_values(pushed: Sequence[FieldMapping], local: LocalRecord) -> dict[str, object]:
    """The pushed fields that were read for ``local``, normalised for comparing."""
    values = local.values
    return {
        m.field: normalize_value(canonical_value(m.converter, values[m.field]))
        for m in pushed
        if m.field in values
    }


def _choose_link(links: Sequence[LinkRow], crm_type: str | None) -> LinkRow | None:
    by_entity = {link.entity: link for link in links}
    if crm_type == "Contact" and "contact" in by_entity:
        return by_entity["contact"]
    if crm_type == "Lead" and "lead" in by_entity:
        return by_entity["lead"]
    return by_entity.get("contact") or by_entity.get("lead")


def _owner_of_new_record(mapping: EntityMapping, marketing: Mapping[str, object]) -> CrmValue:
    """The owner a new lead or contact is created with: the person's sales user, when the
    mapping reads owners (B5, B31). Owners otherwise sync from Dynamics only."""
    for field_mapping in mapping.fields:
        if field_mapping.attribute == OWNER:
            value = marketing.get(field_mapping.field)
            return field_mapping.converter.to_crm(value) if value is not None else None
    return None


class RoundPreparer:
    """Prepares the writes of one round of outbox entries."""

    def __init__(self, ctx: PushContext) -> None:
        self._ctx = ctx

    def prepare(
        self, entries: Sequence[OutboxEntry], counts: PushCounts, read_up_to: int
    ) -> list[Send]:
        """The writes for ``entries``; entries with nothing to send are settled here.
        ``read_up_to`` is the last outbox id the push has read."""
        by_person: dict[int, list[OutboxEntry]] = {}
        for entry in entries:
            by_person.setdefault(entry.person_id, []).append(entry)
        with self._ctx.engine.begin() as conn:
            person_ids = sorted(by_person)
            wanted = self._fields_wanted(conn, by_person, read_up_to)
            locals_ = self._read_locals(conn, wanted)
            links: dict[int, list[LinkRow]] = {}
            for link in links_of_local(conn, "person", person_ids):
                if link.entity in self._ctx.mappings:
                    links.setdefault(link.local_id, []).append(link)
            chosen: dict[int, LinkRow] = {}
            drop: list[int] = []
            for person_id, person_entries in by_person.items():
                local = locals_.get(person_id)
                found = _choose_link(links.get(person_id, []), local.crm_type if local else None)
                creating = any(e.operation == "create" for e in person_entries)
                gone = local is not None and bool(local.values.get("crmIsDeleted"))
                if local is None or found is None or (gone and not creating):
                    # Deleted here (B27), marketing-only, or its record is gone and no new
                    # one was asked for (B28).
                    drop += [e.id for e in person_entries]
                    reason = (
                        DROPPED_DELETED_HERE
                        if local is None
                        else DROPPED_MARKETING_ONLY
                        if found is None
                        else DROPPED_GONE
                    )
                    counts.drop(reason, len(person_entries))
                    continue
                if found.entity in self._ctx.waits:
                    counts.waiting += 1  # its entries stay queued until the privilege is back
                    continue
                chosen[person_id] = found
            delete_outbox(conn, drop)
            baselines: dict[tuple[str, str], dict[str, object]] = {}
            for entity in self._ctx.mappings:
                ids = [link.crm_id for link in chosen.values() if link.entity == entity]
                for crm_id, values in load_baselines(conn, entity, ids).items():
                    baselines[(entity, crm_id)] = values
            # a record with no baseline yet is created with every field
            unread = {
                person_id: None
                for person_id, link in chosen.items()
                if wanted[person_id] is not None and (link.entity, link.crm_id) not in baselines
            }
            locals_.update(self._read_locals(conn, unread))
        sends: list[Send] = []
        done: list[int] = []
        failures: list[Failure] = []
        for person_id, link in chosen.items():
            entry_ids = tuple(e.id for e in by_person[person_id])
            mapping = self._ctx.mappings[link.entity]
            marketing = _marketing_values(self._ctx.pushed[link.entity], locals_[person_id])
            baseline = baselines.get((link.entity, link.crm_id))
            if known_qualified(baseline):
                # B30: the lead is read-only now; the contact's merge finds these changes
                # (the lead's baseline kept the values the contact was made from).
                done += list(entry_ids)
                counts.drop(DROPPED_QUALIFIED, len(entry_ids))
                continue
            try:
                send, rejected = self._build(
                    person_id, link, mapping, marketing, baseline, entry_ids
                )
            except ValidationFailedError as exc:
                operation = "create" if baseline is None else "update"
                failures.append((person_id, link, exc.code, exc.message, operation))
                done += list(entry_ids)
                continue
            if rejected is not None:
                # B37/B38: the fields Dynamics would refuse stay unsent (and differ from the
                # baseline, so they are retried); the others go now.
                failures.append((person_id, link, rejected.code, rejected.message, "update"))
            if send is None:
                done += list(entry_ids)  # nothing (else) differs from what both sides agreed
            else:
                sends.append(send)
        if failures or done:
            with self._ctx.engine.begin() as conn:
                delete_outbox(conn, done)
                self._ctx.fail(conn, failures)  # writes activities: last
            counts.failed += len(failures)
        return sends

    def _fields_wanted(
        self, conn: Connection, by_person: Mapping[int, Sequence[OutboxEntry]], read_up_to: int
    ) -> dict[int, set[str] | None]:
        """Per person, the pushed fields its entries say changed; ``None`` (every pushed
        field) when an entry does not say (a create, a merge's or an admin's re-queue) or the
        person has an open error (a refused change is retried with the next change, B38).
        Entries queued for the person beyond what the push has read count too: its values
        are read now, so its write carries every change made so far (B18), and those later
        entries find nothing left to send, as when every field was compared."""
        person_ids = sorted(by_person)
        failing = failing_locals(conn, "to_crm", "person", person_ids)
        later = queued_changes(conn, person_ids, after_id=read_up_to)
        pushed = set(self._ctx.all_fields)
        wanted: dict[int, set[str] | None] = {}
        for person_id, entries in by_person.items():
            more = later.get(person_id, set())
            if (
                person_id in failing
                or more is None
                or any(e.operation != "update" or not e.changed_fields for e in entries)
            ):
                wanted[person_id] = None
            else:
                named = {f for e in entries for f in e.changed_fields} | more
                wanted[person_id] = named & pushed
        return wanted

    def _read_locals(
        self, conn: Connection, wanted: Mapping[int, set[str] | None]
    ) -> dict[int, LocalRecord]:
        """The persons in ``wanted`` with the fields wanted: every pushed field for those
        wanting all, the union of the named ones for the others (two reads at most)."""
        every = sorted(p for p, fields in wanted.items() if fields is None)
        named = sorted(p for p, fields in wanted.items() if fields is not None)
        union = sorted({f for fields in wanted.values() if fields is not None for f in fields})
        found: dict[int, LocalRecord] = {}
        for ids, fields in ((every, self._ctx.all_fields), (named, union)):
            if ids:
                columns = [*fields, "crmIsDeleted"]
                found.update(local_values(conn, "person", ids, columns, lock=False))
        return found

    def _build(
        self,
        person_id: int,
        link: LinkRow,
        mapping: EntityMapping,
        marketing: Mapping[str, object],
        baseline: Mapping[str, object] | None,
        entry_ids: tuple[int, ...],
    ) -> tuple[Send | None, CrmWrites | None]:
        """The write for one person, and the fields left out because Dynamics would refuse
        them. A create is all or nothing (raises :class:`ValidationFailedError`)."""
        two_way = self._ctx.two_way[link.entity]
        if baseline is None:
            values = {
                m.field: marketing[m.field] for m in two_way if marketing.get(m.field) is not None
            }
            crm_values = mapping.to_crm(values)
            owner = _owner_of_new_record(mapping, marketing)
            if owner is not None:
                crm_values[OWNER] = owner
            request = self._ctx.write(WriteKind.CREATE, link.entity, link.crm_id, crm_values, None)
            # The new record's baseline holds the blanks too (not sent, so blank in Dynamics):
            # a value set later is then a marketing change that is pushed, not a field with
            # no baseline that the next read of the record fills from Dynamics.
            stored: dict[str, object] = {m.field: None for m in two_way}
            stored.update(values)
            send = Send(person_id, link.entity, link.crm_id, request, stored, entry_ids, True)
            return send, None
        # B46: a field whose rule is never-blank does not send a blank over a value
        writes = {
            m.field: marketing[m.field]
            for m in two_way
            if m.field in marketing
            and m.field in baseline
            and not same_value(marketing[m.field], normalize_value(baseline[m.field]))
            and not (m.rule.never_blank and marketing[m.field] is None)
        }
        if not writes:
            return None, None
        converted = mapping.convert_writes(writes)
        rejected = converted if converted.rejected else None
        if not converted.values:
            return None, rejected
        sent = {k: v for k, v in writes.items() if k not in converted.rejected_fields}
        request = self._ctx.write(
            WriteKind.UPDATE, link.entity, link.crm_id, converted.values, link.etag
        )
        send = Send(
            person_id,
            link.entity,
            link.crm_id,
            request,
            sent,
            entry_ids,
            False,
            partial=rejected is not None,
        )
        return send, rejected
