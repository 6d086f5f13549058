"""Sending the outbox to Dynamics: conditional ``$batch`` writes that lose nothing (B18, B25,
B33, B37, B38).

For each queued person the fields whose marketing value differs from the baseline are sent as
one update, conditional on the ETag the baseline was agreed against (``If-Match``). An entry
that names the fields its change touched (a REST API write) has only those read and compared;
an entry that does not (a create, a merge's or an admin's re-queue), or a person with an open
error, has every pushed field compared. Only fields marketing may write are sent: a field
whose sync rule is Dynamics → marketing only is never pushed, and a blank is not sent over a
value of a never-blank field (B46). Per result:

* accepted → the baseline takes the sent values, the link the new ETag, and exactly the outbox
  entries that were read are removed (an edit queued meanwhile stays queued);
* a create answered "already exists" (an earlier push created it, and its answer was lost or
  its process killed before storing it) → the record holds what *that* create sent, not
  necessarily today's values: no baseline is stored from this send; the record is re-read
  and merged as a record the marketing side created (the person's values win), and what
  differs is sent as an update;
* precondition failed (Dynamics changed meanwhile) → the record is re-read, merged again with
  the collision rules, the merge applied locally, and what is left sent with the fresh ETag;
* refused because the sync user lacks a table privilege (``PrivilegeDenied``) → a setup
  problem, not a bad record: the entity's writes wait (:mod:`crmsync.sync.write_waits`), its
  entries stay queued, and the push goes on with the other entities; each later push first
  checks whether the privilege is back;
* rejected (validation, plug-in, duplicate detection, field security) → that record alone fails:
  the Dynamics code and message go to the person's activity log and ``sync_errors``; the
  marketing value and the baseline stay, so the change is retried when the person changes
  again or an admin retries (B38);
* throttled or transient after the client's own retries → left queued, never marked failing.

A person whose lead/contact does not exist yet is created only when a link with a
client-chosen id was stored first (:func:`~crmsync.sync.crm_create.request_crm_create`, B33):
the create then carries that id, and a retry after a lost answer finds the record instead of
creating a second one.

Entries are written by :mod:`crmsync.store.outbox`; the sync-failure activity by
:func:`crmsync.marketing.activity_log.sync_error`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Engine, bindparam, update
from sqlalchemy.engine import Connection

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import (
    CrmChange,
    CrmValue,
    WriteKind,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from crmsync.errors import (
    RecordNotFoundError,
    RetryLaterError,
    ValidationFailedError,
)
from crmsync.marketing import activity_log
from crmsync.marketing.values import utc_now_text
from crmsync.store.locks import take_write_lock
from crmsync.store.outbox import OutboxEntry, delete_outbox, queued_changes, read_outbox
from crmsync.store.tables import persons
from crmsync.sync.apply import apply_plan
from crmsync.sync.convert import canonical_value
from crmsync.sync.failures import ErrorReport, failing_locals, record_errors, resolve_errors
from crmsync.sync.filtering import known_qualified
from crmsync.sync.links import (
    LinkRow,
    link_states,
    links_of_local,
    load_baselines,
    local_values,
    save_baselines,
    update_links,
)
from crmsync.sync.mapping import CrmWrites, EntityMapping, FieldMapping
from crmsync.sync.merge import normalize_value, same_value
from crmsync.sync.plan import CRM_TYPES, LocalRecord, plan_page
from crmsync.sync.write_waits import (
    WriteWait,
    check_waits,
    is_privilege_refusal,
    missing_privileges,
    read_waits,
    start_wait,
)

MAX_PUSH_CHUNK = 5000
"""At most this many outbox entries per round."""

ROUNDS_IN_FLIGHT = 2
"""Rounds sent and not yet stored at once: the next round goes out before the previous
round's answers are stored, so Dynamics is never left idle while the engine writes. A round
is full ``$batch`` requests for its share of the client's concurrency (:func:`round_size`)."""


