"""Change-tracking reads (spec §4): the initial read of a table, resumable page by page, and
the reads of changes since a delta link (B16, B17).

An initial read hands out every page's next link, so the engine can store it with the page and
a crashed initial sync resumes where it stopped. Dataverse (and the emulator) put the read's
starting point in the page link itself, so rows changed while the read was interrupted come
with the next delta read. A stored link Dynamics no longer accepts (a page link or a delta
link) raises :class:`DeltaTokenExpiredError`: the engine starts the read again (repeating
work, losing nothing). A fresh read refused with 400 raises :class:`ConfigurationError`:
change tracking is not enabled for the table.

Pages are requested one ahead (:meth:`Transport.pages`), so Dynamics prepares the next page
while the engine applies this one. Every read hands out :class:`ChangePage` values, parsed in
:mod:`crmsync.dynamics.changes`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from enum import Enum
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from crmsync.dynamics.changes import TRACK_CHANGES, parse_change_page
from crmsync.dynamics.classify import Action, Resolution
from crmsync.dynamics.entities import EntityDirectory
from crmsync.dynamics.query import RowConverter, collection_url, page_preference, wire_select
from crmsync.dynamics.transport import Refusal, Transport
from crmsync.dynamics.types import ChangePage, DeltaCursor
from crmsync.errors import (
    ConfigurationError,
    CrmsyncError,
    DeltaTokenExpiredError,
    TransientServerError,
    UnknownFieldError,
)

REJECTED_LINK_STATUSES = frozenset({400, 404, 410, 422})
"""Answers to a stored page or delta link that mean Dynamics no longer accepts it."""

COUNT_CAP = 5000
"""``GET /{set}/$count`` answers at most this (spec §3 "Count")."""


class _Start(Enum):
    """Where a change-tracking read starts."""

    FRESH = "fresh"  # the first page of an initial read
    PAGE_LINK = "page link"  # a stored next link of an unfinished initial read
    DELTA_LINK = "delta link"  # a stored delta link: the changes since


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
    (:meth:`ChangeTracking.first_page_link`): the admin selected or removed fields since (B12).
    A delta link that does not show its columns is taken as unchanged."""
    stored = _columns(delta_link)
    return stored is not None and stored != _columns(current)


def with_selection(delta_link: str, current: str) -> str:
    """``delta_link`` asking for the columns of ``current`` (a first-page link of the current
    selection) instead of its own: the changes since the same token, with the columns selected
    now (B12). The token is a row version that does not depend on the columns."""
    wanted = next((p for p in urlsplit(current).query.split("&") if p.startswith("$select=")), None)
    parts = urlsplit(delta_link)
    kept = [p for p in parts.query.split("&") if p and not p.startswith("$select=")]
    query = "&".join([wanted, *kept] if wanted else kept)
    return parts._replace(query=query).geturl()


