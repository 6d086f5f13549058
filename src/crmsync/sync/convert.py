"""Value conversion between Dynamics column values and marketing field values.

Dynamics values are what the client reads and writes (:data:`~crmsync.dynamics.types.CrmValue`):
option sets as integers, date-times as aware ``datetime``, lookups as
:class:`~crmsync.dynamics.types.LookupValue`. Marketing values are JSON-friendly: option sets
hold the option **label**, date-times are ISO-8601 UTC strings ending in ``Z``, lookups hold the
linked record's id, booleans stay booleans with the same polarity (``donotbulkemail`` true is
``unsubscribed`` true).

:func:`to_crm` validates against the column metadata the way Dataverse does (spec §10), so a
value Dynamics would reject fails here with a :class:`~crmsync.errors.ValidationFailedError`
whose ``code`` is the Dynamics error code it would have returned; nothing is truncated or
guessed. For every valid Dynamics value ``v``, ``to_crm(attr, to_marketing(attr, v)) == v``.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from numbers import Real
from typing import Protocol

from crmsync.dataverse_codes import (
    INTEGER_OUT_OF_RANGE,
    INVALID_CHARACTERS,
    NUMBER_OUT_OF_RANGE,
    PICKLIST_OUT_OF_RANGE,
    STRING_TOO_LONG,
)
from crmsync.dynamics.query import is_utc_text
from crmsync.dynamics.types import AttributeSchema, AttributeType, CrmValue, LookupValue
from crmsync.errors import ValidationFailedError

# A value Dynamics would reject carries the Dataverse code it would get (crmsync.dataverse_codes);
# these are crmsync's own codes for values that never reach Dynamics.
CODE_WRONG_TYPE = "wrong_type"
CODE_BAD_DATETIME = "bad_datetime"
CODE_UNSUPPORTED_TYPE = "unsupported_type"

EARLIEST_CRM_DATETIME = datetime(1753, 1, 1, tzinfo=UTC)

TEXT_TYPES = frozenset({AttributeType.STRING, AttributeType.MEMO, AttributeType.ENTITYNAME})
INTEGER_TYPES = frozenset({AttributeType.INTEGER, AttributeType.BIGINT})
REAL_TYPES = frozenset({AttributeType.DECIMAL, AttributeType.DOUBLE, AttributeType.MONEY})
OPTION_TYPES = frozenset({AttributeType.PICKLIST, AttributeType.STATE, AttributeType.STATUS})
LOOKUP_TYPES = frozenset({AttributeType.LOOKUP, AttributeType.CUSTOMER, AttributeType.OWNER})
SUPPORTED_TYPES = (
    TEXT_TYPES
    | INTEGER_TYPES
    | REAL_TYPES
    | OPTION_TYPES
    | LOOKUP_TYPES
    | {AttributeType.BOOLEAN, AttributeType.DATETIME, AttributeType.UNIQUEIDENTIFIER}
)

# Control characters Dataverse refuses in text (tab, newline and carriage return are fine).
_FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _fail(attr: AttributeSchema, message: str, code: str) -> ValidationFailedError:
    return ValidationFailedError(f"{attr.logical_name}: {message}", code=code)


def format_datetime(value: datetime) -> str:
    """Render an aware datetime as the marketing ISO-8601 UTC form (``...Z``).

    Whole seconds render as ``YYYY-MM-DDTHH:MM:SSZ`` (Dataverse's own precision); sub-second
    values keep their microseconds so that nothing is lost.
    """
    if value.tzinfo is not UTC:  # a read's values are UTC already: no conversion to make
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def parse_datetime(text: str) -> datetime:
    """Parse an ISO-8601 date-time (``Z`` or an offset) or a plain date into aware UTC.

    A plain ``YYYY-MM-DD`` means midnight UTC of that day. A date-time without an offset is
    refused: guessing a time zone would silently shift the value.
    """
    raw = text.strip()
    if len(raw) == 10:
        return datetime.combine(date.fromisoformat(raw), datetime.min.time(), tzinfo=UTC)
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        raise ValueError(f"date-time {text!r} has no time zone")
    return parsed.astimezone(UTC)


def option_label(attr: AttributeSchema, value: int) -> str:
    """The label of option ``value``; an option missing from the metadata keeps its number."""
    label = attr.options.get(value)
    return label if label is not None else str(value)


def option_value(attr: AttributeSchema, label: str) -> int:
    """The option value for ``label`` (exact match first, then case-insensitive).

    A decimal string that names no label is taken as the option's number, so an option missing
    from stale metadata still round-trips. Anything else raises a ``ValidationFailedError``
    listing the allowed labels.
    """
    wanted = label.strip()
    exact = [value for value, text in sorted(attr.options.items()) if text == wanted]
    if exact:
        return exact[0]
    folded = wanted.casefold()
    loose = [value for value, text in sorted(attr.options.items()) if text.casefold() == folded]
    if len(loose) == 1:
        return loose[0]
    if wanted.lstrip("-").isdigit():
        return int(wanted)
    equivalent = _equivalent_status(attr, folded)
    if equivalent is not None:
        return equivalent
    allowed = ", ".join(repr(text) for _, text in sorted(attr.options.items()))
    raise _fail(
        attr, f"{label!r} is not one of the allowed options: {allowed}", PICKLIST_OUT_OF_RANGE
    )


# A lead's and a contact's status columns hold different option sets (lead: Open, Qualified,
# Disqualified and their reasons; contact: Active, Inactive), while a person has one Lead
# Status and one Status Reason. A label the column does not know is sent as the equivalent
# one it does: a live lead status means an active contact, a closed one an inactive contact,
# and back.
_LIVE_STATUSES = frozenset(
    {"open", "new", "contacted", "working", "nurture", "qualified", "active"}
)
_CLOSED_STATUSES = frozenset(
    {
        "disqualified",
        "lost",
        "cannot contact",
        "no longer interested",
        "canceled",
        "cancelled",
        "inactive",
    }
)
_EQUIVALENT_LABELS: dict[bool, tuple[str, ...]] = {
    True: ("active", "open", "new"),
    False: ("inactive", "disqualified", "lost"),
}


def _equivalent_status(attr: AttributeSchema, folded: str) -> int | None:
    """The option of a state or status column equivalent to a label it does not have."""
    if attr.type not in (AttributeType.STATE, AttributeType.STATUS):
        return None
    if folded in _LIVE_STATUSES:
        live = True
    elif folded in _CLOSED_STATUSES:
        live = False
    else:
        return None
    by_label = {text.casefold(): value for value, text in sorted(attr.options.items())}
    for candidate in _EQUIVALENT_LABELS[live]:
        if candidate in by_label:
            return by_label[candidate]
    return None


def _wrong_type(attr: AttributeSchema, value: object) -> ValidationFailedError:
    return _fail(attr, f"{value!r} is not a valid {attr.type.value} value", CODE_WRONG_TYPE)


def _unsupported(attr: AttributeSchema, value: object) -> object:
    raise _fail(attr, f"columns of type {attr.type.value} are not synced", CODE_UNSUPPORTED_TYPE)


def _text_out(attr: AttributeSchema, value: object) -> object:
    if isinstance(value, str):
        return value
    raise _wrong_type(attr, value)


def _bool_out(attr: AttributeSchema, value: object) -> object:
    if isinstance(value, bool):
        return value
    raise _wrong_type(attr, value)


def _integer_out(attr: AttributeSchema, value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _wrong_type(attr, value)


def _real_out(attr: AttributeSchema, value: object) -> object:
    if isinstance(value, Real) and not isinstance(value, bool):
        return value
    raise _wrong_type(attr, value)


def _datetime_out(attr: AttributeSchema, value: object) -> object:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return format_datetime(value)
    if isinstance(value, str) and is_utc_text(value):  # Dataverse's UTC text: already ours
        return value
    raise _wrong_type(attr, value)


def _option_out(attr: AttributeSchema, value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return option_label(attr, value)
    raise _wrong_type(attr, value)


def _lookup_out(attr: AttributeSchema, value: object) -> object:
    if isinstance(value, LookupValue):
        return value.id
    raise _wrong_type(attr, value)


_Out = Callable[[AttributeSchema, object], object]
_In = Callable[[AttributeSchema, object], CrmValue]


def to_marketing(attr: AttributeSchema, value: CrmValue) -> object:
    """Convert a Dynamics column value to its marketing field value.

    Raises :class:`~crmsync.errors.ValidationFailedError` when the value does not fit the
    column type (a sign of stale metadata); the caller records it against that record.
    """
    if value is None:
        return None
    return _TO_MARKETING.get(attr.type, _unsupported)(attr, value)


def to_crm(attr: AttributeSchema, value: object) -> CrmValue:
    """Convert a marketing field value to the Dynamics column value, validating it.

    ``None`` and the empty string clear the column (so does blank text for a non-text
    column). Too-long text, out-of-range numbers, unknown option labels, malformed date-times
    or ids and values of the wrong type raise
    :class:`~crmsync.errors.ValidationFailedError`; nothing is truncated or rounded.
    """
    return _to_crm_with(_TO_CRM.get(attr.type, _unsupported_in), attr, value)


def _to_crm_with(convert: _In, attr: AttributeSchema, value: object) -> CrmValue:
    if value is None or value == "":
        return None
    if convert is not _text_to_crm and isinstance(value, str) and not value.strip():
        return None
    return convert(attr, value)


def _unsupported_in(attr: AttributeSchema, value: object) -> CrmValue:
    raise _fail(attr, f"columns of type {attr.type.value} are not synced", CODE_UNSUPPORTED_TYPE)


def _bool_to_crm(attr: AttributeSchema, value: object) -> CrmValue:
    if isinstance(value, bool):
        return value
    raise _wrong_type(attr, value)


def _text_to_crm(attr: AttributeSchema, value: object) -> CrmValue:
    if not isinstance(value, str):
        raise _fail(attr, f"{value!r} is not text", CODE_WRONG_TYPE)
    if attr.max_length is not None and len(value) > attr.max_length:
        raise _fail(
            attr,
            f"{len(value)} characters is longer than the maximum of {attr.max_length}",
            STRING_TOO_LONG,
        )
    if _FORBIDDEN_CHARS.search(value):
        raise _fail(attr, "text contains control characters", INVALID_CHARACTERS)
    return value


def _check_range(attr: AttributeSchema, number: float, code: str) -> None:
    if (attr.min_value is not None and number < attr.min_value) or (
        attr.max_value is not None and number > attr.max_value
    ):
        raise _fail(
            attr,
            f"{number!r} is outside the allowed range {attr.min_value!r}..{attr.max_value!r}",
            code,
        )


def _integer_to_crm(attr: AttributeSchema, value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(attr, f"{value!r} is not a whole number", CODE_WRONG_TYPE)
    _check_range(attr, value, INTEGER_OUT_OF_RANGE)
    return value


def _real_to_crm(attr: AttributeSchema, value: object) -> int | float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _fail(attr, f"{value!r} is not a number", CODE_WRONG_TYPE)
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(attr, f"{value!r} is not a finite number", CODE_WRONG_TYPE)
    _check_range(attr, value, NUMBER_OUT_OF_RANGE)
    return value


def _datetime_to_crm(attr: AttributeSchema, value: object) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _fail(attr, f"{value!r} has no time zone", CODE_BAD_DATETIME)
        parsed = value.astimezone(UTC)
    elif isinstance(value, str):
        try:
            parsed = parse_datetime(value)
        except ValueError as exc:
            raise _fail(attr, f"{value!r} is not an ISO-8601 date-time", CODE_BAD_DATETIME) from exc
    else:
        raise _fail(attr, f"{value!r} is not a date-time", CODE_WRONG_TYPE)
    if parsed < EARLIEST_CRM_DATETIME:
        raise _fail(attr, f"{value!r} is earlier than 1753-01-01", CODE_BAD_DATETIME)
    return parsed


def _option_to_crm(attr: AttributeSchema, value: object) -> int:
    if isinstance(value, str):
        return option_value(attr, value)
    if isinstance(value, int) and not isinstance(value, bool) and value in attr.options:
        return value
    allowed = ", ".join(repr(text) for _, text in sorted(attr.options.items()))
    raise _fail(
        attr, f"{value!r} is not one of the allowed options: {allowed}", PICKLIST_OUT_OF_RANGE
    )


def _guid(attr: AttributeSchema, value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
        try:
            uuid.UUID(text)
        except ValueError:
            pass
        else:
            return text
    raise _fail(attr, f"{value!r} is not a record id (GUID)", CODE_WRONG_TYPE)


def _lookup_to_crm(attr: AttributeSchema, value: object) -> LookupValue:
    if isinstance(value, LookupValue):
        return value
    record_id = _guid(attr, value)
    if len(attr.targets) != 1:
        raise _fail(
            attr,
            f"the lookup may point at {', '.join(attr.targets) or 'no table'}; "
            "an id alone does not say which",
            CODE_WRONG_TYPE,
        )
    return LookupValue(record_id, attr.targets[0])


_TO_MARKETING: dict[AttributeType, _Out] = {
    **dict.fromkeys(TEXT_TYPES | {AttributeType.UNIQUEIDENTIFIER}, _text_out),
    AttributeType.BOOLEAN: _bool_out,
    **dict.fromkeys(INTEGER_TYPES, _integer_out),
    **dict.fromkeys(REAL_TYPES, _real_out),
    AttributeType.DATETIME: _datetime_out,
    **dict.fromkeys(OPTION_TYPES, _option_out),
    **dict.fromkeys(LOOKUP_TYPES, _lookup_out),
}

_TO_CRM: dict[AttributeType, _In] = {
    **dict.fromkeys(TEXT_TYPES, _text_to_crm),
    AttributeType.BOOLEAN: _bool_to_crm,
    **dict.fromkeys(INTEGER_TYPES, _integer_to_crm),
    **dict.fromkeys(REAL_TYPES, _real_to_crm),
    AttributeType.DATETIME: _datetime_to_crm,
    **dict.fromkeys(OPTION_TYPES, _option_to_crm),
    **dict.fromkeys(LOOKUP_TYPES, _lookup_to_crm),
    AttributeType.UNIQUEIDENTIFIER: _guid,
}

# Types whose marketing values have one spelling only, so canonicalising them is a no-op.
_CANONICAL_AS_IS = (
    TEXT_TYPES
    | INTEGER_TYPES
    | REAL_TYPES
    | {AttributeType.BOOLEAN, AttributeType.UNIQUEIDENTIFIER}
)


def lookup_for(attr: AttributeSchema, value: object, entity: str) -> LookupValue | None:
    """Build a lookup value to ``entity`` (one of ``attr.targets``) from a marketing id."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if entity not in attr.targets:
        raise _fail(attr, f"the lookup cannot point at {entity!r}", CODE_WRONG_TYPE)
    return LookupValue(_guid(attr, value), entity)


def normalize_marketing(attr: AttributeSchema, value: object) -> object:
    """The canonical marketing form of ``value`` for comparison before a merge.

    Date-times are re-rendered in UTC ``...Z`` form and option labels take their exact
    metadata spelling, so that ``"web"`` and ``"Web"``, or ``+02:00`` and ``Z`` forms of one
    instant, are not mistaken for edits. A value that does not convert is returned unchanged:
    it is then compared as typed, and its write to Dynamics fails with the reason (B37).
    """
    if attr.type in LOOKUP_TYPES:
        return value
    try:
        return to_marketing(attr, to_crm(attr, value))
    except ValidationFailedError:
        return value


class ValueConverter(Protocol):
    """Converts one mapped column's values in both directions."""

    @property
    def attribute(self) -> AttributeSchema:
        """The Dynamics column this converter serves."""
        ...

    def to_marketing(self, value: CrmValue) -> object:
        """Dynamics value → marketing value."""
        ...

    def to_crm(self, value: object) -> CrmValue:
        """Marketing value → Dynamics value (validated)."""
        ...


@dataclass(frozen=True, slots=True)
class ColumnConverter:
    """The plain conversion of a column by its type (:func:`to_marketing` / :func:`to_crm`).

    The conversion functions for the column's type are chosen once, when the converter is
    built, which keeps converting whole pages of records cheap.
    """

    attribute: AttributeSchema
    _out: _Out = field(init=False, repr=False, compare=False)
    _in: _In = field(init=False, repr=False, compare=False)
    _as_is: bool = field(init=False, repr=False, compare=False)
    _labels: frozenset[object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kind = self.attribute.type
        object.__setattr__(self, "_out", _TO_MARKETING.get(kind, _unsupported))
        object.__setattr__(self, "_in", _TO_CRM.get(kind, _unsupported_in))
        object.__setattr__(self, "_as_is", kind in _CANONICAL_AS_IS)
        labels = frozenset(self.attribute.options.values()) if kind in OPTION_TYPES else ()
        object.__setattr__(self, "_labels", frozenset(labels))

    def to_marketing(self, value: CrmValue) -> object:
        """Dynamics value → marketing value."""
        return None if value is None else self._out(self.attribute, value)

    def to_crm(self, value: object) -> CrmValue:
        """Marketing value → Dynamics value (validated)."""
        return _to_crm_with(self._in, self.attribute, value)

    @property
    def reads_wire_dates(self) -> bool:
        """Whether :meth:`reader` takes a date-time in Dataverse's UTC text form as it is
        (see :func:`~crmsync.dynamics.query.is_utc_text`): plain date-time columns."""
        return self._out is _datetime_out

    @property
    def reads_text(self) -> bool:
        """Whether a Dynamics value reads as itself when it is text or ``None`` (and any
        other value is refused): string and memo columns."""
        return self._out is _text_out

    def reader(self) -> Callable[[CrmValue], object]:
        """:meth:`to_marketing` as one plain function, for converting whole pages: text (most
        columns) passes through after a class check, without any further call, and so does a
        date-time still in Dataverse's UTC text (a read's ``wire_dates``)."""
        out, attribute = self._out, self.attribute
        if out is _text_out:

            def read_text(value: CrmValue) -> object:
                if value is None or value.__class__ is str:
                    return value
                return out(attribute, value)

            return read_text

        if out is _bool_out:

            def read_bool(value: CrmValue) -> object:
                if value is None or value.__class__ is bool:
                    return value
                return out(attribute, value)

            return read_bool
        if out is _real_out:

            def read_number(value: CrmValue) -> object:
                if value is None or value.__class__ is float or value.__class__ is int:
                    return value
                return out(attribute, value)

            return read_number
        if out is _option_out:
            options = attribute.options

            def read_option(value: CrmValue) -> object:
                if value.__class__ is int:
                    label = options.get(value)
                    return label if label is not None else str(value)
                return None if value is None else out(attribute, value)

            return read_option
        if out is _datetime_out:

            def read_datetime(value: CrmValue) -> object:
                # Dataverse's UTC text is already the marketing form: no datetime round trip.
                if value.__class__ is str and is_utc_text(value):
                    return value
                return None if value is None else out(attribute, value)

            return read_datetime

        def read(value: CrmValue) -> object:
            return None if value is None else out(attribute, value)

        return read

    def canonical(self, value: object) -> object:
        """The canonical marketing spelling of ``value`` (see :func:`canonical_value`)."""
        if self._as_is or (isinstance(value, str) and value in self._labels):
            return value
        try:
            return self._out(self.attribute, self.to_crm(value)) if value is not None else None
        except ValidationFailedError:
            return value


@dataclass(frozen=True, slots=True)
class DateOnlyConverter:
    """A date-time column whose marketing field is a plain date (``YYYY-MM-DD``).

    Used for Dynamics *DateOnly* columns such as an opportunity's ``actualclosedate``; the
    marketing date is the UTC calendar date, and it goes back as midnight UTC.
    """

    attribute: AttributeSchema

    def to_marketing(self, value: CrmValue) -> object:
        """Dynamics date-time (or ``YYYY-MM-DD`` text) → ``YYYY-MM-DD``."""
        if value is None:
            return None
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).date().isoformat()
        if isinstance(value, str):
            try:
                return parse_datetime(value).date().isoformat()
            except ValueError:
                pass
        raise _fail(self.attribute, f"{value!r} is not a date", CODE_WRONG_TYPE)

    def to_crm(self, value: object) -> CrmValue:
        """``YYYY-MM-DD`` → midnight UTC of that day."""
        converted = _datetime_to_crm(self.attribute, value) if value not in (None, "") else None
        if converted is None:
            return None
        return converted.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class LinkConverter:
    """A lookup whose marketing field links to records of one table only.

    ``ownerid`` links a person to a sales user only when the owner is a systemuser (B5: a team
    owner leaves the link empty); ``parentcustomerid`` and ``customerid`` link to a company
    only when they point at an account. Other targets read as an empty link.
    """

    attribute: AttributeSchema
    target: str

    def to_marketing(self, value: CrmValue) -> object:
        """The linked id when the lookup points at :attr:`target`, else ``None``."""
        if value is None:
            return None
        if not isinstance(value, LookupValue):
            raise _fail(self.attribute, f"{value!r} is not a lookup value", CODE_WRONG_TYPE)
        return value.id if value.entity == self.target else None

    def to_crm(self, value: object) -> CrmValue:
        """A lookup to :attr:`target` with the given id."""
        return lookup_for(self.attribute, value, self.target)


def canonical_value(converter: ValueConverter, value: object) -> object:
    """The canonical marketing form of ``value`` through ``converter`` (see
    :func:`normalize_marketing`); a value that does not convert is returned unchanged."""
    if isinstance(converter, ColumnConverter):
        return converter.canonical(value)
    try:
        return converter.to_marketing(converter.to_crm(value))
    except ValidationFailedError:
        return value
