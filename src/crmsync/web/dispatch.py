"""Routing of Marketo REST calls: one table of ``(method, path) -> handler``.

A single ASGI endpoint receives every ``/rest/...`` request and hands it to :class:`Dispatcher`,
which applies, in order, what every Marketo call shares (spec marketo-rest.md §1, §8, §10):

1. the body limit (413) and URI limit (414);
2. ``_method=GET`` tunnelling: a POST whose query or form body says ``_method=GET`` is served by
   the GET handler, with query, form and JSON parameters merged (§10.3);
3. route lookup: unknown path 610, known path with the wrong method 605;
4. the access token (header, ``access_token`` query parameter or form field; 601/602), checked
   before any JSON body is parsed;
5. the per-client daily quota (607), rate (606) and the concurrency limit (615);
6. a tunnelled JSON body is parsed and merged into the parameters (609 when it is not JSON);
7. the handler, which returns a reply document or raises :class:`ApiError`; an error of
   :mod:`crmsync.errors` raised below it is answered here, through the one table of
   :mod:`crmsync.web.error_answers`.

Handlers are plain synchronous functions of an :class:`ApiCall`; they run in a worker thread
because the services below them do blocking database I/O.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crmsync.errors import CrmsyncError
from crmsync.web.clients import ApiClientStore
from crmsync.web.envelope import (
    ApiError,
    blank,
    invalid_content_type,
    invalid_json,
    invalid_parameter,
    method_not_supported,
    resource_not_found,
)
from crmsync.web.error_answers import answer_for, api_error_for
from crmsync.web.limits import UNCOUNTED_CODES, ApiLimits
from crmsync.web.params import (
    FORM_MEDIA_TYPE,
    JSON_MEDIA_TYPE,
    ApiParams,
    as_record_id,
    media_type,
    parse_json_body,
)
from crmsync.web.services import MarketoServices

logger = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 300

_NOT_PARSED = object()


@dataclass(frozen=True, slots=True)
class RawRequest:
    """What the dispatcher needs of an HTTP request, already read from the wire."""

    method: str
    path: str
    query_string: str
    content_type: str
    authorization: str
    body: bytes


class ApiCall:
    """One authenticated call as a handler sees it."""

    __slots__ = ("_json", "body", "client_id", "media_type", "params", "path_args", "services")

    def __init__(
        self,
        *,
        params: ApiParams,
        path_args: Mapping[str, str],
        body: bytes,
        media: str,
        client_id: str,
        services: MarketoServices,
        parsed_json: object = _NOT_PARSED,
    ) -> None:
        self.params = params
        self.path_args = path_args
        self.body = body
        self.media_type = media
        self.client_id = client_id
        self.services = services
        self._json = parsed_json

    def path_int(self, name: str) -> int:
        """Return a numeric path segment (``/lead/{id}.json``); 1003 when not a number."""
        text = self.path_args[name]
        number = as_record_id(text)
        if number is None:
            raise invalid_parameter(f"Invalid value '{text}' for '{name}'")
        return number

    def has_body(self) -> bool:
        """True when the request carries a non-blank body."""
        return bool(self.body.strip())

    def json_body(self) -> Any:
        """Return the JSON body: 612 when not ``application/json``, 609 when malformed."""
        if self._json is _NOT_PARSED:
            if self.media_type != JSON_MEDIA_TYPE:
                raise invalid_content_type()
            if not self.has_body():
                raise invalid_json()
            self._json = parse_json_body(self.body)
        return self._json

    def json_object(self) -> dict[str, Any]:
        """Return the JSON body, which must be an object (609 otherwise)."""
        document = self.json_body()
        if not isinstance(document, dict):
            raise invalid_json()
        return document

    def input_list(self, *, required: bool = True) -> list[Any]:
        """Return the body's ``input`` array (at most 300 items, spec §8).

        701 when missing and required, 1003 when not an array or too long.
        """
        document = self.json_object()
        records = document.get("input")
        if records is None or records == []:
            if required:
                raise ApiError("701", "'input' cannot be blank")
            return []
        if not isinstance(records, list):
            raise invalid_parameter("Invalid data: 'input' must be an array")
        _check_batch_size(records)
        return records

    def input_ids(self, blank_name: str) -> list[object]:
        """Return record ids from the body's ``input`` (``[{"id": ...}]``) or ``id`` parameters.

        With a body, each record's ``id`` (None for a record that is not an object); without,
        every ``id`` parameter: 701 naming ``blank_name`` when there is none, 1003 past 300.
        """
        if self.has_body():
            return [
                record.get("id") if isinstance(record, dict) else None
                for record in self.input_list()
            ]
        ids: list[object] = list(self.params.get_list("id"))
        if not ids:
            raise blank(blank_name)
        _check_batch_size(ids)
        return ids


def _check_batch_size(records: Sequence[object]) -> None:
    if len(records) > MAX_RECORDS_PER_CALL:
        raise invalid_parameter(
            f"Batch size of {len(records)} exceeds the maximum of {MAX_RECORDS_PER_CALL}"
        )


Handler = Callable[[ApiCall], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Route:
    """One resource: its path template, HTTP method and handler."""

    method: str
    template: str
    handler: Handler
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        parts = re.split(r"\{(\w+)\}", self.template)
        regex = "".join(
            re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+?)"
            for index, part in enumerate(parts)
        )
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


class RouteTable:
    """Routes in registration order; the first matching template wins."""

    def __init__(self, routes: Sequence[Route] = ()) -> None:
        self._routes: list[Route] = list(routes)

    def add(self, method: str, template: str, handler: Handler) -> None:
        """Register ``handler`` for ``method`` on ``template`` (``{name}`` segments)."""
        self._routes.append(Route(method.upper(), template, handler))

    def extend(self, routes: Sequence[Route]) -> None:
        """Register several routes."""
        self._routes.extend(routes)

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """Find the handler for ``method`` on ``path``; 610 unknown path, 605 wrong method."""
        path_known = False
        for route in self._routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            path_known = True
            if route.method == method:
                return route.handler, match.groupdict()
        if path_known:
            raise method_not_supported(method)
        raise resource_not_found()


def _bearer_token(authorization: str, params: ApiParams) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    token = params.get("access_token")
    return token or None


class Dispatcher:
    """Serves one Marketo REST call from start to finish (see the module docstring)."""

    def __init__(
        self,
        *,
        routes: RouteTable,
        clients: ApiClientStore,
        limits: ApiLimits,
        services: MarketoServices,
    ) -> None:
        self.routes = routes
        self.clients = clients
        self.limits = limits
        self.services = services

    def _forget_if_uncounted(self, client_id: str, error: ApiError) -> None:
        if error.code in UNCOUNTED_CODES:
            self.limits.forget_last(client_id)

    def _authenticate(self, authorization: str, params: ApiParams) -> str:
        """Return the API client id of the call's token; 601 missing or unknown, 602 expired."""
        token = _bearer_token(authorization, params)
        if token is None:
            raise ApiError("601", "Access token invalid")
        check = self.clients.check_token(token)
        if check.client_id is None:
            raise ApiError("601", "Access token invalid")
        if check.expired:
            raise ApiError("602", "Access token expired")
        return check.client_id

    def serve(self, request: RawRequest) -> dict[str, Any]:
        """Serve an already-read request and return the reply document.

        Raises :class:`ApiError` for response-level errors; the caller turns it into the
        failure envelope. Blocking: call from a worker thread.
        """
        media = media_type(request.content_type)
        params = ApiParams.from_query(request.query_string)
        if media == FORM_MEDIA_TYPE and request.body:
            params.add_form(request.body)
        method = request.method.upper()
        tunnelled = method == "POST" and (params.get("_method") or "").upper() == "GET"
        if tunnelled:
            method = "GET"
        handler, path_args = self.routes.resolve(method, request.path)
        # The token comes from the header, the query or a form field (never the JSON body),
        # so the caller is known before a JSON body is read at all.
        client_id = self._authenticate(request.authorization, params)
        self.limits.admit(client_id)

        parsed_json: object = _NOT_PARSED
        if tunnelled and media == JSON_MEDIA_TYPE and request.body.strip():
            try:
                parsed_json = parse_json_body(request.body)
            except ApiError as refused:
                self._forget_if_uncounted(client_id, refused)
                raise
            if isinstance(parsed_json, dict):
                params.add_json_object(parsed_json)
        call = ApiCall(
            params=params,
            path_args=path_args,
            body=request.body,
            media=media,
            client_id=client_id,
            services=self.services,
            parsed_json=parsed_json,
        )
        try:
            return handler(call)
        except CrmsyncError as exc:
            error = api_error_for(exc)
            if answer_for(exc).unexpected:  # answered 611 without details: the log has them
                logger.exception("unhandled error serving %s %s", method, request.path)
            self._forget_if_uncounted(client_id, error)
            raise error from exc
        except ApiError as error:
            self._forget_if_uncounted(client_id, error)
            raise
        except Exception:
            self.limits.forget_last(client_id)  # answered 611, which does not count
            raise
