"""The one table of Dataverse error codes, shared by the client, the converter and the emulator.

Dataverse answers a failed request with ``{"error": {"code": "0x8004...", "message": ...}}``;
the code is a hex ``HRESULT`` (some SQL errors arrive as the same number in decimal). Every code
crmsync reacts to, checks values against, or answers with is named here once, with the name and
HTTP status Microsoft documents (spec dataverse-webapi.md §7, §8, §10).

This module imports nothing, so that the emulator, which sits beside the product and imports
nothing else of it, can share it. Codes are compared case-insensitively: live orgs spell the
same code both ways (``0x80048d19``, ``0x8004F502``); use :func:`same_code` or
:func:`normalised` rather than ``==`` on codes read from the wire.
"""

from __future__ import annotations

# --- Validation of values and payloads (HTTP 400, §10) ---------------------------------------
STRING_TOO_LONG = "0x80044331"  # StringLengthTooLong
INTEGER_OUT_OF_RANGE = "0x8004432F"  # IntegerValueOutOfRange
# Money/decimal/double out of range. Not in the spec: the name MoneyValueOutOfRange and this
# code are our best reading of Microsoft's published error list; clients key on the status.
NUMBER_OUT_OF_RANGE = "0x80044330"
PICKLIST_OUT_OF_RANGE = "0x8004431A"  # PicklistValueOutOfRange
INVALID_CHARACTERS = "0x80040278"  # InvalidCharactersInField
INVALID_DATETIME = "0x80040239"  # InvalidDateTime (minimum 1753-01-01)
PAYLOAD_ERROR = "0x80048d19"  # ODataClientPayloadError: unknown property, bad JSON body
INVALID_ARGUMENT = "0x80040203"  # InvalidArgument
UNEXPECTED = "0x80040216"  # "An unexpected error occurred." (400 or 500)
PLUGIN_ABORTED = "0x80040265"  # a plug-in refused the operation
ODATA_URI_ERROR = "0x80060888"  # the OData URL parser: unknown property, unsupported option
RESOURCE_NOT_FOUND = "0x8006088a"  # a URL segment that names nothing (404)

# --- Records ---------------------------------------------------------------------------------
OBJECT_DOES_NOT_EXIST = "0x80040217"  # 404 ObjectDoesNotExist
DUPLICATE_RECORD = "0x80040237"  # 412 DuplicateRecord: create with an existing id
DUPLICATE_DETECTED = "0x80040333"  # 500 DuplicateRecordsFound (duplicate-detection rule hit)
CONCURRENCY_MISMATCH = "0x80060882"  # 412 ConcurrencyVersionMismatch (ETag)
EXPIRED_VERSION_STAMP = "0x80044352"  # ExpiredVersionStamp: delta token too old, full sync
DUPLICATE_ENTITY_KEY = "0x80060892"  # 412 (assumed, §13) DuplicateRecordEntityKey: alternate key
# A delete refused by a relationship whose CascadeConfiguration.Delete is Restrict. Not in the
# spec: the name CannotDeleteDueToAssociation and this code are our reading of Microsoft's list.
CANNOT_DELETE_DUE_TO_ASSOCIATION = "0x80040227"

# --- Transient server-side failures: retry with backoff ---------------------------------------
LOCK_NOT_OBTAINED = "0x80044339"  # CouldNotObtainLockOnResource
SQL_DEADLOCK = "0x80044150"  # SQL error 1205; sent in decimal as -2147204784
SQL_TIMEOUT = "0x80044151"  # SQL timeout; sent in decimal as -2147204783
SQL_DEADLOCK_DECIMAL = "-2147204784"
SQL_TIMEOUT_DECIMAL = "-2147204783"

# --- Privileges and field security (HTTP 403) ------------------------------------------------
PRIVILEGE_DENIED = "0x80040220"  # PrivilegeDenied (e.g. prvCreateLead)
PRINCIPAL_PRIVILEGE_DENIED = "0x80040231"  # PrincipalPrivilegeDenied (target user or team)
ACCESS_DENIED = "0x80048405"  # AccessDenied "Access is denied."
SECURED_CREATE = "0x8004F502"  # AttributePrivilegeCreateIsMissing
SECURED_QUERY = "0x8004F506"  # QueryContainedSecuredAttributeWithoutAccess
SECURED_UPDATE = "0x8004F507"  # AttributePermissionUpdateIsMissingDuringUpdate

# --- Authentication (HTTP 401) ----------------------------------------------------------------
ACCESS_TOKEN_EXPIRED = "0x8005F101"  # noqa: S105 - AccessTokenExpired, a code
INVALID_AUTH_TICKET = "0x8004A100"  # InvalidAuthTicket

# --- Service protection limits (HTTP 429 with Retry-After, §8) ---------------------------------
THROTTLED_REQUESTS = "0x80072322"  # number of requests per 300 s
THROTTLED_EXECUTION_TIME = "0x80072321"  # combined execution time per 300 s
THROTTLED_CONCURRENCY = "0x80072326"  # concurrent requests


# The ``@Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode`` annotation of most error bodies
# (0x80131500, .NET's generic exception, in decimal).
GENERIC_SUB_ERROR = "-2146233088"


def normalised(code: str) -> str:
    """The code as crmsync compares it: lower case, surrounding blanks removed."""
    return code.strip().lower()


def same_code(left: str | None, right: str) -> bool:
    """True when ``left`` (as read from the wire, maybe ``None``) is the code ``right``."""
    return left is not None and normalised(left) == normalised(right)


def _group(*codes: str) -> frozenset[str]:
    return frozenset(normalised(code) for code in codes)


# Groups the client decides on; members are normalised (compare with ``normalised(code)``).
THROTTLE_CODES = _group(THROTTLED_REQUESTS, THROTTLED_EXECUTION_TIME, THROTTLED_CONCURRENCY)
FIELD_SECURITY_CODES = _group(SECURED_CREATE, SECURED_QUERY, SECURED_UPDATE)
# The sync user lacks a table privilege: every write of that kind to that table fails the same
# way until an administrator grants it again (a setup problem, not a bad record).
PRIVILEGE_CODES = _group(PRIVILEGE_DENIED, PRINCIPAL_PRIVILEGE_DENIED, ACCESS_DENIED)
SQL_TRANSIENT_CODES = _group(SQL_DEADLOCK, SQL_TIMEOUT, SQL_DEADLOCK_DECIMAL, SQL_TIMEOUT_DECIMAL)
