"""``$batch`` writes: encode :class:`WriteRequest` values as multipart parts, parse the answer.

Spec §6: OData 4.0 ``multipart/mixed`` only; up to 1,000 requests per batch, run in order;
``Prefer: odata.continue-on-error`` makes every request get its own response part, so each part
is parsed into its own :class:`WriteResult` (a 200 for the batch says nothing about the items).
The response boundary differs from the request's and is read from the response Content-Type.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crmsync.dataverse_codes import (
    DUPLICATE_RECORD,
    PAYLOAD_ERROR,
    THROTTLE_CODES,
    normalised,
    same_code,
)
from crmsync.dynamics.classify import (
    Action,
    DataverseError,
    classify_status,
    parse_error_body,
    unknown_property_of,
)
from crmsync.dynamics.query import LOOKUP_TYPES, WELL_KNOWN_LOOKUPS, entity_id_from_url
from crmsync.dynamics.retry import parse_retry_after
from crmsync.dynamics.types import (
    AttributeType,
    CrmValue,
    EntitySchema,
    LookupValue,
    WriteKind,
    WriteRequest,
    WriteResult,
    WriteStatus,
)

MAX_BATCH_SIZE = 1000
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # stateless; reused
WELL_KNOWN_CUSTOMER_LOOKUPS = frozenset({"customerid", "parentcustomerid"})


@dataclass(frozen=True, slots=True)
class Target:
    """Where a write goes: the table's entity set and primary key, and its schema if known."""

    entity_set: str
    primary_id: str
    schema: EntitySchema | None = None


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """One request ready to be placed in a batch (or sent on its own)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None


@dataclass(frozen=True, slots=True)
class PartResponse:
    """One HTTP response found inside a batch response."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    content_id: str | None = None


def _wire_value(value: CrmValue) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def encode_values(
    values: Mapping[str, CrmValue],
    target: Target,
    entity_set_of: Callable[[str], str],
) -> dict[str, Any]:
    """JSON body for create/update: lookups become ``@odata.bind`` (spec §2d)."""
    body: dict[str, Any] = {}
    schema = target.schema
    for name, value in values.items():
        attribute = schema.attributes.get(name) if schema is not None else None
        is_lookup = isinstance(value, LookupValue) or (
            attribute is not None and attribute.type in LOOKUP_TYPES
        )
        if not is_lookup:
            body[name] = _wire_value(value)
            continue
        is_customer = (
            attribute.type is AttributeType.CUSTOMER
            if attribute is not None
            else name in WELL_KNOWN_CUSTOMER_LOOKUPS
        )
        if isinstance(value, LookupValue):
            navigation = f"{name}_{value.entity}" if is_customer else name
            body[f"{navigation}@odata.bind"] = f"/{entity_set_of(value.entity)}({value.id})"
        elif is_customer:
            targets = attribute.targets if attribute is not None else ("account", "contact")
            for entity in targets:
                body[f"{name}_{entity}@odata.bind"] = None
        else:
            body[f"{name}@odata.bind"] = None
    return body


def _is_single_valued(navigation: str, target: Target) -> bool:
    """Whether a navigation property is a lookup's (``parentaccountid``, ``customerid_account``)."""
    schema = target.schema
    if schema is not None:
        for attribute in schema.attributes.values():
            if attribute.type not in LOOKUP_TYPES:
                continue
            name = attribute.logical_name
            if navigation == name or navigation in {f"{name}_{t}" for t in attribute.targets}:
                return True
        return False
    base = navigation.rsplit("_", 1)[0] if "_" in navigation else navigation
    return navigation in WELL_KNOWN_LOOKUPS or base in WELL_KNOWN_CUSTOMER_LOOKUPS


