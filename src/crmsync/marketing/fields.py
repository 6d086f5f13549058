"""The field catalog: every marketing field's REST name, display name, data type and length.

Standard fields come from :mod:`crmsync.store.field_specs` (one SQL column each); custom fields
(marketing-only "local" ones, or Dynamics custom fields selected for sync) are rows of
``field_definitions`` and are stored in the object's ``custom`` JSON column.
:func:`coerce_value` turns an incoming value into the stored (wire-format) value or explains,
in a :class:`InvalidValueError`, why it cannot.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from crmsync.errors import InvalidValueError, UnknownFieldError
from crmsync.marketing.values import (
    format_datetime,
    parse_datetime,
    printable,
    unstorable_reason,
)
from crmsync.store.field_specs import (
    CUSTOM_FIELD_ID_BASE,
    DATA_TYPES,
    ID_BASE,
    OBJECT_FIELDS,
)
from crmsync.store.tables import field_definitions

# Objects whose table has a ``custom`` JSON column and so can carry custom fields.
CUSTOMISABLE_OBJECTS: frozenset[str] = frozenset({"person", "company", "opportunity"})
_STRING_TYPES = frozenset({"string", "email", "phone", "url", "reference"})
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_SPACE = re.compile(r"\s")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
_TRUE = frozenset({"true", "1", "yes", "y"})
_FALSE = frozenset({"false", "0", "no", "n"})


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of a marketing object as the REST API describes it (spec marketo-rest §4.1)."""

    object_type: str
    rest_name: str
    display_name: str
    data_type: str
    length: int | None
    read_only: bool
    is_custom: bool
    field_id: int = 0


@dataclass(frozen=True, slots=True)
class FieldCatalog:
    """The fields of one object type; lookups by name are case-insensitive."""

    object_type: str
    fields: tuple[FieldDef, ...]
    _by_key: Mapping[str, FieldDef] = field(repr=False, compare=False)

    @classmethod
    def of(cls, object_type: str, fields: tuple[FieldDef, ...]) -> FieldCatalog:
        """Build a catalog from its fields."""
        return cls(object_type, fields, {f.rest_name.lower(): f for f in fields})

    def get(self, name: str) -> FieldDef | None:
        """The field called ``name`` (any case), or ``None``."""
        return self._by_key.get(name.lower())

    def require(self, name: str) -> FieldDef:
        """The field called ``name``; raise :class:`UnknownFieldError` when there is none."""
        found = self._by_key.get(name.lower())
        if found is None:
            raise UnknownFieldError(f"Field '{name}' not found", entity=self.object_type)
        return found

    @property
    def custom_fields(self) -> tuple[FieldDef, ...]:
        """The custom fields only."""
        return tuple(f for f in self.fields if f.is_custom)


def standard_fields(object_type: str) -> tuple[FieldDef, ...]:
    """The standard fields of ``object_type`` (which must be known)."""
    specs = OBJECT_FIELDS.get(object_type)
    if specs is None:
        raise UnknownFieldError(f"unknown object type {object_type!r}", entity=object_type)
    base = ID_BASE[object_type]
    return tuple(
        FieldDef(
            object_type,
            s.rest_name,
            s.display_name,
            s.data_type,
            s.length,
            s.read_only,
            is_custom=False,
            field_id=base + position,
        )
        for position, s in enumerate(specs, start=1)
    )


def load_catalog(conn: Connection, object_type: str = "person") -> FieldCatalog:
    """The full catalog of ``object_type``: standard fields then custom fields by creation."""
    fields = list(standard_fields(object_type))
    if object_type in CUSTOMISABLE_OBJECTS:
        rows = conn.execute(
            select(field_definitions)
            .where(field_definitions.c.object_type == object_type)
            .order_by(field_definitions.c.id)
        ).mappings()
        fields.extend(
            FieldDef(
                object_type,
                row["rest_name"],
                row["display_name"],
                row["data_type"],
                row["length"],
                read_only=False,
                is_custom=True,
                field_id=CUSTOM_FIELD_ID_BASE + row["id"],
            )
            for row in rows
        )
    return FieldCatalog.of(object_type, tuple(fields))


