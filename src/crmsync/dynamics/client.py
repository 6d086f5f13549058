"""``DynamicsClient``: the one object through which crmsync talks to a Dataverse org.

It assembles the pieces, each in its own module: the :class:`Transport` (common headers,
classification, the request budget and the one retry loop of :mod:`crmsync.dynamics.retry`),
the :class:`EntityDirectory` (entity addressing and schemas), :class:`ChangeTracking`
(change-tracking reads) and :class:`BatchWriter` (``$batch`` writes). Record reads and
metadata are methods here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from crmsync.dynamics.batch import MAX_BATCH_SIZE, Target
from crmsync.dynamics.budget import ClientStats, RequestBudget
from crmsync.dynamics.entities import EntityDirectory
from crmsync.dynamics.metadata import (
    FieldPermission,
    Identity,
    UserPrivileges,
    entity_url,
    parse_field_permissions,
    parse_identity,
    parse_user_privileges,
    read_entity_schema,
    user_label,
)
from crmsync.dynamics.query import (
    LOOKUP_PREFERENCE,
    MAX_PAGE_SIZE,
    EntitySetInfo,
    RowConverter,
    collection_url,
    page_preference,
    record_from_row,
    wire_select,
)
from crmsync.dynamics.retry import Retrier, RetryPolicy
from crmsync.dynamics.schema_changes import SchemaChanges, changes_url, parse_changes
from crmsync.dynamics.tracking import ChangeTracking
from crmsync.dynamics.transport import Transport, json_object, service_root_of
from crmsync.dynamics.types import (
    ChangePage,
    CrmRecord,
    DeltaCursor,
    EntitySchema,
    WriteRequest,
    WriteResult,
)
from crmsync.dynamics.writes import BatchWriter
from crmsync.errors import (
    ConfigurationError,
    CrmsyncError,
    DeltaTokenExpiredError,
    RecordNotFoundError,
)


class DynamicsClient:
    """Dataverse Web API client: typed reads, change tracking, ``$batch`` writes, metadata.

    ``http`` is the transport seam (tests hand in the emulator or ``httpx.MockTransport``);
    ``clock``/``sleep`` make retry timing testable. ``page_size`` ≤ 5,000 (spec §3),
    ``batch_size`` ≤ 1,000 (spec §6), ``concurrency`` bounds requests in flight.
    """

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        *,
        api_version: str = "v9.2",
        page_size: int = MAX_PAGE_SIZE,
        batch_size: int = MAX_BATCH_SIZE,
        concurrency: int = 4,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page size must be between 1 and {MAX_PAGE_SIZE}")
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ConfigurationError(f"batch size must be between 1 and {MAX_BATCH_SIZE}")
        self.http = http
        self.service_root = service_root_of(base_url, api_version)
        self.page_size = page_size
        self.batch_size = batch_size
        self.budget = RequestBudget(concurrency)
        retrier = Retrier(retry_policy or RetryPolicy(), self.budget, clock=clock, sleep=sleep)
        self.transport = Transport(http, self.service_root, self.budget, retrier)
        self._directory = EntityDirectory(self.transport)
        self.tracking = ChangeTracking(self.transport, self._directory, page_size)
        """Change-tracking reads: initial (resumable), since a delta link, record counts."""
        self._lock = threading.Lock()
        self._identity: Identity | None = None

    def __repr__(self) -> str:
        return f"DynamicsClient({self.service_root!r})"

    def close(self) -> None:
        """Close the underlying HTTP client and the token provider's connections."""
        self.http.close()
        close_auth = getattr(self.http.auth, "close", None)
        if callable(close_auth):
            close_auth()

    def __enter__(self) -> DynamicsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats(self) -> ClientStats:
        """Counters of requests by kind, 429s, retries and bytes (B40)."""
        return self.budget.snapshot()

    # -- entity addressing -------------------------------------------------------------------

    def entity(self, name: str) -> EntitySetInfo:
        """How to address a table given its logical name or entity set name (cached)."""
        return self._directory.entity(name)

    def entity_set_of(self, logical_name: str) -> str:
        """The URL entity set of a table (never derived by adding "s", spec §2a)."""
        return self._directory.entity(logical_name).entity_set

    def cached_schema(self, logical_name: str) -> EntitySchema | None:
        """The schema read by :meth:`entity_schema`, if it was read."""
        return self._directory.cached_schema(logical_name)

    def target(self, logical_name: str) -> Target:
        """Where writes to a table go."""
        return self._directory.target(logical_name)

    # -- reads -------------------------------------------------------------------------------

    def iter_records(
        self,
        entity_set: str,
        select: Sequence[str],
        filter: str | None = None,
        orderby: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[CrmRecord]:
        """Stream every matching record, one page at a time, following ``@odata.nextLink``."""
        info = self.entity(entity_set)
        schema = self.cached_schema(info.logical_name)
        columns = [*wire_select(select, schema, info.primary_id), info.primary_id]
        url = collection_url(info.entity_set, columns, filter=filter, orderby=orderby)
        headers = {"Prefer": page_preference(page_size or self.page_size)}
        convert = RowConverter(info, schema).convert
        pages = self.transport.pages(
            url, _rows, kind="read", headers=headers, entity=info.logical_name
        )
        for rows in pages:
            for row in rows:
                yield convert(row)

    def read_after(
        self,
        entity: str,
        select: Sequence[str],
        *,
        after: str | None = None,
        filter: str | None = None,
        page_size: int | None = None,
    ) -> list[CrmRecord]:
        """One page of a keyset read: up to ``page_size`` records of ``entity`` whose primary
        key is above ``after`` (from the first when ``None``), in ascending key order, with
        ``select`` plus the key and ETag (the row version), and only those matching ``filter``.
        The last record's id is where the next page starts; a short page is the last."""
        info = self.entity(entity)
        schema = self.cached_schema(info.logical_name)
        size = page_size or self.page_size
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page size must be between 1 and {MAX_PAGE_SIZE}")
        columns = [*wire_select(select, schema, info.primary_id), info.primary_id]
        conditions = [f"{info.primary_id} gt {after}"] if after else []
        conditions += [f"({filter})"] if filter else []
        url = collection_url(
            info.entity_set,
            columns,
            filter=" and ".join(conditions) or None,
            orderby=f"{info.primary_id} asc",
        )
        document = self.transport.get_json(
            f"{url}&$top={size}",
            kind="read",
            headers={"Prefer": LOOKUP_PREFERENCE},
            entity=info.logical_name,
        )
        convert = RowConverter(info, schema).convert
        return [convert(row) for row in document.get("value") or []]

    def get(self, entity_set: str, id: str, select: Sequence[str]) -> CrmRecord:
        """Read one record; raises :class:`RecordNotFoundError` when it does not exist."""
        info = self.entity(entity_set)
        schema = self.cached_schema(info.logical_name)
        columns = [*wire_select(select, schema, info.primary_id), info.primary_id]
        url = f"{info.entity_set}({id})?$select={','.join(columns)}"
        headers = {"Prefer": LOOKUP_PREFERENCE}
        document = self.transport.get_json(
            url, kind="read", headers=headers, entity=info.logical_name, record_id=id
        )
        return record_from_row(info, document, schema)

    def exists(self, entity_set: str, id: str) -> CrmRecord | None:
        """The record (primary key and ETag only) if it exists, else ``None``."""
        try:
            return self.get(entity_set, id, [])
        except RecordNotFoundError:
            return None

    # -- change tracking ---------------------------------------------------------------------

    def start_tracking(
        self, entity_set: str, select: Sequence[str], page_size: int | None = None
    ) -> Iterator[ChangePage]:
        """Initial change-tracking read: every row, then a cursor with the last page (spec §4)."""
        return self.tracking.start(entity_set, select, page_size)

    def read_changes(
        self, cursor: DeltaCursor, page_size: int | None = None
    ) -> Iterator[ChangePage]:
        """Changes and deletes since ``cursor``; raises :class:`DeltaTokenExpiredError` (B17)."""
        return self.tracking.read_changes(cursor, page_size)

    # -- writes ------------------------------------------------------------------------------

    def write_batch(self, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        """Send writes in ``$batch`` requests; one :class:`WriteResult` per request, in order."""
        return BatchWriter(self.transport, self, self.batch_size).write(requests)

    def call_action(
        self, name: str, parameters: Mapping[str, Any], *, entity: str | None = None
    ) -> dict[str, Any]:
        """Call an unbound Web API action (``POST <name>`` with a JSON body, spec §6), with the
        transport's retries; the action's response (``{}`` for a 204). A refusal raises the
        error of its kind (code and message from Dynamics)."""

        def interpret(response: httpx.Response) -> dict[str, Any]:
            return (
                {} if response.status_code == 204 or not response.content else json_object(response)
            )

        return self.transport.exchange(
            "POST",
            name,
            interpret,
            kind="write",
            headers={"Content-Type": "application/json"},
            content=json.dumps(dict(parameters)).encode(),
            entity=entity,
        )

    # -- metadata and permissions ------------------------------------------------------------

    def _fetch_metadata(self, url: str) -> Mapping[str, Any] | None:
        def interpret(response: httpx.Response) -> Mapping[str, Any] | None:
            return None if response.status_code in (400, 404) else json_object(response)

        return self.transport.exchange(
            "GET",
            url,
            interpret,
            kind="metadata",
            # Fresh metadata and permission caches: a refresh must see a column just added in
            # Dynamics or a privilege just granted (spec §0; B11, B13).
            headers={"Consistency": "Strong"},
            accept_statuses=frozenset({400, 404}),
        )

    def who_am_i(self) -> Identity:
        """The sync user's identity (``WhoAmI``): the cheapest connectivity and auth check."""
        identity = parse_identity(self.transport.get_json("WhoAmI", kind="metadata"))
        with self._lock:
            self._identity = identity
        return identity

    @property
    def identity(self) -> Identity | None:
        """The identity ``WhoAmI`` returned in this process, if it was asked (no request)."""
        with self._lock:
            return self._identity

    def user_label(self, user_id: str) -> str:
        """A Dynamics user as people know it: full name and sign-in name (``Alex Morgan
        (alex.morgan@contoso.example)``) from ``systemusers``; the id if Dynamics cannot say."""
        try:
            row = self.transport.get_json(
                f"systemusers({user_id})?$select=fullname,domainname",
                kind="read",
                entity="systemuser",
                record_id=user_id,
            )
        except CrmsyncError:
            return user_id
        return user_label(row, user_id)

    def _user_id(self) -> str:
        with self._lock:
            identity = self._identity
        return (identity or self.who_am_i()).user_id

    def user_privileges(self) -> UserPrivileges:
        """The sync user's table privileges (``RetrieveUserPrivileges``, spec §9)."""
        url = f"systemusers({self._user_id()})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges"
        return parse_user_privileges(self.transport.get_json(url, kind="metadata"))

    def field_permissions(self) -> Mapping[str, FieldPermission] | None:
        """The sync user's access to secured columns, or ``None`` if the org cannot say."""
        url = (
            f"systemusers({self._user_id()})"
            "/Microsoft.Dynamics.CRM.RetrievePrincipalAttributePrivileges()"
        )
        document = self._fetch_metadata(url)
        return None if document is None else parse_field_permissions(document)

    def entity_schema(self, logical_name: str) -> EntitySchema:
        """Read (and cache) a table's schema with the sync user's column access (B8)."""
        schema = read_entity_schema(self._fetch_metadata, logical_name, self.field_permissions)
        if schema is None:
            raise ConfigurationError(f"Dynamics has no table called {logical_name!r}")
        self._directory.remember_schema(schema)
        return schema

    def remember_schema(self, schema: EntitySchema) -> None:
        """Use a schema kept from an earlier run (see :meth:`schema_changes`) as if just read."""
        self._directory.remember_schema(schema)

    def schema_changes(self, entities: Sequence[str], stamp: str | None) -> SchemaChanges:
        """Which of ``entities`` Dynamics changed since ``stamp`` (``RetrieveMetadataChanges``,
        one request); an expired stamp comes back as every table changed, with a new stamp."""
        try:
            document = self.transport.get_json(changes_url(entities, stamp), kind="metadata")
        except DeltaTokenExpiredError:
            fresh = parse_changes(
                self.transport.get_json(changes_url(entities, None), kind="metadata")
            )
            return SchemaChanges(fresh.stamp, frozenset(entities), frozenset(), expired=True)
        found = parse_changes(document)
        if stamp is None:  # no stamp: every table came back; all count as changed
            return SchemaChanges(found.stamp, frozenset(entities), frozenset())
        return found

    def change_tracking_enabled(self, logical_name: str) -> bool:
        """Whether change tracking is on for a table (``ChangeTrackingEnabled``, spec §4)."""
        document = self._fetch_metadata(f"{entity_url(logical_name)}?$select=ChangeTrackingEnabled")
        if document is None:
            raise ConfigurationError(f"Dynamics has no table called {logical_name!r}")
        return bool(document.get("ChangeTrackingEnabled"))


def _rows(document: dict[str, Any]) -> list[Any]:
    return list(document.get("value") or [])
