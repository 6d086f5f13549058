"""``DynamicsClient``: the one object through which crmsync talks to a Dataverse org.

It owns the transport seam (an ``httpx.Client`` whose auth flow adds the bearer token), the
common request headers (spec §0), retries through one :class:`RetryPolicy`, the adaptive
:class:`RequestBudget`, and caches of entity addressing and schemas. Reads, change tracking,
writes and metadata are methods here; the wire-format work lives in the sibling modules.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from crmsync.dynamics.batch import MAX_BATCH_SIZE, Target
from crmsync.dynamics.budget import ClientStats, RequestBudget
from crmsync.dynamics.changes import TRACK_CHANGES, cursor_for, parse_change_page
from crmsync.dynamics.classify import (
    Action,
    Resolution,
    classify,
    classify_transport_error,
)
from crmsync.dynamics.metadata import (
    FieldPermission,
    Identity,
    UserPrivileges,
    entity_url,
    parse_field_permissions,
    parse_identity,
    parse_user_privileges,
    read_entity_schema,
)
from crmsync.dynamics.query import (
    LOOKUP_ANNOTATION,
    WELL_KNOWN_ENTITIES,
    EntitySetInfo,
    RowConverter,
    collection_url,
    quote_query_value,
    record_from_row,
    wire_select,
)
from crmsync.dynamics.retry import RetryPolicy
from crmsync.dynamics.types import (
    ChangePage,
    CrmRecord,
    DeltaCursor,
    EntitySchema,
    WriteRequest,
    WriteResult,
)
from crmsync.errors import (
    ConfigurationError,
    DeltaTokenExpiredError,
    RecordNotFoundError,
    RetryLaterError,
    TransientServerError,
    UnknownFieldError,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_Page = TypeVar("_Page")
MAX_PAGE_SIZE = 5000
BASE_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
}
LOOKUP_PREFERENCE = f'odata.include-annotations="{LOOKUP_ANNOTATION}"'
DELTA_REJECTED_STATUSES = frozenset({400, 404, 410, 422})


def service_root_of(base_url: str, api_version: str) -> str:
    """``https://org.crm.dynamics.com`` → ``https://org.crm.dynamics.com/api/data/v9.2/``."""
    parts = urlsplit(base_url.strip())
    if not parts.scheme or not parts.netloc:
        raise ConfigurationError(
            "the Dynamics URL must be absolute, e.g. https://org.crm.dynamics.com"
        )
    path = parts.path.split("/api/data")[0].rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}/api/data/{api_version}/"


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
        batch_size: int = 500,
        concurrency: int = 4,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page size must be between 1 and {MAX_PAGE_SIZE}")
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ConfigurationError(f"batch size must be between 1 and {MAX_BATCH_SIZE}")
        self.http = http
        self.service_root = service_root_of(base_url, api_version)
        self.page_size = page_size
        self.batch_size = batch_size
        self.retry_policy = retry_policy or RetryPolicy()
        self.budget = RequestBudget(concurrency)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._entities: dict[str, EntitySetInfo] = {}
        for info in WELL_KNOWN_ENTITIES:
            self._remember(info)
        self._schemas: dict[str, EntitySchema] = {}
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

    # -- transport ---------------------------------------------------------------------------

    def stats(self) -> ClientStats:
        """Counters of requests by kind, 429s, retries and bytes (B40)."""
        return self.budget.snapshot()

    def url(self, relative: str) -> str:
        """An absolute URL for a service-root-relative path (absolute URLs pass through)."""
        return urljoin(self.service_root, relative)

    def send(
        self,
        method: str,
        url: str,
        *,
        kind: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        entity: str | None = None,
        record_id: str | None = None,
        accept_statuses: frozenset[int] = frozenset(),
        on_failure: Callable[[httpx.Response, Resolution], Resolution] | None = None,
        no_retry: bool = False,
    ) -> httpx.Response:
        """Send one request with retries; return the response or raise a typed error.

        Responses with a status in ``accept_statuses`` are returned instead of raised;
        ``on_failure`` may re-classify a failed response (e.g. a rejected delta token);
        ``no_retry`` hands retryable failures straight back (as :class:`RetryLaterError`).
        """
        return self._exchange(
            method,
            url,
            lambda response: response,
            kind=kind,
            headers=headers,
            content=content,
            entity=entity,
            record_id=record_id,
            accept_statuses=accept_statuses,
            on_failure=on_failure,
            no_retry=no_retry,
        )

    def _exchange(
        self,
        method: str,
        url: str,
        interpret: Callable[[httpx.Response], _T],
        *,
        kind: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        entity: str | None = None,
        record_id: str | None = None,
        accept_statuses: frozenset[int] = frozenset(),
        on_failure: Callable[[httpx.Response, Resolution], Resolution] | None = None,
        no_retry: bool = False,
    ) -> _T:
        """The retry loop. ``interpret`` turns a successful response into the result; if it
        raises :class:`TransientServerError` (a truncated body) the request is retried.
        """
        request_headers = dict(BASE_HEADERS)
        if method == "GET":
            request_headers["If-None-Match"] = "null"
        if headers:
            request_headers.update(headers)
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.budget.slot(kind):
                    response = self.http.request(
                        method, self.url(url), headers=request_headers, content=content
                    )
                    response.read()
            except httpx.TransportError as exc:
                self.budget.record_transport_error()
                resolution = classify_transport_error(exc, entity=entity, record_id=record_id)
            except RetryLaterError as exc:  # the identity provider was unreachable (auth flow)
                self.budget.record_transport_error()
                resolution = Resolution(Action.RETRY, exc.retry_after, exc)
            else:
                self.budget.record_bytes(len(content or b""), len(response.content))
                if response.status_code < 400 or response.status_code in accept_statuses:
                    try:
                        result = interpret(response)
                    except TransientServerError as exc:
                        self.budget.record_transport_error()
                        resolution = Resolution(Action.RETRY, None, exc)
                    else:
                        self.budget.record_success()
                        return result
                else:
                    if response.status_code == 429:
                        self.budget.record_throttled()
                    resolution = classify(response, entity=entity, record_id=record_id)
                    if on_failure is not None:
                        resolution = on_failure(response, resolution)
            if resolution.action is Action.RETRY and not no_retry:
                delay = self.retry_policy.delay(attempt, resolution.retry_after, self._rng)
                if self.retry_policy.should_retry(attempt, self._clock() - started, delay):
                    self.budget.record_retry()
                    log.warning(
                        "Dynamics %s %s attempt %d: %s; retrying in %.1fs",
                        kind,
                        method,
                        attempt,
                        resolution.error.message if resolution.error else "transient failure",
                        delay,
                    )
                    self._sleep(delay)
                    continue
            error = resolution.error or TransientServerError(f"{method} failed")
            raise error

    def get_json(
        self,
        url: str,
        *,
        kind: str,
        headers: Mapping[str, str] | None = None,
        entity: str | None = None,
        record_id: str | None = None,
        on_failure: Callable[[httpx.Response, Resolution], Resolution] | None = None,
    ) -> dict[str, Any]:
        """GET a JSON document (retrying what is retryable, truncated bodies included)."""
        return self._exchange(
            "GET",
            url,
            _json_object,
            kind=kind,
            headers=headers,
            entity=entity,
            record_id=record_id,
            on_failure=on_failure,
        )

    # -- entity addressing -------------------------------------------------------------------

    def _remember(self, info: EntitySetInfo) -> None:
        self._entities[info.logical_name] = info
        self._entities[info.entity_set] = info

    def entity(self, name: str) -> EntitySetInfo:
        """How to address a table given its logical name or entity set name (cached)."""
        with self._lock:
            known = self._entities.get(name)
        if known is not None:
            return known
        quoted = name.replace("'", "''")
        select = "$select=LogicalName,EntitySetName,PrimaryIdAttribute"
        filter_text = quote_query_value(f"EntitySetName eq '{quoted}' or LogicalName eq '{quoted}'")
        document = self.get_json(
            f"EntityDefinitions?{select}&$filter={filter_text}", kind="metadata"
        )
        for row in document.get("value") or []:
            info = EntitySetInfo(
                str(row.get("LogicalName")),
                str(row.get("EntitySetName")),
                str(row.get("PrimaryIdAttribute")),
            )
            with self._lock:
                self._remember(info)
            return info
        raise ConfigurationError(f"Dynamics has no table called {name!r}")

    def entity_set_of(self, logical_name: str) -> str:
        """The URL entity set of a table (never derived by adding "s", spec §2a)."""
        return self.entity(logical_name).entity_set

    def cached_schema(self, logical_name: str) -> EntitySchema | None:
        """The schema read by :meth:`entity_schema`, if it was read."""
        with self._lock:
            return self._schemas.get(logical_name)

    def target(self, logical_name: str) -> Target:
        """Where writes to a table go."""
        info = self.entity(logical_name)
        return Target(info.entity_set, info.primary_id, self.cached_schema(info.logical_name))

    # -- reads -------------------------------------------------------------------------------

    def _prefer(self, page_size: int | None, *, tracking: bool = False) -> str:
        size = page_size or self.page_size
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page size must be between 1 and {MAX_PAGE_SIZE}")
        parts = [TRACK_CHANGES] if tracking else []
        parts += [f"odata.maxpagesize={size}", LOOKUP_PREFERENCE]
        return ",".join(parts)

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
        headers = {"Prefer": self._prefer(page_size)}
        convert = RowConverter(info, schema).convert
        for document in self._pages(url, kind="read", headers=headers, entity=info.logical_name):
            for row in document.get("value") or []:
                yield convert(row)

    def _pages(
        self,
        url: str,
        *,
        kind: str,
        headers: Mapping[str, str],
        entity: str,
        on_failure: Callable[[httpx.Response, Resolution], Resolution] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every page from ``url`` on, following ``@odata.nextLink`` verbatim (spec §3)."""
        return self._parsed_pages(
            url, _as_is, kind=kind, headers=headers, entity=entity, on_failure=on_failure
        )

    def _parsed_pages(
        self,
        url: str,
        parse: Callable[[dict[str, Any]], _Page],
        *,
        kind: str,
        headers: Mapping[str, str],
        entity: str,
        on_failure: Callable[[httpx.Response, Resolution], Resolution] | None = None,
    ) -> Iterator[_Page]:
        """Every page from ``url`` on, each passed through ``parse``, following
        ``@odata.nextLink`` verbatim (spec §3).

        The next page is requested as soon as the current one is handed out, so the server
        builds it while the caller consumes this one; the page is decoded and parsed on the
        same background thread, overlapping the caller's database work (B16). A caller that
        stops early leaves at most that one request in flight, which completes before the
        generator closes. Pages are parsed one at a time, in order.
        """

        def fetch(link: str) -> tuple[str | None, _Page]:
            document = self.get_json(
                link, kind=kind, headers=headers, entity=entity, on_failure=on_failure
            )
            next_link = document.get("@odata.nextLink")
            return (str(next_link) if next_link else None), parse(document)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crmsync-page") as pool:
            pending: Future[tuple[str | None, _Page]] | None = pool.submit(fetch, url)
            while pending is not None:
                next_link, page = pending.result()
                pending = pool.submit(fetch, next_link) if next_link else None
                yield page

    def get(self, entity_set: str, id: str, select: Sequence[str]) -> CrmRecord:
        """Read one record; raises :class:`RecordNotFoundError` when it does not exist."""
        info = self.entity(entity_set)
        schema = self.cached_schema(info.logical_name)
        columns = [*wire_select(select, schema, info.primary_id), info.primary_id]
        url = f"{info.entity_set}({id})?$select={','.join(columns)}"
        headers = {"Prefer": LOOKUP_PREFERENCE}
        document = self.get_json(
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
        info = self.entity(entity_set)
        schema = self.cached_schema(info.logical_name)
        columns = [*wire_select(select, schema, info.primary_id), info.primary_id]
        url = collection_url(info.entity_set, columns)
        return self._change_pages(info, url, self._prefer(page_size, tracking=True), delta=False)

    def read_changes(
        self, cursor: DeltaCursor, page_size: int | None = None
    ) -> Iterator[ChangePage]:
        """Changes and deletes since ``cursor``; raises :class:`DeltaTokenExpiredError` (B17)."""
        info = self.entity(cursor.entity)
        prefer = self._prefer(page_size, tracking=True)
        return self._change_pages(info, cursor.delta_link, prefer, delta=True)

    def _change_pages(
        self, info: EntitySetInfo, url: str, prefer: str, *, delta: bool
    ) -> Iterator[ChangePage]:
        schema = self.cached_schema(info.logical_name)

        def rejected(response: httpx.Response, resolution: Resolution) -> Resolution:
            if isinstance(resolution.error, UnknownFieldError):
                return resolution  # a selected column was deleted: not a token problem (B14)
            if resolution.action is Action.RECONCILE or (
                delta and response.status_code in DELTA_REJECTED_STATUSES
            ):
                error = resolution.error
                return Resolution(
                    Action.RECONCILE,
                    None,
                    DeltaTokenExpiredError(
                        f"change-tracking token for {info.logical_name} was rejected: "
                        f"{error.message if error else response.status_code}",
                        entity=info.logical_name,
                        status=response.status_code,
                        code=error.code if error else None,
                    ),
                )
            if not delta and response.status_code == 400:
                error = resolution.error
                detail = error.message if error else ""
                return Resolution(
                    Action.FAIL_CYCLE,
                    None,
                    ConfigurationError(
                        f"change tracking read of {info.logical_name} refused "
                        f"(is change tracking enabled for the table?): {detail}",
                        entity=info.logical_name,
                        status=400,
                        code=error.code if error else None,
                    ),
                )
            return resolution

        converter = RowConverter(info, schema)
        pages = self._parsed_pages(
            url,
            functools.partial(parse_change_page, info, converter=converter),
            kind="delta" if delta else "track",
            headers={"Prefer": prefer},
            entity=info.logical_name,
            on_failure=rejected,
        )
        for page in pages:
            if page.next_link:
                yield ChangePage(info.logical_name, page.items)
                continue
            if not page.delta_link:
                raise TransientServerError(
                    f"change-tracking read of {info.logical_name} ended without a delta link",
                    entity=info.logical_name,
                )
            yield ChangePage(info.logical_name, page.items, cursor_for(info, page.delta_link))

    # -- writes ------------------------------------------------------------------------------

    def write_batch(self, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        """Send writes in ``$batch`` requests; one :class:`WriteResult` per request, in order."""
        from crmsync.dynamics.writes import BatchWriter

        return BatchWriter(self, self._clock, self._sleep, self._rng).write(requests)

    # -- metadata and permissions ------------------------------------------------------------

    def _fetch_metadata(self, url: str) -> Mapping[str, Any] | None:
        def interpret(response: httpx.Response) -> Mapping[str, Any] | None:
            return None if response.status_code in (400, 404) else _json_object(response)

        return self._exchange(
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
        identity = parse_identity(self.get_json("WhoAmI", kind="metadata"))
        with self._lock:
            self._identity = identity
        return identity

    def _user_id(self) -> str:
        with self._lock:
            identity = self._identity
        return (identity or self.who_am_i()).user_id

    def user_privileges(self) -> UserPrivileges:
        """The sync user's table privileges (``RetrieveUserPrivileges``, spec §9)."""
        url = f"systemusers({self._user_id()})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges"
        return parse_user_privileges(self.get_json(url, kind="metadata"))

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
        with self._lock:
            self._schemas[schema.logical_name] = schema
            if schema.entity_set_name and schema.primary_id:
                self._remember(
                    EntitySetInfo(schema.logical_name, schema.entity_set_name, schema.primary_id)
                )
        return schema

    def change_tracking_enabled(self, logical_name: str) -> bool:
        """Whether change tracking is on for a table (``ChangeTrackingEnabled``, spec §4)."""
        document = self._fetch_metadata(f"{entity_url(logical_name)}?$select=ChangeTrackingEnabled")
        if document is None:
            raise ConfigurationError(f"Dynamics has no table called {logical_name!r}")
        return bool(document.get("ChangeTrackingEnabled"))


def _as_is(document: dict[str, Any]) -> dict[str, Any]:
    return document


def _json_object(response: httpx.Response) -> dict[str, Any]:
    """The JSON object in a successful response; an empty or cut-off body is transient."""
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        document = _lenient_json(response.content)
    if document is _NOT_JSON:
        raise TransientServerError(
            f"Dynamics answered HTTP {response.status_code} with a body that is not JSON",
            status=response.status_code,
        )
    if not isinstance(document, dict):
        raise TransientServerError("Dynamics answered with an unexpected JSON shape")
    return document


_NOT_JSON = object()


def _lenient_json(content: bytes) -> Any:
    """What the standard decoder makes of a body the fast one refused (it also accepts lone
    surrogate escapes, ``NaN`` and integers of any size); ``_NOT_JSON`` when it is not JSON."""
    try:
        return json.loads(content)
    except ValueError:
        return _NOT_JSON