def round_size(batch_size: int, concurrency: int) -> int:
    """Outbox entries per round: full ``$batch`` requests, as many as one round's share of
    ``concurrency`` (the rounds in flight together stay within it), at least one."""
    return min(MAX_PUSH_CHUNK, batch_size * max(1, concurrency // ROUNDS_IN_FLIGHT))


DUPLICATE_DETECTION_HEADER = "MSCRM.SuppressDuplicateDetection"

FAILING = frozenset(
    {
        WriteStatus.VALIDATION_ERROR,
        WriteStatus.PERMISSION_DENIED,
        WriteStatus.UNKNOWN_ATTRIBUTE,
    }
)


@dataclass(slots=True)
class PushCounts:
    """What one push of the outbox did."""

    sent: int = 0
    created: int = 0
    updated: int = 0
    remerged: int = 0
    failed: int = 0
    deferred: int = 0
    dropped: int = 0
    failures: list[str] = field(default_factory=list)
    # why entries were dropped: reason -> count (adds up to ``dropped``)
    dropped_why: dict[str, int] = field(default_factory=dict)
    waiting: int = 0  # persons whose changes stay queued because their entity's writes wait
    # entity -> why its writes wait (``permission lost: prvWriteLead missing``)
    waiting_for: dict[str, str] = field(default_factory=dict)

    def drop(self, reason: str, count: int = 1) -> None:
        """Count ``count`` entries dropped for ``reason``."""
        if count:
            self.dropped += count
            self.dropped_why[reason] = self.dropped_why.get(reason, 0) + count


DROPPED_DELETED_HERE = "person deleted here"
DROPPED_MARKETING_ONLY = "marketing-only: no Dynamics lead or contact"
DROPPED_GONE = "record deleted in Dynamics"
DROPPED_QUALIFIED = "lead qualified in Dynamics: read-only there"


_Failure = tuple[int, LinkRow, str | None, str, str]
"""A person whose write failed: its id, link, error code, message and operation."""


@dataclass(frozen=True, slots=True)
class _Send:
    person_id: int
    entity: str
    crm_id: str
    request: WriteRequest
    sent_fields: dict[str, object]
    baseline: dict[str, object]
    entry_ids: tuple[int, ...]
    creating: bool
    partial: bool = False  # some fields were left out as Dynamics would refuse them


def _pushed_fields(mapping: EntityMapping) -> list[FieldMapping]:
    """The fields a push may send for ``mapping``: the two-way ones, and the owner a new record
    is created with. One-way fields are neither read nor compared."""
    return [m for m in mapping.fields if m.two_way or m.attribute == OWNER]


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


OWNER = "ownerid"


def _owner_of_new_record(mapping: EntityMapping, marketing: Mapping[str, object]) -> CrmValue:
    """The owner a new lead or contact is created with: the person's sales user, when the
    mapping reads owners (B5, B31). Owners otherwise sync from Dynamics only."""
    for field_mapping in mapping.fields:
        if field_mapping.attribute == OWNER:
            value = marketing.get(field_mapping.field)
            return field_mapping.converter.to_crm(value) if value is not None else None
    return None


class OutboxPusher:
    """Sends queued marketing-side changes of persons to Dynamics (one push per cycle)."""

    def __init__(
        self,
        engine: Engine,
        client: DynamicsClient,
        mappings: Mapping[str, EntityMapping],
        *,
        duplicate_detection: bool = False,
        renew: Callable[[], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._renew = renew
        self._progress = progress  # called with the entries handled so far, per round
        self._client = client
        self._mappings = {e: m for e, m in mappings.items() if e in CRM_TYPES}
        # Dataverse runs duplicate detection rules on API writes only when asked (spec §7).
        self._options: dict[str, CrmValue] = (
            {DUPLICATE_DETECTION_HEADER: False} if duplicate_detection else {}
        )
        self._waits: dict[str, WriteWait] = {}  # entities whose writes wait (no privilege)
        self._pushed = {e: tuple(_pushed_fields(m)) for e, m in self._mappings.items()}
        self._two_way = {
            e: tuple(f for f in m.fields if f.two_way) for e, m in self._mappings.items()
        }
        self._all_fields = sorted({f.field for fields in self._pushed.values() for f in fields})

    def _write(
        self,
        kind: WriteKind,
        entity: str,
        crm_id: str,
        values: Mapping[str, CrmValue],
        etag: str | None,
    ) -> WriteRequest:
        return WriteRequest(kind, entity, crm_id, dict(values), etag, options=self._options)

    def push(self, person_ids: Sequence[int] | None = None) -> PushCounts:
        """Send everything queued when the push started (with ``person_ids``, at most a few
        thousand, only those persons' entries); return what happened.

        Rounds overlap: while one round's ``$batch`` requests are with Dynamics, the next
        round is read, prepared and sent before the first round's answers are stored, so
        Dynamics always has the next round queued (up to :data:`ROUNDS_IN_FLIGHT` rounds;
        the client's request budget still bounds the requests open at once). A person whose
        writes are still in flight is held back to a later round, so every write is prepared
        from the baseline and ETag its previous write left (B25).
        """
        counts = PushCounts()
        if not self._mappings:
            return counts
        self._waits = check_waits(self._engine, self._client)
        after = 0
        handled = 0
        chunk = round_size(self._client.batch_size, self._client.budget.limit)
        held: list[OutboxEntry] = []  # entries of persons whose writes were in flight
        exhausted = False
        in_flight: deque[tuple[list[_Send], Future[list[WriteResult]]]] = deque()
        with ThreadPoolExecutor(
            max_workers=ROUNDS_IN_FLIGHT, thread_name_prefix="crmsync-push"
        ) as pool:
            while True:
                entries: list[OutboxEntry] = []
                if not exhausted:
                    with self._engine.connect() as conn:
                        entries = read_outbox(
                            conn, after_id=after, limit=chunk, person_ids=person_ids
                        )
                    exhausted = len(entries) < chunk
                    if entries:
                        after = entries[-1].id
                busy = {send.person_id for sends, _ in in_flight for send in sends}
                ready = [e for e in [*held, *entries] if e.person_id not in busy]
                held = [e for e in [*held, *entries] if e.person_id in busy]
                sends = self._prepare(ready, counts, after) if ready else []
                if sends:
                    requests = [send.request for send in sends]
                    in_flight.append((sends, pool.submit(self._client.write_batch, requests)))
                if in_flight and (len(in_flight) >= ROUNDS_IN_FLIGHT or not sends):
                    # the oldest round's answers, stored while the newer one is with Dynamics
                    oldest, answered = in_flight.popleft()
                    self._settle(oldest, answered.result(), counts, remerge=True)
                handled += len(ready)
                if ready:
                    if self._progress is not None:
                        self._progress(handled)
                    if self._renew is not None:
                        self._renew()
                if exhausted and not held and not in_flight:
                    break
        counts.waiting_for = {entity: wait.summary for entity, wait in self._waits.items()}
        return counts

    def _prepare(
        self, entries: Sequence[OutboxEntry], counts: PushCounts, read_up_to: int
    ) -> list[_Send]:
        """The writes for ``entries``; entries with nothing to send are settled here.
        ``read_up_to`` is the last outbox id the push has read."""
        by_person: dict[int, list[OutboxEntry]] = {}
        for entry in entries:
            by_person.setdefault(entry.person_id, []).append(entry)
        with self._engine.begin() as conn:
            person_ids = sorted(by_person)
            wanted = self._fields_wanted(conn, by_person, read_up_to)
            locals_ = self._read_locals(conn, wanted)
            links: dict[int, list[LinkRow]] = {}
            for link in links_of_local(conn, "person", person_ids):
                if link.entity in self._mappings:
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
                if found.entity in self._waits:
                    counts.waiting += 1  # its entries stay queued until the privilege is back
                    continue
                chosen[person_id] = found
            delete_outbox(conn, drop)
            baselines: dict[tuple[str, str], dict[str, object]] = {}
            for entity in self._mappings:
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
        sends: list[_Send] = []
        done: list[int] = []
        failures: list[_Failure] = []
        for person_id, link in chosen.items():
            entry_ids = tuple(e.id for e in by_person[person_id])
            mapping = self._mappings[link.entity]
            marketing = _marketing_values(self._pushed[link.entity], locals_[person_id])
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
            with self._engine.begin() as conn:
                delete_outbox(conn, done)
                self._fail(conn, failures)  # writes activities: last
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
        pushed = set(self._all_fields)
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
        for ids, fields in ((every, self._all_fields), (named, union)):
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
    ) -> tuple[_Send | None, CrmWrites | None]:
        """The write for one person, and the fields left out because Dynamics would refuse
        them. A create is all or nothing (raises :class:`ValidationFailedError`)."""
        two_way = self._two_way[link.entity]
        if baseline is None:
            values = {
                m.field: marketing[m.field] for m in two_way if marketing.get(m.field) is not None
            }
            crm_values = mapping.to_crm(values)
            owner = _owner_of_new_record(mapping, marketing)
            if owner is not None:
                crm_values[OWNER] = owner
            request = self._write(WriteKind.CREATE, link.entity, link.crm_id, crm_values, None)
            # The new record's baseline holds the blanks too (not sent, so blank in Dynamics):
            # a value set later is then a marketing change that is pushed, not a field with
            # no baseline that the next read of the record fills from Dynamics.
            blanks: dict[str, object] = {m.field: None for m in two_way}
            send = _Send(
                person_id, link.entity, link.crm_id, request, values, blanks, entry_ids, True
            )
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
        request = self._write(
            WriteKind.UPDATE, link.entity, link.crm_id, converted.values, link.etag
        )
        send = _Send(
            person_id,
            link.entity,
            link.crm_id,
            request,
            sent,
            dict(baseline),
            entry_ids,
            False,
            partial=rejected is not None,
        )
        return send, rejected

    def _send(self, sends: Sequence[_Send], counts: PushCounts, *, remerge: bool) -> None:
        results = self._client.write_batch([s.request for s in sends])
        self._settle(sends, results, counts, remerge=remerge)

    def _settle(
        self,
        sends: Sequence[_Send],
        results: Sequence[WriteResult],
        counts: PushCounts,
        *,
        remerge: bool,
    ) -> None:
        """Store what Dynamics answered: accepted writes' baselines, ETags and outbox entries
        (removed only now), failures, and a re-read and re-merge of conflicts (B25)."""
        counts.sent += len(sends)
        accepted: list[tuple[_Send, WriteResult]] = []
        failures: list[_Failure] = []
        done: list[int] = []
        conflicts: list[_Send] = []
        lost: dict[str, list[WriteResult]] = {}  # entity -> writes refused for a privilege
        for send, result in zip(sends, results, strict=True):
            if result.ok:
                accepted.append((send, result))
                if result.status is WriteStatus.CREATED_ALREADY and remerge:
                    conflicts.append(send)  # made by an earlier push: its values are unknown
            elif result.status is WriteStatus.PRECONDITION_FAILED and remerge:
                conflicts.append(send)
            elif result.status is WriteStatus.PERMISSION_DENIED and is_privilege_refusal(
                result.error_code
            ):
                lost.setdefault(send.entity, []).append(result)  # stays queued: a setup problem
                counts.waiting += 1
            elif result.status in FAILING:
                link = LinkRow(send.entity, send.crm_id, "person", send.person_id, None)
                failures.append(
                    (
                        send.person_id,
                        link,
                        result.error_code,
                        result.message or str(result.status),
                        "create" if send.creating else "update",
                    )
                )
                done += list(send.entry_ids)
            elif result.status is WriteStatus.NOT_FOUND and not send.creating:
                done += list(send.entry_ids)  # deleted in Dynamics: the delta read flags it
                counts.drop(DROPPED_GONE)
            else:
                counts.deferred += 1  # throttled / transient: stays queued (B38)
        with self._engine.begin() as conn:
            self._accept(conn, accepted, counts)
            delete_outbox(conn, done + [i for s, _ in accepted for i in s.entry_ids])
            self._wait(conn, lost)
            self._fail(conn, failures)  # writes activities: last
        counts.failed += len(failures)
        counts.failures += [f"{p}: {code} {message}" for p, _, code, message, _ in failures]
        if conflicts:
            self._remerge(conflicts, counts)

    def _accept(
        self, conn: Connection, accepted: Sequence[tuple[_Send, WriteResult]], counts: PushCounts
    ) -> None:
        if not accepted:
            return
        by_entity: dict[str, dict[str, dict[str, object]]] = {}
        links: list[LinkRow] = []
        person_rows: dict[str, list[dict[str, object]]] = {}
        now = utc_now_text()
        for send, result in accepted:
            if result.status is not WriteStatus.CREATED_ALREADY:
                baseline = dict(send.baseline)
                baseline.update(send.sent_fields)
                by_entity.setdefault(send.entity, {})[send.crm_id] = baseline
            links.append(LinkRow(send.entity, send.crm_id, "person", send.person_id, result.etag))
            if send.creating:
                counts.created += 1
                key = "crmLeadId" if send.entity == "lead" else "crmContactId"
                person_rows.setdefault(key, []).append(
                    {
                        "_person_id": send.person_id,
                        key: send.crm_id,
                        "crmType": CRM_TYPES[send.entity],
                        "crmIsDeleted": False,
                        "updatedAt": now,
                    }
                )
            else:
                counts.updated += 1
        complete = {(s.entity, s.crm_id) for s, _ in accepted if not s.partial}
        for entity, baselines in by_entity.items():
            save_baselines(conn, entity, baselines)
            resolve_errors(
                conn, entity, [c for c in baselines if (entity, c) in complete], "to_crm"
            )
        update_links(conn, links)
        for rows in person_rows.values():
            conn.execute(update(persons).where(persons.c.id == bindparam("_person_id")), rows)

    def _wait(self, conn: Connection, lost: Mapping[str, Sequence[WriteResult]]) -> None:
        """Hold back the writes of each entity Dynamics refused for a missing privilege."""
        for entity, results in lost.items():
            schema = self._client.cached_schema(entity)
            name = schema.schema_name if schema and schema.schema_name else entity.capitalize()
            privileges = tuple(
                dict.fromkeys(p for r in results for p in missing_privileges(r.message, name))
            )
            first = results[0]
            message = first.message or "the sync user lacks a privilege"
            start_wait(conn, entity, privileges, first.error_code, message)
        if lost:
            self._waits.update({e: w for e, w in read_waits(conn).items() if e in lost})

    def _fail(self, conn: Connection, failures: Sequence[_Failure]) -> None:
        if not failures:
            return
        now = utc_now_text()
        record_errors(
            conn,
            [
                ErrorReport(link.entity, "to_crm", op, "person", pid, link.crm_id, code, msg)
                for pid, link, code, msg, op in failures
            ],
        )
        # activities last in the transaction (see crmsync.marketing.activity_log)
        activity_log.write_activities(
            conn,
            [
                activity_log.sync_error(
                    pid,
                    entity=link.entity,
                    crm_id=link.crm_id,
                    direction="to_crm",
                    code=code,
                    message=msg,
                    when=now,
                )
                for pid, link, code, msg, _ in failures
            ],
        )

    def _remerge(self, conflicts: Sequence[_Send], counts: PushCounts) -> None:
        """B25: Dynamics changed since the baseline; read it again, merge, send what is left."""
        resend: list[_Send] = []
        for send in conflicts:
            mapping = self._mappings[send.entity]
            try:
                record = self._client.get(
                    self._client.entity_set_of(send.entity), send.crm_id, mapping.attributes
                )
            except RecordNotFoundError:
                with self._engine.begin() as conn:
                    delete_outbox(conn, send.entry_ids)
                counts.dropped += 1
                continue
            except RetryLaterError:
                counts.deferred += 1
                continue
            counts.remerged += 1
            with self._engine.begin() as conn:
                take_write_lock(conn)
                states, links = link_states(conn, mapping, [send.crm_id], "person")
                plan = plan_page(mapping, [CrmChange(record)], states)
                apply_plan(conn, plan, mapping, "person", links, states=states, queue_sends=False)
            updates = [u for u in plan.updates if u.crm_writes]
            if not updates:
                with self._engine.begin() as conn:
                    delete_outbox(conn, send.entry_ids)
                continue
            update_ = updates[0]
            sent = {
                m.field: update_.new_baseline.get(m.field)
                for m in mapping.fields
                if m.attribute in update_.crm_writes
            }
            crm_writes: dict[str, CrmValue] = dict(update_.crm_writes)
            resend.append(
                _Send(
                    send.person_id,
                    send.entity,
                    send.crm_id,
                    self._write(
                        WriteKind.UPDATE, send.entity, send.crm_id, crm_writes, record.etag
                    ),
                    sent,
                    dict(update_.baseline_if_rejected),
                    send.entry_ids,
                    False,
                )
            )
        if resend:
            self._send(resend, counts, remerge=False)
