"""The documented Dataverse error body and the error codes the emulator answers with (spec §7).

Errors are raised as the project's own exceptions (:mod:`crmsync.errors`) carrying the HTTP
``status`` and Dataverse hex ``code``; :func:`error_payload` turns one into
``{"error": {"code": ..., "message": ...}}``, adding the ``Microsoft.PowerApps.CDS`` detail
annotations when the request asked for them with ``Prefer: odata.include-annotations``.
"""

from __future__ import annotations

import json
from typing import Any

from crmsync.errors import (
    CrmsyncError,
    InputError,
    PermissionDeniedError,
    PreconditionFailedError,
    RecordNotFoundError,
    ValidationFailedError,
)

STRING_TOO_LONG = "0x80044331"
INTEGER_OUT_OF_RANGE = "0x8004432F"
# Not in our notes: the name MoneyValueOutOfRange and this code are our best reading of the
# published error list; clients key on the HTTP status first.
NUMBER_OUT_OF_RANGE = "0x80044330"
PICKLIST_OUT_OF_RANGE = "0x8004431A"
INVALID_CHARACTERS = "0x80040278"
INVALID_DATETIME = "0x80040239"
PAYLOAD_ERROR = "0x80048d19"
INVALID_ARGUMENT = "0x80040203"
UNEXPECTED = "0x80040216"
NOT_FOUND = "0x80040217"
PRIVILEGE_DENIED = "0x80040220"
SECURED_CREATE = "0x8004F502"
SECURED_UPDATE = "0x8004F507"
SECURED_QUERY = "0x8004F506"
DUPLICATE_DETECTED = "0x80040333"
DUPLICATE_RECORD = "0x80040237"
CONCURRENCY_MISMATCH = "0x80060882"
EXPIRED_VERSION_STAMP = "0x80044352"
PLUGIN_ERROR = "0x80040265"
ODATA_URI_ERROR = "0x80060888"
RESOURCE_NOT_FOUND = "0x8006088a"
METHOD_NOT_ALLOWED = "0x80060888"
BATCH_CONTENT_ID = "0x80048d19"

_HELP_LINK = "http://go.microsoft.com/fwlink/?LinkID=398563&error=Microsoft.Crm.CrmException%3a{code}&client=platform"


def bad_request(code: str, message: str) -> InputError:
    """A 400 for a malformed request (URL, query option, payload shape)."""
    return InputError(message, status=400, code=code)


def json_object(body: bytes, subject: str, *, plural: bool = False) -> dict[str, Any]:
    """Parse a request body that must be a JSON object (an empty body is ``{}``).

    Anything else is a 400 ``INVALID_ARGUMENT`` naming ``subject`` ("The body", "The
    QualifyLead parameters" with ``plural``).
    """
    verb = "are" if plural else "is"
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise bad_request(INVALID_ARGUMENT, f"{subject} {verb} not valid JSON.") from None
    if not isinstance(payload, dict):
        raise bad_request(INVALID_ARGUMENT, f"{subject} must be a JSON object.")
    return payload


def no_property(name: str, type_name: str) -> InputError:
    """ODataLib's 400 for a property the type does not declare."""
    return bad_request(
        ODATA_URI_ERROR,
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{type_name}'.",
    )


def invalid(code: str, message: str, *, entity: str | None = None) -> ValidationFailedError:
    """A 400 validation error (length, range, option value, date, characters, plug-in)."""
    return ValidationFailedError(message, status=400, code=code, entity=entity)


def not_found(entity: str, record_id: str) -> RecordNotFoundError:
    """404 ObjectDoesNotExist with the message live orgs send."""
    return RecordNotFoundError(
        f"{entity} With Id = {record_id} Does Not Exist",
        status=404,
        code=NOT_FOUND,
        entity=entity,
        record_id=record_id,
    )


def segment_not_found(segment: str) -> RecordNotFoundError:
    """404 for a URL segment that names nothing (unknown entity set, property, action)."""
    return RecordNotFoundError(
        f"Resource not found for the segment '{segment}'.", status=404, code=RESOURCE_NOT_FOUND
    )


def precondition_failed(message: str, code: str = CONCURRENCY_MISMATCH) -> PreconditionFailedError:
    """412: ETag mismatch (ConcurrencyVersionMismatch) or an existing key (DuplicateRecord)."""
    return PreconditionFailedError(message, status=412, code=code)


def version_mismatch() -> PreconditionFailedError:
    """412 ConcurrencyVersionMismatch with the documented message."""
    return precondition_failed(
        "The version of the existing record doesn't match the RowVersion property provided."
    )


def duplicate_record() -> PreconditionFailedError:
    """412 DuplicateRecord: a create found a row with the same key."""
    return precondition_failed(
        "A record with matching key values already exists.", DUPLICATE_RECORD
    )


def forbidden(code: str, message: str) -> PermissionDeniedError:
    """403 with a privilege or field-security code."""
    return PermissionDeniedError(message, status=403, code=code)


def method_not_allowed(message: str) -> CrmsyncError:
    """405 for a method the resource does not support."""
    return CrmsyncError(message, status=405, code=METHOD_NOT_ALLOWED)


def server_error(code: str, message: str) -> CrmsyncError:
    """A 5xx with a Dataverse code (duplicate detection is documented as 500)."""
    return CrmsyncError(message, status=500, code=code)


def error_payload(error: CrmsyncError, *, details: bool) -> dict[str, Any]:
    """The documented error body; ``details`` adds the CDS error-detail annotations."""
    code = error.code or ""
    body: dict[str, Any] = {"code": code, "message": error.message}
    if details:
        hex_code = code[2:] if code.startswith("0x") else code
        body["@Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus"] = "0"
        body["@Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode"] = "-2146233088"
        body["@Microsoft.PowerApps.CDS.HelpLink"] = _HELP_LINK.format(code=hex_code)
        if code == PLUGIN_ERROR:
            body["@Microsoft.PowerApps.CDS.TraceText"] = (
                f"[crmsync.emulator: plug-in rule]\r\n{error.message}"
            )
        body["@Microsoft.PowerApps.CDS.InnerError.Message"] = error.message
    return {"error": body}