def add_local_field(
    conn: Connection,
    object_type: str,
    rest_name: str,
    display_name: str,
    data_type: str,
    length: int | None = None,
    *,
    origin: str = "local",
) -> FieldDef:
    """Add a custom field to ``object_type``; refuse bad names, clashes and unknown types.

    ``origin`` is ``local`` for marketing-only fields and ``crm`` for Dynamics custom fields
    selected for sync. String-like types default to a length of 255.
    """
    if object_type not in CUSTOMISABLE_OBJECTS:
        raise InvalidValueError(
            f"custom fields can be added to {', '.join(sorted(CUSTOMISABLE_OBJECTS))}, "
            f"not to {object_type!r}"
        )
    if not _NAME.match(rest_name):
        raise InvalidValueError(
            f"field name {rest_name!r} must start with a letter and contain only letters, "
            "digits and underscores (at most 100)"
        )
    if data_type not in DATA_TYPES:
        raise InvalidValueError(
            f"unknown data type {data_type!r}; use one of {', '.join(sorted(DATA_TYPES))}"
        )
    if length is not None and (data_type not in _STRING_TYPES or length < 1):
        raise InvalidValueError("a length applies only to string-like types and must be >= 1")
    if data_type in _STRING_TYPES and length is None:
        length = 255
    if not display_name.strip():
        raise InvalidValueError("the display name must not be empty")
    existing = load_catalog(conn, object_type).get(rest_name)
    if existing is not None:
        raise InvalidValueError(
            f"{object_type} already has a field named {existing.rest_name!r}", entity=object_type
        )
    try:
        with conn.begin_nested():
            new_id = conn.execute(
                insert(field_definitions)
                .values(
                    object_type=object_type,
                    rest_name=rest_name,
                    name_key=rest_name.lower(),
                    display_name=display_name.strip(),
                    data_type=data_type,
                    length=length,
                    origin=origin,
                    created_at=datetime.now(UTC),
                )
                .returning(field_definitions.c.id)
            ).scalar_one()
    except IntegrityError as exc:
        raise InvalidValueError(
            f"{object_type} already has a field named {rest_name!r}", entity=object_type
        ) from exc
    return FieldDef(
        object_type,
        rest_name,
        display_name.strip(),
        data_type,
        length,
        read_only=False,
        is_custom=True,
        field_id=CUSTOM_FIELD_ID_BASE + new_id,
    )


def _invalid(raw: object, field_def: FieldDef, why: str = "") -> InvalidValueError:
    shown = printable(str(raw))
    if len(shown) > 60:
        shown = shown[:57] + "..."
    extra = f" ({why})" if why else ""
    return InvalidValueError(
        f"Invalid value '{shown}' for field '{field_def.rest_name}'. "
        f"Required of type '{field_def.data_type}'{extra}",
        entity=field_def.object_type,
    )


def _as_integer(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and len(raw) <= 20:
        try:
            return int(raw)
        except ValueError:
            return None
    return None


def coerce_value(field: FieldDef, raw: object) -> object:
    """Return ``raw`` as stored for ``field`` (wire format), or raise :class:`InvalidValueError`.

    ``None`` clears any field; an empty string clears every non-text field.
    """
    if raw is None:
        return None
    kind = field.data_type
    if kind in _STRING_TYPES or kind == "text":
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise _invalid(raw, field)
        text = raw if isinstance(raw, str) else str(raw)
        unstorable = unstorable_reason(text)
        if unstorable is not None:
            raise _invalid(raw, field, unstorable)
        if field.length is not None and len(text) > field.length:
            raise _invalid(raw, field, f"longer than {field.length} characters")
        if kind == "email" and text:
            if not text.isascii() or "@" not in text or _SPACE.search(text.strip()):
                raise _invalid(raw, field, "not an ASCII e-mail address")
            text = text.strip()
        return text
    if isinstance(raw, str):
        raw = raw.strip()
        if raw == "":
            return None
    if kind in {"integer", "score"}:
        whole = _as_integer(raw)
        if whole is None:
            raise _invalid(raw, field)
        if not INT32_MIN <= whole <= INT32_MAX:
            raise _invalid(raw, field, "out of range")
        return whole
    if kind in {"float", "currency", "percent"}:
        if isinstance(raw, bool):
            raise _invalid(raw, field)
        if isinstance(raw, int | float):
            number = float(raw)
        elif isinstance(raw, str):
            try:
                number = float(raw)
            except ValueError:
                raise _invalid(raw, field) from None
        else:
            raise _invalid(raw, field)
        if not math.isfinite(number):
            raise _invalid(raw, field)
        return number
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, str):
            lowered = raw.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
        raise _invalid(raw, field)
    if kind == "date":
        if isinstance(raw, datetime):
            return raw.date().isoformat()
        if isinstance(raw, date):
            return raw.isoformat()
        if isinstance(raw, str):
            try:
                day = date.fromisoformat(raw) if len(raw) == 10 else parse_datetime(raw).date()
                return day.isoformat()
            except ValueError:
                pass
        raise _invalid(raw, field, "expected YYYY-MM-DD")
    if kind == "datetime":
        if isinstance(raw, datetime):
            return format_datetime(raw)
        if isinstance(raw, str):
            try:
                return format_datetime(parse_datetime(raw))
            except ValueError:
                pass
        raise _invalid(raw, field, "expected an ISO-8601 date-time")
    raise _invalid(raw, field, "unsupported data type")