def encode_request(
    request: WriteRequest,
    target: Target,
    service_root: str,
    entity_set_of: Callable[[str], str],
) -> EncodedRequest:
    """The HTTP request one :class:`WriteRequest` becomes (spec §5, §2d)."""
    record = f"{service_root}{target.entity_set}({request.record_id})"
    json_headers = {"Content-Type": "application/json; type=entry"}
    represent = f"?$select={target.primary_id}"

    def body_of(payload: Mapping[str, Any]) -> bytes:
        return _JSON.encode(payload).encode("utf-8")

    kind = request.kind
    # Per-request Dataverse headers (e.g. MSCRM.SuppressDuplicateDetection: false, spec §7).
    json_headers.update(
        {k: str(v).lower() for k, v in request.options.items() if k.startswith("MSCRM.")}
    )
    if kind is WriteKind.CREATE:
        payload = encode_values(request.values, target, entity_set_of)
        payload[target.primary_id] = request.record_id
        headers = {**json_headers, "Prefer": "return=representation"}
        url = f"{service_root}{target.entity_set}{represent}"
        return EncodedRequest("POST", url, headers, body_of(payload))
    if kind in (WriteKind.UPDATE, WriteKind.UPSERT):
        payload = encode_values(request.values, target, entity_set_of)
        headers = {**json_headers, "Prefer": "return=representation"}
        if kind is WriteKind.UPDATE:
            headers["If-Match"] = request.etag or "*"
        return EncodedRequest("PATCH", record + represent, headers, body_of(payload))
    if kind is WriteKind.DELETE:
        headers = {"If-Match": request.etag} if request.etag else {}
        return EncodedRequest("DELETE", record, headers, None)
    if kind in (WriteKind.ASSOCIATE, WriteKind.DISASSOCIATE):
        if not request.relationship:
            raise ValueError(f"{kind.value} needs a relationship (navigation property)")
        navigation = f"{record}/{request.relationship}"
        if kind is WriteKind.ASSOCIATE:
            if request.target is None:
                raise ValueError("associate needs a target record")
            related = request.target
            reference = {
                "@odata.id": f"{service_root}{entity_set_of(related.entity)}({related.id})"
            }
            # Single-valued navigation properties (lookups) are set with PUT, collection-valued
            # ones (N:N, 1:N) get a member added with POST (spec §2d, §6 "PUT $1/.../$ref").
            method = "PUT" if _is_single_valued(request.relationship, target) else "POST"
            return EncodedRequest(method, f"{navigation}/$ref", json_headers, body_of(reference))
        if request.target is not None and not _is_single_valued(request.relationship, target):
            return EncodedRequest("DELETE", f"{navigation}({request.target.id})/$ref", {}, None)
        return EncodedRequest("DELETE", f"{navigation}/$ref", {}, None)
    if kind is WriteKind.QUALIFY_LEAD:
        payload = {name: _wire_value(value) for name, value in request.options.items()}
        return EncodedRequest(
            "POST",
            f"{record}/Microsoft.Dynamics.CRM.QualifyLead",
            {"Content-Type": "application/json"},
            body_of(payload),
        )
    raise ValueError(f"unsupported write kind {kind!r}")


def encode_batch(requests: Sequence[EncodedRequest]) -> tuple[str, bytes]:
    """Build a ``$batch`` body (CRLF line endings); returns ``(boundary, body)``."""
    boundary = f"batch_{uuid.uuid4()}"
    lines: list[bytes] = []
    for number, request in enumerate(requests, start=1):
        lines.append(f"--{boundary}".encode())
        lines.append(b"Content-Type: application/http")
        lines.append(b"Content-Transfer-Encoding: binary")
        lines.append(f"Content-ID: {number}".encode())
        lines.append(b"")
        lines.append(f"{request.method} {request.url} HTTP/1.1".encode())
        for name, value in request.headers.items():
            lines.append(f"{name}: {value}".encode())
        lines.append(b"")
        lines.append(request.body or b"")
    lines.append(f"--{boundary}--".encode())
    lines.append(b"")
    return boundary, b"\r\n".join(lines)


def boundary_of(content_type: str) -> str | None:
    """The ``boundary`` parameter of a multipart Content-Type header."""
    for piece in content_type.split(";")[1:]:
        name, _, value = piece.strip().partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"')
    return None


