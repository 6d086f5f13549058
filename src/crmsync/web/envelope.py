"""The Marketo REST response envelope (spec marketo-rest.md §1.1).

Every reply of the Marketo-compatible API is JSON. Successful calls carry ``requestId``,
``success: true`` and, for most calls, a ``result`` array; failed calls carry ``success: false``
and an ``errors`` array whose codes are JSON *strings* (``"601"``, not ``601``), because
Marketo clients compare them as strings (§1.1, §9.4). Errors travel with HTTP 200; only the
identity endpoint (401), oversized bodies (413) and oversized URIs (414) use other statuses.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import Response

from crmsync.marketing.outcomes import Reason

JSON_MEDIA_TYPE = "application/json"


class ApiError(Exception):
    """A response-level Marketo error: the call fails as a whole with ``code`` and ``message``.

    ``http_status`` is 200 for every documented API error; a few transport errors (413, 414,
    the identity endpoint's 401) use their own status.
    """

    def __init__(self, code: str, message: str, *, http_status: int = 200) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


def new_request_id() -> str:
    """Return a request id shaped like Marketo's (``e42b#14272d07d78``: hex, hash, hex time)."""
    return f"{secrets.randbits(20):x}#{int(time.time() * 1000):x}"


def format_timestamp(value: dt.datetime) -> str:
    """Format a timestamp as Marketo does on the wire: UTC, whole seconds, ``Z`` suffix (§5.3)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_default(value: object) -> object:
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(document: Mapping[str, Any]) -> bytes:
    """Serialise a reply document to compact UTF-8 JSON.

    A message may quote the client's own input, lone UTF-16 surrogates included, which UTF-8
    cannot encode: each is shown as U+FFFD so that the reply is always sent.
    """
    text = json.dumps(document, default=_json_default, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text).encode("utf-8")


GZIP_MIN_BYTES = 1024


def json_response(
    document: Mapping[str, Any], *, status_code: int = 200, accept_encoding: str = ""
) -> Response:
    """Return ``document`` as an ``application/json`` response.

    Bodies of 1024 bytes or more are gzipped when the client accepts it, as Marketo does
    (spec marketo-rest §1 "Compression").
    """
    body = dumps(document)
    if len(body) >= GZIP_MIN_BYTES and "gzip" in accept_encoding.lower():
        return Response(
            gzip.compress(body, compresslevel=5),
            status_code=status_code,
            media_type=JSON_MEDIA_TYPE,
            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )
    return Response(body, status_code=status_code, media_type=JSON_MEDIA_TYPE)


def success(
    result: list[Any] | None = None,
    *,
    include_result: bool = True,
    next_page_token: str | None = None,
    more_result: bool | None = None,
    warnings: list[Any] | None = None,
) -> dict[str, Any]:
    """Build a successful envelope.

    ``result`` is always present on success unless ``include_result`` is false (paging token,
    merge); ``nextPageToken`` and ``moreResult`` appear only when given.
    """
    document: dict[str, Any] = {"requestId": new_request_id(), "success": True}
    if include_result:
        document["result"] = result if result is not None else []
    if next_page_token is not None:
        document["nextPageToken"] = next_page_token
    if more_result is not None:
        document["moreResult"] = more_result
    if warnings:
        document["warnings"] = warnings
    return document


def failure(code: str, message: str) -> dict[str, Any]:
    """Build a failed envelope with one error (code as a JSON string)."""
    return {
        "requestId": new_request_id(),
        "success": False,
        "errors": [{"code": str(code), "message": message}],
    }


def error_response(error: ApiError) -> Response:
    """Return the reply for a response-level error."""
    return json_response(failure(error.code, error.message), status_code=error.http_status)


def skipped(reasons: Iterable[Reason], **identity: object) -> dict[str, Any]:
    """Build a skipped record result (``status: skipped`` plus its reasons, e.g.
    ``{"code": "1004", "message": "Lead not found"}``)."""
    record: dict[str, Any] = dict(identity)
    record["status"] = "skipped"
    record["reasons"] = [{"code": reason.code, "message": reason.message} for reason in reasons]
    return record


# Response-level errors with Marketo's documented texts (spec §3).
def invalid_json() -> ApiError:
    """609: the body is not valid JSON."""
    return ApiError("609", "Invalid JSON")


def invalid_content_type() -> ApiError:
    """612: the body has the wrong content type."""
    return ApiError("612", "Invalid Content Type")


def resource_not_found() -> ApiError:
    """610: the URI does not name a resource."""
    return ApiError("610", "Requested resource not found")


def method_not_supported(method: str) -> ApiError:
    """605: the resource exists but not for this HTTP method."""
    return ApiError(
        "605", f"HTTP Method not supported: {method} is not supported for this endpoint"
    )


def blank(name: str) -> ApiError:
    """701: a required parameter is missing or empty."""
    return ApiError("701", f"'{name}' cannot be blank")


def invalid_parameter(message: str) -> ApiError:
    """1003: the request is well formed but its values are not acceptable."""
    return ApiError("1003", message)
