"""The emulator's own error types and the documented Dataverse error body (spec §7).

An error answer is raised as an :class:`EmulatorFault` carrying the HTTP ``status`` and the
Dataverse hex ``code`` (named in :mod:`crmsync.dataverse_codes`, the one table of codes, which
is all the emulator imports of the product); :func:`error_payload` turns one into
``{"error": {"code": ..., "message": ...}}``, adding the ``Microsoft.PowerApps.CDS`` detail
annotations when the request asked for them with ``Prefer: odata.include-annotations``.
A bad configuration raises :class:`EmulatorConfigError`.
"""

from __future__ import annotations

from typing import Any

from crmsync.dataverse_codes import (
    CANNOT_DELETE_DUE_TO_ASSOCIATION,
    CONCURRENCY_MISMATCH,
    DUPLICATE_RECORD,
    GENERIC_SUB_ERROR,
    INVALID_ARGUMENT,
    OBJECT_DOES_NOT_EXIST,
    ODATA_URI_ERROR,
    PLUGIN_ABORTED,
    RESOURCE_NOT_FOUND,
    same_code,
)
from crmsync.emulator.jsontext import loads_strict


class EmulatorFault(Exception):
    """An error answer of the emulator: the HTTP ``status``, the Dataverse ``code`` and message.

    Raised anywhere below the request handler and rendered once, by :func:`error_payload`,
    into the documented error body. ``entity`` and ``record_id`` name the row when there is one.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        entity: str | None = None,
        record_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.entity = entity
        self.record_id = record_id

    def __repr__(self) -> str:
        return f"EmulatorFault({self.status}, {self.code!r}, {self.message!r})"


class EmulatorConfigError(Exception):
    """The emulator's configuration (file, knobs, TLS files) is missing or invalid.

    The message names the file or key at fault; the command that started the emulator shows it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_HELP_LINK = "http://go.microsoft.com/fwlink/?LinkID=398563&error=Microsoft.Crm.CrmException%3a{code}&client=platform"


def bad_request(code: str, message: str) -> EmulatorFault:
    """A 400 for a malformed request (URL, query option, payload shape)."""
    return EmulatorFault(400, code, message)


def json_object(body: bytes, subject: str, *, plural: bool = False) -> dict[str, Any]:
    """Parse a request body that must be a JSON object (an empty body is ``{}``).

    Anything else is a 400 ``INVALID_ARGUMENT`` naming ``subject`` ("The body", "The
    QualifyLead parameters" with ``plural``).
    """
    verb = "are" if plural else "is"
    try:
        payload = loads_strict(body or b"{}")
    except ValueError:
        raise bad_request(INVALID_ARGUMENT, f"{subject} {verb} not valid JSON.") from None
    if not isinstance(payload, dict):
        raise bad_request(INVALID_ARGUMENT, f"{subject} must be a JSON object.")
    return payload


def no_property(name: str, type_name: str) -> EmulatorFault:
    """ODataLib's 400 for a property the type does not declare."""
    return bad_request(
        ODATA_URI_ERROR,
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{type_name}'.",
    )


def invalid(code: str, message: str, *, entity: str | None = None) -> EmulatorFault:
    """A 400 validation error (length, range, option value, date, characters, plug-in)."""
    return EmulatorFault(400, code, message, entity=entity)


def not_found(entity: str, record_id: str) -> EmulatorFault:
    """404 ObjectDoesNotExist with the message live orgs send."""
    return EmulatorFault(
        404,
        OBJECT_DOES_NOT_EXIST,
        f"{entity} With Id = {record_id} Does Not Exist",
        entity=entity,
        record_id=record_id,
    )


def segment_not_found(segment: str) -> EmulatorFault:
    """404 for a URL segment that names nothing (unknown entity set, property, action)."""
    return EmulatorFault(
        404, RESOURCE_NOT_FOUND, f"Resource not found for the segment '{segment}'."
    )


def precondition_failed(message: str, code: str = CONCURRENCY_MISMATCH) -> EmulatorFault:
    """412: ETag mismatch (ConcurrencyVersionMismatch) or an existing key (DuplicateRecord)."""
    return EmulatorFault(412, code, message)


def version_mismatch() -> EmulatorFault:
    """412 ConcurrencyVersionMismatch with the documented message."""
    return precondition_failed(
        "The version of the existing record doesn't match the RowVersion property provided."
    )


def duplicate_record() -> EmulatorFault:
    """412 DuplicateRecord: a create found a row with the same key."""
    return precondition_failed(
        "A record with matching key values already exists.", DUPLICATE_RECORD
    )


def forbidden(code: str, message: str) -> EmulatorFault:
    """403 with a privilege or field-security code."""
    return EmulatorFault(403, code, message)


def method_not_allowed(message: str) -> EmulatorFault:
    """405 for a method the resource does not support."""
    # Where the docs are silent: the code of a 405 is not documented; ODataLib's URI error
    # is the code the OData layer gives for a request it cannot route.
    return EmulatorFault(405, ODATA_URI_ERROR, message)


def server_error(code: str, message: str) -> EmulatorFault:
    """A 5xx with a Dataverse code (duplicate detection is documented as 500)."""
    return EmulatorFault(500, code, message)


def error_payload(fault: EmulatorFault, *, details: bool) -> dict[str, Any]:
    """The documented error body; ``details`` adds the CDS error-detail annotations."""
    code = fault.code
    body: dict[str, Any] = {"code": code, "message": fault.message}
    if details:
        hex_code = code[2:] if code.startswith("0x") else code
        body["@Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus"] = "0"
        body["@Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode"] = GENERIC_SUB_ERROR
        body["@Microsoft.PowerApps.CDS.HelpLink"] = _HELP_LINK.format(code=hex_code)
        if same_code(code, PLUGIN_ABORTED):
            body["@Microsoft.PowerApps.CDS.TraceText"] = (
                f"[crmsync.emulator: plug-in rule]\r\n{fault.message}"
            )
        body["@Microsoft.PowerApps.CDS.InnerError.Message"] = fault.message
    return {"error": body}


def delete_restricted(entity: str, record_id: str, related: str) -> EmulatorFault:
    """400: a relationship with ``CascadeConfiguration.Delete = Restrict`` has related rows."""
    return EmulatorFault(
        400,
        CANNOT_DELETE_DUE_TO_ASSOCIATION,
        "The object you tried to delete is associated with another object and cannot be "
        f"deleted. ({entity} {record_id} has related {related} rows.)",
        entity=entity,
        record_id=record_id,
    )
