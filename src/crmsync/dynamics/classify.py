"""Errors as data: decide what to do with a Dataverse answer before raising anything.

:func:`classify` turns one HTTP response (or a transport failure) into a :class:`Resolution`:
retry it, fail this record and carry on, fail the whole cycle, or reconcile the entity because a
change-tracking token was rejected. Rules follow spec §7 (status first, hex code second, because
the documented examples often carry an empty ``code``) and §8 (429 with ``Retry-After``).
The codes are those of :mod:`crmsync.dataverse_codes`, the one table the emulator answers from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import httpx

from crmsync import dataverse_codes as codes
from crmsync.dataverse_codes import FIELD_SECURITY_CODES, SQL_TRANSIENT_CODES, THROTTLE_CODES
from crmsync.dynamics.retry import parse_retry_after
from crmsync.errors import (
    AuthenticationError,
    CrmsyncError,
    DeltaTokenExpiredError,
    PermissionDeniedError,
    PreconditionFailedError,
    RecordNotFoundError,
    RetryLaterError,
    ThrottledError,
    TransientServerError,
    UnknownFieldError,
    ValidationFailedError,
)

# A duplicate-detection rule or a plug-in refused this record: answered 500 / 400, not transient.
_REFUSED_RECORD_CODES = frozenset(
    codes.normalised(code) for code in (codes.DUPLICATE_DETECTED, codes.PLUGIN_ABORTED)
)
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# The messages Dataverse gives for a column that does not exist: in a query ($select,
# 0x80060888) and in a write payload (0x80048d19, the OData parser's inner message).
_UNKNOWN_PROPERTY = re.compile(
    r"(?:Could not find a property named|The property|An undeclared property) '([^']+)'"
)


class Action(Enum):
    """What the caller does next."""

    SUCCESS = "success"
    RETRY = "retry"  # transient: same request again after ``retry_after`` / backoff
    FAIL_RECORD = "fail_record"  # this record failed; record it and carry on (B37)
    FAIL_CYCLE = "fail_cycle"  # nothing will work until a human acts (auth, privileges)
    RECONCILE = "reconcile"  # delta token rejected: full reconciliation of the entity (B17)


@dataclass(frozen=True, slots=True)
class DataverseError:
    """The ``{"error": {"code", "message"}}`` body of a failed Dataverse request."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """The classification of one answer: the action, the pause asked for, and the error."""

    action: Action
    retry_after: float | None = None
    error: CrmsyncError | None = None


def parse_error_body(content: bytes | str) -> DataverseError:
    """Read Dataverse's JSON error body; tolerate empty or non-JSON bodies."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    try:
        document = json.loads(text) if text.strip() else {}
    except ValueError:
        return DataverseError(code="", message=text.strip()[:500])
    if isinstance(document, Mapping):
        error = document.get("error")
        if isinstance(error, Mapping):
            return DataverseError(
                code=str(error.get("code") or ""), message=str(error.get("message") or "")
            )
        if "error_description" in document:  # OAuth2 token endpoint shape
            return DataverseError(
                code=str(document.get("error") or ""),
                message=str(document.get("error_description") or ""),
            )
    return DataverseError(code="", message=text.strip()[:500])


def classify_status(
    status: int,
    error: DataverseError,
    retry_after: float | None = None,
    *,
    entity: str | None = None,
    record_id: str | None = None,
) -> Resolution:
    """Classify a status code and error body (shared by whole responses and batch parts)."""
    if status < 400:
        return Resolution(Action.SUCCESS)
    code = codes.normalised(error.code)
    message = error.message or f"Dynamics answered HTTP {status}"
    hex_code = error.code or None

    def fail(action: Action, error_type: type[CrmsyncError]) -> Resolution:
        built = error_type(
            message, entity=entity, record_id=record_id, status=status, code=hex_code
        )
        return Resolution(action, None, built)

    def retry(error_type: type[RetryLaterError]) -> Resolution:
        built = error_type(
            message,
            retry_after=retry_after,
            entity=entity,
            record_id=record_id,
            status=status,
            code=hex_code,
        )
        return Resolution(Action.RETRY, retry_after, built)

    if status == 429 or code in THROTTLE_CODES:
        return retry(ThrottledError)
    if code == codes.normalised(codes.EXPIRED_VERSION_STAMP):
        return fail(Action.RECONCILE, DeltaTokenExpiredError)
    if status == 401:
        return fail(Action.FAIL_CYCLE, AuthenticationError)
    if status == 403:
        if code in FIELD_SECURITY_CODES:
            return fail(Action.FAIL_RECORD, PermissionDeniedError)
        return fail(Action.FAIL_CYCLE, PermissionDeniedError)
    if status == 404:
        return fail(Action.FAIL_RECORD, RecordNotFoundError)
    if status == 412:
        return fail(Action.FAIL_RECORD, PreconditionFailedError)
    if status == 400 and unknown_property_of(message) is not None:
        # A selected or written column no longer exists in Dynamics (B14).
        return fail(Action.FAIL_RECORD, UnknownFieldError)
    if code in _REFUSED_RECORD_CODES:
        return fail(Action.FAIL_RECORD, ValidationFailedError)
    if (
        status in RETRYABLE_STATUSES
        or code == codes.normalised(codes.LOCK_NOT_OBTAINED)
        or code in SQL_TRANSIENT_CODES
    ):
        return retry(TransientServerError)
    return fail(Action.FAIL_RECORD, ValidationFailedError)


def classify(
    response: httpx.Response, *, entity: str | None = None, record_id: str | None = None
) -> Resolution:
    """Classify one Dataverse HTTP response: success, retry, fail record, fail cycle, reconcile."""
    if response.status_code < 400:
        return Resolution(Action.SUCCESS)
    error = parse_error_body(response.content)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return classify_status(
        response.status_code, error, retry_after, entity=entity, record_id=record_id
    )


def unknown_property_of(message: str | None) -> str | None:
    """The column named in an "unknown property" error message, if it is one (B14)."""
    match = _UNKNOWN_PROPERTY.search(message or "")
    if match is None:
        return None
    name = match.group(1)
    return name[1:-6] if name.startswith("_") and name.endswith("_value") else name


def classify_transport_error(
    exc: httpx.TransportError, *, entity: str | None = None, record_id: str | None = None
) -> Resolution:
    """Timeouts and dropped connections are transient (B38)."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
    message = f"request to Dynamics {kind}: {type(exc).__name__}"
    return Resolution(
        Action.RETRY, None, TransientServerError(message, entity=entity, record_id=record_id)
    )
