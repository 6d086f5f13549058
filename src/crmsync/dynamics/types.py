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


@dataclass(frozen=True, slots=True)
class ChangePage:
    """One page of a change-tracking read (spec §4), the one shape every reader hands out.

    ``next_link`` is set on every page but the last; only the last carries ``delta_link``,
    where the next read of the entity starts. A caller must not store the delta link before
    it has kept every item before it.
    """

    entity: str
    items: tuple[CrmChange | CrmDelete, ...]
    next_link: str | None = None
    delta_link: str | None = None

    @property
    def last(self) -> bool:
        """Whether this is the read's last page (it carries the delta link)."""
        return self.delta_link is not None

    @property
    def cursor(self) -> DeltaCursor | None:
        """Where the next read of the entity starts, on the last page; else ``None``."""
        return DeltaCursor(self.entity, self.delta_link) if self.delta_link else None


class WriteKind(Enum):
    """What one :class:`WriteRequest` does in Dynamics."""

    CREATE = "create"  # POST with a client-chosen primary key: retries never create twice (B33)
    UPDATE = "update"  # PATCH with If-Match: the ETag read, or * (update only, never create)
    UPSERT = "upsert"  # PATCH without If-Match: create or update
    DELETE = "delete"
    ASSOCIATE = "associate"  # add a relationship ($ref)
    DISASSOCIATE = "disassociate"  # remove a relationship ($ref)
    QUALIFY_LEAD = "qualify_lead"  # the QualifyLead action


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """One write to Dynamics, built with the class methods below.

    ``entity`` is the table's logical name; ``values`` are keyed by logical column names, and a
    :class:`LookupValue` (or ``None`` for a lookup column) is sent as ``@odata.bind``.
    ``request_id`` keys the :class:`WriteResult` back to the caller (default
    ``"<kind>:<entity>:<record_id>"``).
    """

    kind: WriteKind
    entity: str
    record_id: str
    values: Mapping[str, CrmValue] = field(default_factory=dict)
    etag: str | None = None
    request_id: str = ""
    relationship: str = ""
    target: LookupValue | None = None
    options: Mapping[str, CrmValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.request_id:
            request_id = f"{self.kind.value}:{self.entity}:{self.record_id}"
            if self.relationship:
                request_id += f":{self.relationship}"
            if self.target is not None:
                request_id += f":{self.target.id}"
            object.__setattr__(self, "request_id", request_id)

    @classmethod
    def create(
        cls, entity: str, record_id: str, values: Mapping[str, CrmValue], request_id: str = ""
    ) -> WriteRequest:
        """Create a record whose primary key the caller chose (and stored) beforehand."""
        return cls(WriteKind.CREATE, entity, record_id, dict(values), request_id=request_id)

    @classmethod
    def update(
        cls,
        entity: str,
        record_id: str,
        values: Mapping[str, CrmValue],
        etag: str | None = None,
        request_id: str = "",
    ) -> WriteRequest:
        """Update an existing record, conditional on ``etag`` when given (B25)."""
        return cls(WriteKind.UPDATE, entity, record_id, dict(values), etag, request_id)

    @classmethod
    def upsert(
        cls, entity: str, record_id: str, values: Mapping[str, CrmValue], request_id: str = ""
    ) -> WriteRequest:
        """Create or update the record with this primary key."""
        return cls(WriteKind.UPSERT, entity, record_id, dict(values), request_id=request_id)

    @classmethod
    def delete(
        cls, entity: str, record_id: str, etag: str | None = None, request_id: str = ""
    ) -> WriteRequest:
        """Delete a record, conditional on ``etag`` when given."""
        return cls(WriteKind.DELETE, entity, record_id, etag=etag, request_id=request_id)

    @classmethod
    def associate(
        cls,
        entity: str,
        record_id: str,
        relationship: str,
        target: LookupValue,
        request_id: str = "",
    ) -> WriteRequest:
        """Relate ``target`` to the record through navigation property ``relationship``."""
        return cls(
            WriteKind.ASSOCIATE,
            entity,
            record_id,
            request_id=request_id,
            relationship=relationship,
            target=target,
        )

    @classmethod
    def disassociate(
        cls,
        entity: str,
        record_id: str,
        relationship: str,
        target: LookupValue | None = None,
        request_id: str = "",
    ) -> WriteRequest:
        """Remove a relationship (``target`` for collection-valued navigation properties)."""
        return cls(
            WriteKind.DISASSOCIATE,
            entity,
            record_id,
            request_id=request_id,
            relationship=relationship,
            target=target,
        )

    @classmethod
    def qualify_lead(
        cls,
        lead_id: str,
        *,
        create_contact: bool = True,
        create_account: bool = False,
        create_opportunity: bool = False,
        status: int = 3,
        request_id: str = "",
    ) -> WriteRequest:
        """Qualify a lead (statuscode ``status``, 3 = Qualified), creating the chosen records."""
        options: dict[str, CrmValue] = {
            "CreateAccount": create_account,
            "CreateContact": create_contact,
            "CreateOpportunity": create_opportunity,
            "Status": status,
        }
        return cls(WriteKind.QUALIFY_LEAD, "lead", lead_id, request_id=request_id, options=options)


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
    created: tuple[LookupValue, ...] = ()  # records an action created (QualifyLead's contact, ...)

    @property
    def ok(self) -> bool:
        """Whether the write took effect (a create that had already happened counts)."""
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
    metadata_id: str = ""  # how Dynamics names the column in its list of deleted metadata


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
    schema_name: str = ""  # e.g. "Lead": privilege names are built from it (prvReadLead)
    metadata_id: str = ""
