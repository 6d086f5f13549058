"""``POST $batch``: OData 4.0 multipart/mixed batches with change sets (spec §6).

Requests run in order; each request outside a change set commits on its own. A change set runs
inside one transaction: when any of its operations fails, everything it did is rolled back and
the change set is answered by that single error response. ``$<Content-ID>`` references name rows
created earlier in the same change set (in URLs and ``@odata.bind`` values). Without
``Prefer: odata.continue-on-error`` processing stops at the first failure (top-level 400);
with it, every request is answered and the batch is ``200``. Line endings may be CRLF or LF.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING

from crmsync.dataverse_codes import INVALID_ARGUMENT
from crmsync.emulator.config import EmulatorUser
from crmsync.emulator.context import ApiResponse
from crmsync.emulator.errors import EmulatorFault, bad_request
from crmsync.emulator.odata import parse_prefer

MAX_REQUESTS = 1000
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_SERVICE_ROOT = re.compile(r"^(?:[a-z]+://[^/]+)?/?api/data/v9\.[0-2]/", re.IGNORECASE)

if TYPE_CHECKING:  # avoids an import cycle with app.py
    from crmsync.emulator.app import DataPlane


@dataclass(slots=True)
class InnerRequest:
    """One operation of a batch."""

    method: str
    url: str
    headers: dict[str, str]
    prefer: list[str]
    body: bytes
    content_id: str | None


@dataclass(slots=True)
class ChangeSet:
    """Operations that succeed or fail together."""

    requests: list[InnerRequest] = field(default_factory=list)


class _ChangeSetFailed(Exception):
    def __init__(self, response: ApiResponse, content_id: str | None) -> None:
        super().__init__("change set failed")
        self.response = response
        self.content_id = content_id


def _boundary(content_type: str) -> str:
    match = _BOUNDARY.search(content_type)
    if match is None or not content_type.lower().startswith("multipart/mixed"):
        raise bad_request(
            INVALID_ARGUMENT,
            "The batch request must have a Content-Type of multipart/mixed with a boundary.",
        )
    return match.group(1).strip()


def _split_parts(body: bytes, boundary: str) -> list[bytes]:
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise bad_request(INVALID_ARGUMENT, "The batch body contains no parts.")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk.lstrip(b"\r\n").removesuffix(b"\n").removesuffix(b"\r"))
    return parts


def _head_and_body(data: bytes) -> tuple[list[str], bytes]:
    """Split at the first blank line (CRLF or LF line endings)."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        index, width = crlf, 4
    elif lf >= 0:
        index, width = lf, 2
    else:
        return data.decode("utf-8", errors="replace").splitlines(), b""
    return data[:index].decode("utf-8", errors="replace").splitlines(), data[index + width :]


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return headers


def _inner(part: bytes, part_headers: Mapping[str, str]) -> InnerRequest:
    head, body = _head_and_body(part)
    if not head:
        raise bad_request(INVALID_ARGUMENT, "A batch part has no request line.")
    words = head[0].split()
    if len(words) < 2:
        raise bad_request(INVALID_ARGUMENT, f"The batch request line '{head[0]}' is not valid.")
    headers = _headers(head[1:])
    prefer = [headers["prefer"]] if "prefer" in headers else []
    return InnerRequest(
        method=words[0].upper(),
        url=words[1],
        headers=headers,
        prefer=prefer,
        body=body.rstrip(b"\r\n"),
        content_id=part_headers.get("content-id"),
    )