def _split_head(block: bytes) -> tuple[list[str], bytes]:
    """Split header lines from the body at the first blank line (CRLF or LF)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = block.find(separator)
        if index >= 0:
            head = block[:index].decode("utf-8", "replace")
            return head.splitlines(), block[index + len(separator) :]
    return block.decode("utf-8", "replace").splitlines(), b""


def _headers_of(lines: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers


def _trim_body(body: bytes) -> bytes:
    if body.endswith(b"\r\n"):
        return body[:-2]
    if body.endswith(b"\n"):
        return body[:-1]
    return body


def parse_batch_response(content_type: str, body: bytes) -> list[PartResponse]:
    """Every HTTP response inside a ``multipart/mixed`` batch answer, change sets flattened."""
    boundary = boundary_of(content_type)
    if not boundary:
        raise ValueError("batch response has no multipart boundary")
    delimiter = f"--{boundary}".encode()
    parts: list[PartResponse] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.lstrip(b"\r\n")
        mime_lines, rest = _split_head(chunk)
        mime = _headers_of(mime_lines)
        inner_type = mime.get("content-type", "")
        if inner_type.lower().startswith("multipart/mixed"):
            parts.extend(parse_batch_response(inner_type, rest))
            continue
        http_lines, inner_body = _split_head(rest)
        if not http_lines:
            continue
        status_words = http_lines[0].split(" ", 2)
        try:
            status = int(status_words[1])
        except (IndexError, ValueError):
            raise ValueError(f"unreadable status line in batch part: {http_lines[0]!r}") from None
        parts.append(
            PartResponse(
                status=status,
                headers=_headers_of(http_lines[1:]),
                body=_trim_body(inner_body),
                content_id=mime.get("content-id"),
            )
        )
    return parts


def _created_records(body: bytes) -> tuple[LookupValue, ...]:
    try:
        document = json.loads(body) if body.strip() else {}
    except ValueError:
        return ()
    rows = document.get("value") if isinstance(document, dict) else None
    created: list[LookupValue] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        entity = (
            str(row.get("@odata.type", ""))
            .removeprefix("#")
            .removeprefix("Microsoft.Dynamics.CRM.")
        )
        record_id = row.get(f"{entity}id")
        if entity and record_id:
            created.append(LookupValue(id=str(record_id).lower(), entity=entity))
    return tuple(created)


def result_from_part(request: WriteRequest, target: Target, part: PartResponse) -> WriteResult:
    """Turn one response part into the :class:`WriteResult` of ``request``."""
    if part.status < 400:
        etag = part.headers.get("etag")
        record_id = request.record_id
        document: Any = None
        if part.body.strip() and request.kind is not WriteKind.QUALIFY_LEAD:
            try:
                document = json.loads(part.body)
            except ValueError:
                document = None
        if isinstance(document, dict):
            etag = str(document.get("@odata.etag") or etag or "") or None
            record_id = str(document.get(target.primary_id) or record_id).lower()
        elif "odata-entityid" in part.headers:
            record_id = entity_id_from_url(part.headers["odata-entityid"]) or record_id
        created = _created_records(part.body) if request.kind is WriteKind.QUALIFY_LEAD else ()
        return WriteResult(
            request_id=request.request_id,
            entity=request.entity,
            record_id=record_id,
            status=WriteStatus.OK,
            etag=etag,
            http_status=part.status,
            created=created,
        )
    error = parse_error_body(part.body)
    retry_after = parse_retry_after(part.headers.get("retry-after"))
    return failure_result(request, part.status, error, retry_after)


def failure_result(
    request: WriteRequest,
    status: int,
    error: DataverseError,
    retry_after: float | None,
) -> WriteResult:
    """The :class:`WriteResult` of a write Dynamics refused (spec §7)."""
    resolution = classify_status(
        status, error, retry_after, entity=request.entity, record_id=request.record_id
    )
    code = normalised(error.code)
    if status == 429 or code in THROTTLE_CODES:
        outcome = WriteStatus.THROTTLED
    elif resolution.action is Action.RETRY:
        outcome = WriteStatus.TRANSIENT
    elif status == 412:
        outcome = WriteStatus.PRECONDITION_FAILED
    elif status == 404:
        outcome = WriteStatus.NOT_FOUND
    elif status == 403:
        outcome = WriteStatus.PERMISSION_DENIED
    elif same_code(code, PAYLOAD_ERROR) or (
        status == 400 and unknown_property_of(error.message) is not None
    ):
        outcome = WriteStatus.UNKNOWN_ATTRIBUTE
    else:
        outcome = WriteStatus.VALIDATION_ERROR
    return WriteResult(
        request_id=request.request_id,
        entity=request.entity,
        record_id=request.record_id,
        status=outcome,
        http_status=status,
        error_code=error.code or None,
        message=error.message or None,
        retry_after=resolution.retry_after,
    )


def is_duplicate_create(request: WriteRequest, result: WriteResult) -> bool:
    """A create refused because a record with its primary key exists (spec §7: 412 0x80040237)."""
    if request.kind is not WriteKind.CREATE:
        return False
    return result.http_status == 412 or same_code(result.error_code, DUPLICATE_RECORD)
