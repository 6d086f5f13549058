"""One request to the Dataverse Web API: common headers, the request budget, error
classification and retries, and the decoding of JSON answers and paged reads.

:class:`Transport` is what the client, the change-tracking reads and the ``$batch`` writer send
through; the retries themselves are :class:`~crmsync.dynamics.retry.Retrier`'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from crmsync.dynamics.budget import RequestBudget
from crmsync.dynamics.classify import (
    Action,
    Resolution,
    classify,
    classify_transport_error,
)
from crmsync.dynamics.retry import Retrier, Retry
from crmsync.errors import ConfigurationError, RetryLaterError, TransientServerError

_T = TypeVar("_T")
_Page = TypeVar("_Page")

BASE_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
}
"""Headers on every request (spec §0)."""

Refusal = Callable[[httpx.Response, Resolution], Resolution]
"""Re-classifies a failed response in the caller's terms (e.g. a rejected delta link)."""


def service_root_of(base_url: str, api_version: str) -> str:
    """``https://org.crm.dynamics.com`` → ``https://org.crm.dynamics.com/api/data/v9.2/``."""
    parts = urlsplit(base_url.strip())
    if not parts.scheme or not parts.netloc:
        raise ConfigurationError(
            "the Dynamics URL must be absolute, e.g. https://org.crm.dynamics.com"
        )
    path = parts.path.split("/api/data")[0].rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}/api/data/{api_version}/"


class Transport:
    """Sends requests to one org's Web API with retries, counting them in ``budget``.

    ``http`` is the transport seam (tests hand in the emulator or ``httpx.MockTransport``).
    """

    def __init__(
        self, http: httpx.Client, service_root: str, budget: RequestBudget, retrier: Retrier
    ) -> None:
        self.http = http
        self.service_root = service_root
        self.budget = budget
        self.retrier = retrier

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
        on_failure: Refusal | None = None,
        no_retry: bool = False,
    ) -> httpx.Response:
        """Send one request with retries; return the response or raise a typed error.

        Responses with a status in ``accept_statuses`` are returned instead of raised;
        ``on_failure`` may re-classify a failed response (e.g. a rejected delta token);
        ``no_retry`` hands retryable failures straight back (as :class:`RetryLaterError`).
        """
        return self.exchange(
            method,
            url,
            _as_is,
            kind=kind,
            headers=headers,
            content=content,
            entity=entity,
            record_id=record_id,
            accept_statuses=accept_statuses,
            on_failure=on_failure,
            no_retry=no_retry,
        )

    def exchange(
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
        on_failure: Refusal | None = None,
        no_retry: bool = False,
    ) -> _T:
        """Send one request with retries; ``interpret`` turns a successful response into the
        result, and if it raises :class:`TransientServerError` (a truncated body) the request
        is sent again. Other arguments as for :meth:`send`."""
        request_headers = dict(BASE_HEADERS)
        if method == "GET":
            request_headers["If-None-Match"] = "null"
        if headers:
            request_headers.update(headers)
        absolute = self.url(url)

        def attempt() -> _T | Retry:
            answer = self._attempt(
                method, absolute, request_headers, content, kind, entity, record_id
            )
            if isinstance(answer, Resolution):
                resolution = answer
            elif answer.status_code < 400 or answer.status_code in accept_statuses:
                try:
                    result = interpret(answer)
                except TransientServerError as exc:
                    self.budget.record_transport_error()
                    resolution = Resolution(Action.RETRY, None, exc)
                else:
                    self.budget.record_success()
                    return result
            else:
                if answer.status_code == 429:
                    self.budget.record_throttled()
                resolution = classify(answer, entity=entity, record_id=record_id)
                if on_failure is not None:
                    resolution = on_failure(answer, resolution)
            error = resolution.error or TransientServerError(f"{method} failed")
            if resolution.action is not Action.RETRY or no_retry:
                raise error
            return Retry(error.message, resolution.retry_after, error=error)

        return self.retrier.run(attempt, _raise, what=f"{kind} {method}")

    def _attempt(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes | None,
        kind: str,
        entity: str | None,
        record_id: str | None,
    ) -> httpx.Response | Resolution:
        """One request: the response, or how a failure to get one resolves."""
        try:
            with self.budget.slot(kind):
                response = self.http.request(method, url, headers=headers, content=content)
                response.read()
        except httpx.TransportError as exc:
            self.budget.record_transport_error()
            return classify_transport_error(exc, entity=entity, record_id=record_id)
        except RetryLaterError as exc:  # the identity provider was unreachable (auth flow)
            self.budget.record_transport_error()
            return Resolution(Action.RETRY, exc.retry_after, exc)
        self.budget.record_bytes(len(content or b""), len(response.content))
        return response

    def get_json(
        self,
        url: str,
        *,
        kind: str,
        headers: Mapping[str, str] | None = None,
        entity: str | None = None,
        record_id: str | None = None,
        on_failure: Refusal | None = None,
    ) -> dict[str, Any]:
        """GET a JSON document (retrying what is retryable, truncated bodies included)."""
        return self.exchange(
            "GET",
            url,
            json_object,
            kind=kind,
            headers=headers,
            entity=entity,
            record_id=record_id,
            on_failure=on_failure,
        )

    def pages(
        self,
        url: str,
        parse: Callable[[dict[str, Any]], _Page],
        *,
        kind: str,
        headers: Mapping[str, str],
        entity: str,
        on_failure: Refusal | None = None,
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


def _raise(last: Retry) -> NoReturn:
    raise last.error or TransientServerError(last.reason)


def _as_is(response: httpx.Response) -> httpx.Response:
    return response


def json_object(response: httpx.Response) -> dict[str, Any]:
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
