"""Initial change-tracking reads that hand out every page's next link, so a crashed initial
sync resumes where it stopped (B16).

The cycle stores a page's next link in the same transaction as the page; after a restart the
read continues from that link. Dataverse (and the emulator) put the read's starting point in
the page link itself, so rows changed while the read was interrupted come with the next delta
read. A stored page link Dynamics no longer accepts raises :class:`DeltaTokenExpiredError`,
and the cycle starts the initial read again (repeating work, losing nothing).

Pages are requested one ahead: the next page is asked for (and then decoded and parsed, on a
background thread) as soon as the current one is handed out, so Dynamics prepares it while the
engine applies this one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from crmsync.dynamics.changes import TRACK_CHANGES, ParsedChangePage, parse_change_page
from crmsync.dynamics.classify import Action, Resolution
from crmsync.dynamics.client import LOOKUP_PREFERENCE, DynamicsClient
from crmsync.dynamics.query import RowConverter, collection_url, wire_select
from crmsync.dynamics.types import CrmChange, CrmDelete
from crmsync.errors import (
    ConfigurationError,
    CrmsyncError,
    DeltaTokenExpiredError,
    TransientServerError,
    UnknownFieldError,
)

REJECTED_LINK_STATUSES = frozenset({400, 404, 410, 422})
"""Answers to a stored page link that mean Dynamics no longer accepts it."""

COUNT_CAP = 5000
"""``GET /{set}/$count`` answers at most this (spec §3 "Count")."""


@dataclass(frozen=True, slots=True)
class TrackedPage:
    """One page of an initial change-tracking read.

    ``next_link`` is set on every page but the last; ``delta_link`` only on the last."""

    entity: str
    items: tuple[CrmChange | CrmDelete, ...]
    next_link: str | None = None
    delta_link: str | None = None

    @property
    def last(self) -> bool:
        """Whether this is the read's last page (it carries the delta link)."""
        return self.delta_link is not None


def first_page_link(client: DynamicsClient, entity: str, attributes: Sequence[str]) -> str:
    """The (service-root relative) link of an initial tracking read of ``attributes``."""
    info = client.entity(entity)
    schema = client.cached_schema(info.logical_name)
    columns = [*wire_select(attributes, schema, info.primary_id), info.primary_id]
    return collection_url(info.entity_set, columns)


def _columns(url: str) -> frozenset[str] | None:
    values = parse_qs(urlsplit(url).query).get("$select")
    return frozenset(values[0].split(",")) if values else None


def same_selection(link: str, other: str) -> bool:
    """Whether two tracking links select the same columns (a resumed read must bring what
    the current field selection maps, or the rest of its records would miss new fields)."""
    mine = _columns(link)
    return mine is not None and mine == _columns(other)


def selection_changed(delta_link: str, current: str) -> bool:
    """Whether a stored delta link reads other columns than the current selection's link
    (:func:`first_page_link`): the admin selected or removed fields since (B12). A delta link
    that does not show its columns is taken as unchanged."""
    stored = _columns(delta_link)
    return stored is not None and stored != _columns(current)


def tracking_preference(client: DynamicsClient) -> str:
    """The ``Prefer`` header of a tracking read: track changes, page size, lookup names."""
    return f"{TRACK_CHANGES},odata.maxpagesize={client.page_size},{LOOKUP_PREFERENCE}"


def initial_pages(
    client: DynamicsClient, entity: str, link: str, *, resumed: bool
) -> Iterator[TrackedPage]:
    """Every page of an initial tracking read of ``entity`` from ``link`` on.

    ``link`` is the first page's (:func:`first_page_link`) or, with ``resumed``, a stored
    next link. A resumed link Dynamics refuses raises :class:`DeltaTokenExpiredError`; a
    fresh read refused with 400 raises :class:`ConfigurationError` (change tracking is not
    enabled for the table).
    """
    info = client.entity(entity)
    converter = RowConverter(info, client.cached_schema(info.logical_name))
    headers = {"Prefer": tracking_preference(client)}

    def refused(response: httpx.Response, resolution: Resolution) -> Resolution:
        error = resolution.error
        if isinstance(error, UnknownFieldError):
            return resolution  # a selected column was deleted (B14), not a link problem
        detail = error.message if error else str(response.status_code)
        code = error.code if error else None
        if resumed and (
            resolution.action is Action.RECONCILE or response.status_code in REJECTED_LINK_STATUSES
        ):
            return Resolution(
                Action.RECONCILE,
                None,
                DeltaTokenExpiredError(
                    f"the stored page link of the initial read of {entity} was refused: {detail}",
                    entity=entity,
                    status=response.status_code,
                    code=code,
                ),
            )
        if not resumed and response.status_code == 400:
            return Resolution(
                Action.FAIL_CYCLE,
                None,
                ConfigurationError(
                    f"change tracking read of {entity} refused "
                    f"(is change tracking enabled for the table?): {detail}",
                    entity=entity,
                    status=400,
                    code=code,
                ),
            )
        return resolution

    def fetch(url: str) -> ParsedChangePage:
        document = client.get_json(
            url, kind="track", headers=headers, entity=info.logical_name, on_failure=refused
        )
        return parse_change_page(info, document, converter=converter)

    # The page is decoded and parsed on the background thread too, overlapping the caller's
    # database work; one page at a time, in order.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crmsync-track") as pool:
        pending: Future[ParsedChangePage] | None = pool.submit(fetch, link)
        while pending is not None:
            page = pending.result()
            if page.next_link:
                pending = pool.submit(fetch, page.next_link)
                yield TrackedPage(info.logical_name, page.items, next_link=page.next_link)
                continue
            pending = None
            if not page.delta_link:
                raise TransientServerError(
                    f"the initial read of {entity} ended without a delta link",
                    entity=entity,
                )
            yield TrackedPage(info.logical_name, page.items, delta_link=page.delta_link)


def record_total(client: DynamicsClient, entity: str) -> int | None:
    """How many records ``entity`` has, for an initial read's progress (B16, B40), or
    ``None`` when Dynamics cannot say.

    ``GET /{set}/$count`` is exact up to 5,000; above, the ``RetrieveTotalRecordCount``
    function gives the (at most a day old) total. Either request failing only makes the
    total unknown: a count is never retried and never stops the sync.
    """
    info = client.entity(entity)
    try:
        response = client.send("GET", f"{info.entity_set}/$count", kind="count", no_retry=True)
        counted = int(response.text.lstrip("\ufeff").strip())
    except (CrmsyncError, ValueError):
        return None
    if counted < COUNT_CAP:
        return counted
    names = quote(json.dumps([info.logical_name]).replace('"', "'"), safe="")
    try:
        response = client.send(
            "GET",
            f"RetrieveTotalRecordCount(EntityNames=@p1)?@p1={names}",
            kind="count",
            no_retry=True,
        )
        document = response.json()
    except (CrmsyncError, ValueError):
        return None
    collection = document.get("EntityRecordCountCollection") if isinstance(document, dict) else None
    if not isinstance(collection, dict):
        return None
    keys, values = collection.get("Keys"), collection.get("Values")
    if not isinstance(keys, list) or not isinstance(values, list):
        return None
    for key, value in zip(keys, values, strict=False):
        if key == info.logical_name and isinstance(value, int) and value >= 0:
            return max(value, counted)
    return None
