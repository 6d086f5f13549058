"""Per-record results of bulk marketing operations, with Marketo's reason codes (spec §3)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a record was skipped: a Marketo record-level code (``"1004"``) and its message.

    The one reason type: services return it, and the Marketo API writes it as it is
    (``{"code": "1004", "message": "Lead not found"}``).
    """

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """The result for one input record, in input order.

    ``status`` is ``created``, ``updated``, ``deleted``, ``skipped`` (with ``reasons``) or, for
    list operations, ``added``, ``removed``, ``memberof`` and ``notmemberof``.
    """

    status: str
    id: int | None
    reasons: tuple[Reason, ...] = ()


def skipped(code: str, message: str, record_id: int | None = None) -> RecordOutcome:
    """A skipped outcome with one reason."""
    return RecordOutcome("skipped", record_id, (Reason(code, message),))


INVALID_VALUE = "1001"
INVALID_DATA = "1003"
LEAD_NOT_FOUND = "1004"
LEAD_EXISTS = "1005"
FIELD_NOT_FOUND = "1006"
MULTIPLE_MATCHES = "1007"
FIELD_NOT_SUPPORTED = "1011"
OBJECT_NOT_FOUND = "1013"
LEAD_NOT_IN_LIST = "1015"