def parse_batch(content_type: str, body: bytes) -> list[InnerRequest | ChangeSet]:
    """The operations of a batch body, change sets kept together."""
    items: list[InnerRequest | ChangeSet] = []
    for part in _split_parts(body, _boundary(content_type)):
        head, rest = _head_and_body(part)
        part_headers = _headers(head)
        kind = part_headers.get("content-type", "")
        if kind.lower().startswith("multipart/mixed"):
            change_set = ChangeSet()
            for inner in _split_parts(rest, _boundary(kind)):
                inner_head, inner_rest = _head_and_body(inner)
                inner_request = _inner(inner_rest, _headers(inner_head))
                if inner_request.method == "GET":
                    raise bad_request(
                        INVALID_ARGUMENT, "GET requests are not allowed inside a change set."
                    )
                change_set.requests.append(inner_request)
            items.append(change_set)
        else:
            items.append(_inner(rest, part_headers))
    total = sum(len(i.requests) if isinstance(i, ChangeSet) else 1 for i in items)
    if total > MAX_REQUESTS:
        raise bad_request(
            INVALID_ARGUMENT,
            f"The number of requests in the batch ({total}) exceeds the maximum of {MAX_REQUESTS}.",
        )
    return items


def _path_and_query(url: str) -> tuple[str, str]:
    path, _, query = url.partition("?")
    return _SERVICE_ROOT.sub("", path).lstrip("/"), query


def _serialise(response: ApiResponse, content_id: str | None) -> bytes:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    lines += ["", f"HTTP/1.1 {response.status} {phrase}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + response.body


def _multipart(boundary: str, parts: list[bytes]) -> bytes:
    delimiter = f"--{boundary}\r\n".encode()
    return b"".join(delimiter + part + b"\r\n" for part in parts) + f"--{boundary}--\r\n".encode()


def run_batch(
    plane: DataPlane,
    *,
    user: EmulatorUser,
    base_url: str,
    headers: Mapping[str, str],
    prefer: list[str],
    body: bytes,
) -> ApiResponse:
    """Execute a ``$batch`` request and build the multipart answer."""
    try:
        continue_on_error = parse_prefer(prefer).continue_on_error
        items = parse_batch(headers.get("content-type", ""), body)
    except EmulatorFault as fault:
        return plane.error_response(fault, details=False)
    parts: list[bytes] = []
    failed = False
    storage = plane.storage

    def run(request: InnerRequest, content_ids: dict[str, str] | None) -> ApiResponse:
        path, query = _path_and_query(request.url)
        return plane.handle(
            method=request.method,
            path=path,
            query_string=query,
            headers=request.headers,
            prefer=request.prefer,
            body=request.body,
            user=user,
            base_url=base_url,
            content_ids=content_ids,
        )

    # One transaction for the whole batch; every request outside a change set runs in its own
    # savepoint, so a failed request undoes only itself, exactly as separate commits would.
    with storage.lock, storage.transaction():
        for item in items:
            if isinstance(item, InnerRequest):
                response = run(item, None)
                parts.append(_serialise(response, item.content_id))
                failed = response.status >= 400
            else:
                content_ids: dict[str, str] = {}
                answers: list[tuple[ApiResponse, str | None]] = []
                try:
                    with storage.transaction():
                        for request in item.requests:
                            response = run(request, content_ids)
                            if response.status >= 400:
                                raise _ChangeSetFailed(response, request.content_id)
                            if request.content_id and response.entity_ref:
                                content_ids[f"${request.content_id}"] = response.entity_ref
                            answers.append((response, request.content_id))
                except _ChangeSetFailed as failure:
                    parts.append(_serialise(failure.response, failure.content_id))
                    failed = True
                else:
                    boundary = f"changesetresponse_{uuid.uuid4()}"
                    nested = _multipart(boundary, [_serialise(r, cid) for r, cid in answers])
                    parts.append(
                        f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n".encode()
                        + nested
                    )
                    failed = False
            if failed and not continue_on_error:
                break
    boundary = f"batchresponse_{uuid.uuid4()}"
    status = 400 if failed and not continue_on_error else 200
    return ApiResponse(
        status,
        [("Content-Type", f"multipart/mixed; boundary={boundary}"), ("OData-Version", "4.0")],
        _multipart(boundary, parts),
    )
