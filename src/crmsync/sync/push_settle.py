"""Storing one round's answers from Dynamics: accepted writes' baselines, ETags and outbox
entries (removed only now), failures, entities whose writes wait for a privilege, and a
re-read and re-merge of conflicts (B25, B33, B38).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection

from crmsync.dynamics.types import CrmChange, CrmValue, WriteKind, WriteResult, WriteStatus
from crmsync.errors import RecordNotFoundError, RetryLaterError
from crmsync.marketing.values import utc_now_text
from crmsync.store.locks import take_write_lock
from crmsync.store.outbox import delete_outbox
from crmsync.store.tables import persons
from crmsync.sync.apply import apply_plan
from crmsync.sync.failures import resolve_errors
from crmsync.sync.links import (
    LinkRow,
    link_states,
    patch_baselines,
    save_baselines,
    update_links,
)
from crmsync.sync.plan import CRM_TYPES, plan_page
from crmsync.sync.push_round import (
    DROPPED_GONE,
    FAILING,
    Failure,
    PushContext,
    PushCounts,
    Send,
)
from crmsync.sync.write_waits import (
    is_privilege_refusal,
    missing_privileges,
    read_waits,
    start_wait,
)


class RoundSettler:
    """Stores what Dynamics answered to one round's writes."""

    def __init__(self, ctx: PushContext) -> None:
        self._ctx = ctx

    def _send(self, sends: Sequence[Send], counts: PushCounts, *, remerge: bool) -> None:
        results = self._ctx.client.write_batch([s.request for s in sends])
        self.settle(sends, results, counts, remerge=remerge)

    def settle(
        self,
        sends: Sequence[Send],
        results: Sequence[WriteResult],
        counts: PushCounts,
        *,
        remerge: bool,
    ) -> None:
        """Store what Dynamics answered: accepted writes' baselines, ETags and outbox entries
        (removed only now), failures, and a re-read and re-merge of conflicts (B25)."""
        counts.sent += len(sends)
        accepted: list[tuple[Send, WriteResult]] = []
        failures: list[Failure] = []
        done: list[int] = []
        conflicts: list[Send] = []
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
        with self._ctx.engine.begin() as conn:
            self._accept(conn, accepted, counts)
            delete_outbox(conn, done + [i for s, _ in accepted for i in s.entry_ids])
            self._wait(conn, lost)
            self._ctx.fail(conn, failures)  # writes activities: last
        counts.failed += len(failures)
        counts.failures += [f"{p}: {code} {message}" for p, _, code, message, _ in failures]
        if conflicts:
            self._remerge(conflicts, counts)

    def _accept(
        self, conn: Connection, accepted: Sequence[tuple[Send, WriteResult]], counts: PushCounts
    ) -> None:
        if not accepted:
            return
        by_entity: dict[str, dict[str, dict[str, object]]] = {}
        # an update's baseline is the stored one (read when the round was prepared, or stored
        # by the re-merge that prepared it) with the sent fields: only those are patched
        patches: dict[str, dict[str, Mapping[str, object]]] = {}
        links: list[LinkRow] = []
        person_rows: dict[str, list[dict[str, object]]] = {}
        now = utc_now_text()
        for send, result in accepted:
            if send.creating and result.status is not WriteStatus.CREATED_ALREADY:
                by_entity.setdefault(send.entity, {})[send.crm_id] = dict(send.sent_fields)
            elif not send.creating:
                patches.setdefault(send.entity, {})[send.crm_id] = send.sent_fields
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
        for entity, patched in patches.items():
            patch_baselines(conn, entity, patched)
        for entity in {*by_entity, *patches}:
            stored = [*by_entity.get(entity, {}), *patches.get(entity, {})]
            resolve_errors(conn, entity, [c for c in stored if (entity, c) in complete], "to_crm")
        update_links(conn, links)
        for rows in person_rows.values():
            conn.execute(update(persons).where(persons.c.id == bindparam("_person_id")), rows)

    def _wait(self, conn: Connection, lost: Mapping[str, Sequence[WriteResult]]) -> None:
        """Hold back the writes of each entity Dynamics refused for a missing privilege."""
        for entity, results in lost.items():
            schema = self._ctx.client.cached_schema(entity)
            name = schema.schema_name if schema and schema.schema_name else entity.capitalize()
            privileges = tuple(
                dict.fromkeys(p for r in results for p in missing_privileges(r.message, name))
            )
            first = results[0]
            message = first.message or "the sync user lacks a privilege"
            start_wait(conn, entity, privileges, first.error_code, message)
        if lost:
            self._ctx.waits.update({e: w for e, w in read_waits(conn).items() if e in lost})

    def _remerge(self, conflicts: Sequence[Send], counts: PushCounts) -> None:
        """B25: Dynamics changed since the baseline; read it again, merge, send what is left."""
        resend: list[Send] = []
        for send in conflicts:
            mapping = self._ctx.mappings[send.entity]
            try:
                record = self._ctx.client.get(
                    self._ctx.client.entity_set_of(send.entity), send.crm_id, mapping.attributes
                )
            except RecordNotFoundError:
                with self._ctx.engine.begin() as conn:
                    delete_outbox(conn, send.entry_ids)
                counts.dropped += 1
                continue
            except RetryLaterError:
                counts.deferred += 1
                continue
            counts.remerged += 1
            with self._ctx.engine.begin() as conn:
                take_write_lock(conn)
                states, links = link_states(conn, mapping, [send.crm_id], "person")
                plan = plan_page(mapping, [CrmChange(record)], states)
                apply_plan(conn, plan, mapping, "person", links, states=states, queue_sends=False)
            updates = [u for u in plan.updates if u.crm_writes]
            if not updates:
                with self._ctx.engine.begin() as conn:
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
                Send(
                    send.person_id,
                    send.entity,
                    send.crm_id,
                    self._ctx.write(
                        WriteKind.UPDATE, send.entity, send.crm_id, crm_writes, record.etag
                    ),
                    sent,
                    send.entry_ids,
                    False,
                )
            )
        if resend:
            self._send(resend, counts, remerge=False)
