"""Typed values exchanged between the Dynamics client and the sync engine.

Values are plain Python: strings, ints, floats, bools, ``None``; option-set values stay integers
(labels live in :class:`AttributeSchema.options`), date-times are timezone-aware ``datetime``,
lookups are :class:`LookupValue`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


@dataclass(frozen=True, slots=True)
class LookupValue:
    """A lookup column's value: the target record id and the table it lives in."""

    id: str
    entity: str


CrmValue = str | int | float | bool | datetime | LookupValue | None


@dataclass(frozen=True, slots=True)
class CrmRecord:
    """One Dynamics row as read: its id, row version (ETag) and the selected column values."""

    entity: str
    id: str
    values: Mapping[str, CrmValue]
    etag: str | None = None
    modified_on: datetime | None = None


@dataclass(frozen=True, slots=True)
class CrmChange:
    """A created or updated row seen in a change-tracking read."""

    record: CrmRecord


@dataclass(frozen=True, slots=True)
class CrmDelete:
    """A deleted row seen in a change-tracking read (a ``$deletedEntity`` tombstone)."""

    entity: str
    id: str


@dataclass(frozen=True, slots=True)
class DeltaCursor:
    """Where the next change-tracking read of an entity starts (the delta link's token)."""

    entity: str
    delta_link: str


class WriteStatus(Enum):
    """Outcome of one write inside a batch."""

    OK = "ok"
    CREATED_ALREADY = "created_already"  # idempotent create found the record already there
    PRECONDITION_FAILED = "precondition_failed"  # If-Match mismatch: re-read and re-merge
    VALIDATION_ERROR = "validation_error"  # Dynamics rejected the values: fail this record
    NOT_FOUND = "not_found"
    PERMISSION_DENIED = "permission_denied"
    THROTTLED = "throttled"  # retry later, honouring retry_after
    TRANSIENT = "transient"  # 5xx / timeout: retry later
    UNKNOWN_ATTRIBUTE = "unknown_attribute"  # a selected column no longer exists (B14)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The result of one write, keyed back to the caller's request by ``request_id``."""

    request_id: str
    entity: str
    record_id: str | None
    status: WriteStatus
    etag: str | None = None
    http_status: int | None = None
    error_code: str | None = None
    message: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status in (WriteStatus.OK, WriteStatus.CREATED_ALREADY)


class AttributeType(Enum):
    """Dataverse AttributeTypeCode values crmsync understands."""

    STRING = "String"
    MEMO = "Memo"
    INTEGER = "Integer"
    BIGINT = "BigInt"
    DECIMAL = "Decimal"
    DOUBLE = "Double"
    MONEY = "Money"
    BOOLEAN = "Boolean"
    DATETIME = "DateTime"
    PICKLIST = "Picklist"
    STATE = "State"
    STATUS = "Status"
    LOOKUP = "Lookup"
    CUSTOMER = "Customer"
    OWNER = "Owner"
    UNIQUEIDENTIFIER = "Uniqueidentifier"
    ENTITYNAME = "EntityName"
    VIRTUAL = "Virtual"
    OTHER = "Other"


@dataclass(frozen=True, slots=True)
class AttributeSchema:
    """One column's metadata as read from ``EntityDefinitions(...)/Attributes``."""

    logical_name: str
    type: AttributeType
    display_name: str = ""
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    precision: int | None = None
    options: Mapping[int, str] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    required_level: str = "None"
    valid_for_create: bool = True
    valid_for_update: bool = True
    valid_for_read: bool = True
    is_custom: bool = False
    is_secured: bool = False
    can_read: bool = True  # the sync user may read it (field security), B8
    can_update: bool = True
    can_create: bool = True


@dataclass(frozen=True, slots=True)
class EntitySchema:
    """One table's metadata: names, change tracking and its attributes."""

    logical_name: str
    entity_set_name: str
    primary_id: str
    primary_name: str
    change_tracking: bool
    is_custom: bool
    attributes: Mapping[str, AttributeSchema]
    display_name: str = ""