class ChangeTracking:
    """Change-tracking reads of one org, handing out :class:`ChangePage` values."""

    def __init__(self, transport: Transport, directory: EntityDirectory, page_size: int) -> None:
        self._transport = transport
        self._directory = directory
        self._page_size = page_size

    def first_page_link(self, entity: str, attributes: Sequence[str]) -> str:
        """The (service-root relative) link of an initial tracking read of ``attributes``."""
        info = self._directory.entity(entity)
        schema = self._directory.cached_schema(info.logical_name)
        columns = [*wire_select(attributes, schema, info.primary_id), info.primary_id]
        return collection_url(info.entity_set, columns)

    def start(
        self, entity: str, attributes: Sequence[str], page_size: int | None = None
    ) -> Iterator[ChangePage]:
        """A fresh initial read: every row, then the delta link with the last page."""
        link = self.first_page_link(entity, attributes)
        return self._read(entity, link, _Start.FRESH, page_size)

    def initial_pages(
        self, entity: str, link: str, *, resumed: bool, wire_dates: frozenset[str] = frozenset()
    ) -> Iterator[ChangePage]:
        """Every page of an initial read of ``entity`` from ``link`` on.

        ``link`` is the first page's (:meth:`first_page_link`) or, with ``resumed``, a stored
        next link. A resumed link Dynamics refuses raises :class:`DeltaTokenExpiredError`; a
        fresh read refused with 400 raises :class:`ConfigurationError` (change tracking is not
        enabled for the table). DateTime columns in ``wire_dates`` keep their JSON text
        (:class:`~crmsync.dynamics.query.RowConverter`).
        """
        start = _Start.PAGE_LINK if resumed else _Start.FRESH
        return self._read(entity, link, start, None, wire_dates)

    def read_changes(
        self, cursor: DeltaCursor, page_size: int | None = None
    ) -> Iterator[ChangePage]:
        """Changes and deletes since ``cursor``; raises :class:`DeltaTokenExpiredError` (B17)."""
        return self._read(cursor.entity, cursor.delta_link, _Start.DELTA_LINK, page_size)

    def _read(
        self,
        entity: str,
        link: str,
        start: _Start,
        page_size: int | None,
        wire_dates: frozenset[str] = frozenset(),
    ) -> Iterator[ChangePage]:
        # Everything that can fail before the first request (addressing, page size) fails
        # here, when the read is asked for, not when its first page is.
        info = self._directory.entity(entity)
        prefer = page_preference(page_size or self._page_size, first=TRACK_CHANGES)
        schema = self._directory.cached_schema(info.logical_name)
        converter = RowConverter(info, schema, wire_dates)
        pages = self._transport.pages(
            link,
            functools.partial(parse_change_page, info, converter=converter),
            kind="delta" if start is _Start.DELTA_LINK else "track",
            headers={"Prefer": prefer},
            entity=info.logical_name,
            on_failure=_refusal(info.logical_name, start),
        )
        return _ending_with_delta_link(info.logical_name, pages)

    def record_total(self, entity: str) -> int | None:
        """How many records ``entity`` has, for an initial read's progress (B16, B40), or
        ``None`` when Dynamics cannot say.

        ``GET /{set}/$count`` is exact up to 5,000; above, the ``RetrieveTotalRecordCount``
        function gives the (at most a day old) total. Either request failing only makes the
        total unknown: a count is never retried and never stops the sync.
        """
        info = self._directory.entity(entity)
        send = functools.partial(self._transport.send, "GET", kind="count", no_retry=True)
        try:
            counted = int(send(f"{info.entity_set}/$count").text.lstrip("\ufeff").strip())
        except (CrmsyncError, ValueError):
            return None
        if counted < COUNT_CAP:
            return counted
        names = quote(json.dumps([info.logical_name]).replace('"', "'"), safe="")
        try:
            document = send(f"RetrieveTotalRecordCount(EntityNames=@p1)?@p1={names}").json()
        except (CrmsyncError, ValueError):
            return None
        collection = (
            document.get("EntityRecordCountCollection") if isinstance(document, dict) else None
        )
        if not isinstance(collection, dict):
            return None
        keys, values = collection.get("Keys"), collection.get("Values")
        if not isinstance(keys, list) or not isinstance(values, list):
            return None
        for key, value in zip(keys, values, strict=False):
            if key == info.logical_name and isinstance(value, int) and value >= 0:
                return max(value, counted)
        return None


def _ending_with_delta_link(entity: str, pages: Iterator[ChangePage]) -> Iterator[ChangePage]:
    """``pages``, checking that the read ends with a delta link (else it was cut short)."""
    for page in pages:
        if not page.next_link and not page.delta_link:
            raise TransientServerError(
                f"the change-tracking read of {entity} ended without a delta link",
                entity=entity,
            )
        yield page


def _refusal(entity: str, start: _Start) -> Refusal:
    """How a refused tracking read is reported: a stored link Dynamics no longer accepts
    is an expired token (reconcile, B17); a fresh read refused with 400 means change
    tracking is off for the table; a deleted selected column stays itself (B14)."""

    def refused(response: httpx.Response, resolution: Resolution) -> Resolution:
        error = resolution.error
        if isinstance(error, UnknownFieldError):
            return resolution
        detail = error.message if error else f"HTTP {response.status_code}"
        code = error.code if error else None
        if start is not _Start.FRESH and (
            resolution.action is Action.RECONCILE or response.status_code in REJECTED_LINK_STATUSES
        ):
            what = (
                f"the change-tracking token for {entity}"
                if start is _Start.DELTA_LINK
                else f"the stored page link of the initial read of {entity}"
            )
            expired = DeltaTokenExpiredError(
                f"{what} was refused: {detail}",
                entity=entity,
                status=response.status_code,
                code=code,
            )
            return Resolution(Action.RECONCILE, None, expired)
        if start is _Start.FRESH and response.status_code == 400:
            disabled = ConfigurationError(
                f"change tracking read of {entity} refused "
                f"(is change tracking enabled for the table?): {detail}",
                entity=entity,
                status=400,
                code=code,
            )
            return Resolution(Action.FAIL_CYCLE, None, disabled)
        return resolution

    return refused
