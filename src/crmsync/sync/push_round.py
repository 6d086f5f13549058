"""What the push's parts share: the counts of one push, the write prepared for one person,
and the push's context (engine, client, mappings, the fields pushed per entity, the entities
whose writes wait) with the one writer of push failures.

The push itself is :class:`crmsync.sync.push.OutboxPusher`; a round is prepared by
:mod:`crmsync.sync.push_prepare` and its answers stored by :mod:`crmsync.sync.push_settle`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import CrmValue, WriteKind, WriteRequest, WriteStatus
from crmsync.marketing import activity_log
from crmsync.marketing.values import utc_now_text
from crmsync.sync.failures import ErrorReport, record_errors
from crmsync.sync.links import LinkRow
from crmsync.sync.mapping import EntityMapping, FieldMapping
from crmsync.sync.plan import CRM_TYPES
from crmsync.sync.write_waits import WriteWait

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


Failure = tuple[int, LinkRow, str | None, str, str]
"""A person whose write failed: its id, link, error code, message and operation."""


@dataclass(frozen=True, slots=True)
class Send:
    """The write prepared for one person, with what it was prepared from."""

    person_id: int
    entity: str
    crm_id: str
    request: WriteRequest
    # what is stored over the baseline once Dynamics accepts: an update patches only these
    # fields of the stored baseline (the one it was prepared from), a create stores them whole
    sent_fields: dict[str, object]
    entry_ids: tuple[int, ...]
    creating: bool
    partial: bool = False  # some fields were left out as Dynamics would refuse them


OWNER = "ownerid"


def pushed_fields(mapping: EntityMapping) -> list[FieldMapping]:
    """The fields a push may send for ``mapping``: the two-way ones, and the owner a new record
    is created with. One-way fields are neither read nor compared."""
    return [m for m in mapping.fields if m.two_way or m.attribute == OWNER]


class PushContext:
    """What the parts of one pusher share."""

    def __init__(
        self,
        engine: Engine,
        client: DynamicsClient,
        mappings: Mapping[str, EntityMapping],
        *,
        duplicate_detection: bool = False,
    ) -> None:
        self.engine = engine
        self.client = client
        self.mappings = {e: m for e, m in mappings.items() if e in CRM_TYPES}
        # Dataverse runs duplicate detection rules on API writes only when asked (spec §7).
        self.options: dict[str, CrmValue] = (
            {DUPLICATE_DETECTION_HEADER: False} if duplicate_detection else {}
        )
        self.waits: dict[str, WriteWait] = {}  # entities whose writes wait (no privilege)
        self.pushed = {e: tuple(pushed_fields(m)) for e, m in self.mappings.items()}
        self.two_way = {
            e: tuple(f for f in m.fields if f.two_way) for e, m in self.mappings.items()
        }
        self.all_fields = sorted({f.field for fields in self.pushed.values() for f in fields})

    def write(
        self,
        kind: WriteKind,
        entity: str,
        crm_id: str,
        values: Mapping[str, CrmValue],
        etag: str | None,
    ) -> WriteRequest:
        """One write request with the push's options."""
        return WriteRequest(kind, entity, crm_id, dict(values), etag, options=self.options)

    def fail(self, conn: Connection, failures: Sequence[Failure]) -> None:
        """Record each failure in ``sync_errors`` and the person's activity log."""
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
