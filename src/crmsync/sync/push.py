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

The push is three parts: :mod:`crmsync.sync.push_prepare` prepares a round's writes,
:mod:`crmsync.sync.push_settle` stores its answers, and :class:`OutboxPusher` here keeps the
rounds flowing; what they share is in :mod:`crmsync.sync.push_round`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import Engine

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import WriteResult
from crmsync.store.outbox import OutboxEntry, read_outbox
from crmsync.sync.mapping import EntityMapping
from crmsync.sync.push_prepare import RoundPreparer
from crmsync.sync.push_round import PushContext, PushCounts, Send
from crmsync.sync.push_settle import RoundSettler
from crmsync.sync.write_waits import check_waits

__all__ = ["MAX_PUSH_CHUNK", "ROUNDS_IN_FLIGHT", "OutboxPusher", "PushCounts", "round_size"]

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
        self._ctx = PushContext(engine, client, mappings, duplicate_detection=duplicate_detection)
        self._preparer = RoundPreparer(self._ctx)
        self._settler = RoundSettler(self._ctx)

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
        if not self._ctx.mappings:
            return counts
        self._ctx.waits.clear()
        self._ctx.waits.update(check_waits(self._engine, self._client))
        after = 0
        handled = 0
        chunk = round_size(self._client.batch_size, self._client.budget.limit)
        held: list[OutboxEntry] = []  # entries of persons whose writes were in flight
        exhausted = False
        in_flight: deque[tuple[list[Send], Future[list[WriteResult]]]] = deque()
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
                sends = self._preparer.prepare(ready, counts, after) if ready else []
                if sends:
                    requests = [send.request for send in sends]
                    in_flight.append((sends, pool.submit(self._client.write_batch, requests)))
                if in_flight and (len(in_flight) >= ROUNDS_IN_FLIGHT or not sends):
                    # the oldest round's answers, stored while the newer one is with Dynamics
                    oldest, answered = in_flight.popleft()
                    self._settler.settle(oldest, answered.result(), counts, remerge=True)
                handled += len(ready)
                if ready:
                    if self._progress is not None:
                        self._progress(handled)
                    if self._renew is not None:
                        self._renew()
                if exhausted and not held and not in_flight:
                    break
        counts.waiting_for = {entity: wait.summary for entity, wait in self._ctx.waits.items()}
        return counts
