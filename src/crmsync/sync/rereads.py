"""Admin retries of records that failed on their way in (B38): read them again.

A request names a Dynamics record (entity and id); it is kept in the key/value table until
the next cycle has read that record (or found it gone), so a retry survives a restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import CrmChange
from crmsync.errors import RecordNotFoundError, RetryLaterError
from crmsync.store.key_values import get_setting, set_setting
from crmsync.sync.mapping import EntityMapping
from crmsync.sync.pages import apply_page

RETRY_READS = "sync.retry_reads"


def request_rereads(conn: Connection, entity_ids: Iterable[tuple[str, str]]) -> None:
    """Ask the next cycle to read these Dynamics records again (an admin retry, B38)."""
    current = get_setting(conn, RETRY_READS, [])
    wanted: list[object] = []
    if isinstance(current, list):
        wanted = [pair for pair in current if isinstance(pair, list) and len(pair) == 2]
    for entity, crm_id in entity_ids:
        if [entity, crm_id] not in wanted:
            wanted.append([entity, crm_id])
    set_setting(conn, RETRY_READS, wanted)


def pending_rereads(conn: Connection) -> list[tuple[str, str]]:
    """The records queued by :func:`request_rereads`."""
    current = get_setting(conn, RETRY_READS, [])
    if not isinstance(current, list):
        return []
    return [
        (str(pair[0]), str(pair[1]))
        for pair in current
        if isinstance(pair, list) and len(pair) == 2
    ]


def clear_rereads(conn: Connection, done: Iterable[tuple[str, str]]) -> None:
    """Remove re-read requests that were handled (others stay queued)."""
    handled = {tuple(pair) for pair in done}
    if handled:
        left = [list(pair) for pair in pending_rereads(conn) if pair not in handled]
        set_setting(conn, RETRY_READS, left)  # type: ignore[arg-type]


def read_again(
    engine: Engine, client: DynamicsClient, mappings: Mapping[str, EntityMapping]
) -> None:
    """Read every requested record again and apply it. A request stays queued until its
    record was read (or is gone); one that Dynamics cannot answer now waits for the next
    cycle."""
    with engine.connect() as conn:
        wanted = pending_rereads(conn)
    done: list[tuple[str, str]] = []
    for entity, crm_id in wanted:
        mapping = mappings.get(entity)
        if mapping is None:
            done.append((entity, crm_id))
            continue
        try:
            record = client.get(client.entity_set_of(entity), crm_id, mapping.attributes)
        except RecordNotFoundError:
            done.append((entity, crm_id))
            continue
        except RetryLaterError:
            continue
        apply_page(engine, mapping, [CrmChange(record)], mappings)
        done.append((entity, crm_id))
    if done:
        with engine.begin() as conn:
            clear_rereads(conn, done)
