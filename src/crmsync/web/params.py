"""Request parameters of the Marketo API: query string, form body and JSON body merged.

Marketo clients send the same parameter in several shapes (spec marketo-rest.md §1, §10.3–4):
repeated keys (``fields=a&fields=b``), comma-separated values (``fields=a,b``), both at once,
and — with ``_method=GET`` tunnelling — in a form body or a JSON body instead of the query.
:class:`ApiParams` holds every value seen under a key and answers typed questions about it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from crmsync.web.envelope import ApiError, blank, invalid_json, invalid_parameter

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
JSON_MEDIA_TYPE = "application/json"

# Ids are 64-bit signed integers in every database crmsync supports.
MAX_RECORD_ID = 2**63 - 1

_T = TypeVar("_T")


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def media_type(content_type: str | None) -> str:
    """Return the bare media type of a ``Content-Type`` header (no charset, lower case)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


MAX_JSON_DEPTH = 32
"""Marketo documents are a few levels deep (``{"input": [{"field": value}]}``); anything nested
deeper than this is refused as invalid JSON before a handler walks it."""


def parse_json_body(body: bytes) -> Any:
    """Parse a JSON request body; 609 when it is not JSON or nested past :data:`MAX_JSON_DEPTH`.

    The parser recurses, so a deeply nested body raises ``RecursionError``: that is the
    client's input, answered 609 like any other malformed body, never a server error.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise invalid_json() from None
    if _nested_deeper_than(document, MAX_JSON_DEPTH):
        raise invalid_json()
    return document


def _nested_deeper_than(document: object, limit: int) -> bool:
    """True when ``document`` has arrays or objects nested more than ``limit`` levels deep."""
    level: list[object] = [document]
    depth = 0
    while level:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            return False
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
        ]
    return False


class ApiParams:
    """Every parameter value of one call, keyed by name, in arrival order."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {}

    @classmethod
    def from_query(cls, query_string: str) -> ApiParams:
        """Build from a raw query string."""
        params = cls()
        params.add_pairs(parse_qsl(query_string, keep_blank_values=True))
        return params

    def add_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Add ``(key, value)`` pairs, keeping repeated keys."""
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    def add_form(self, body: bytes) -> None:
        """Add the fields of a form-urlencoded body."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise invalid_parameter("Form body is not UTF-8") from exc
        self.add_pairs(parse_qsl(text, keep_blank_values=True))

    def add_json_object(self, document: Mapping[str, Any]) -> None:
        """Add the scalar and list members of a JSON object (``input`` and objects are skipped)."""
        for key, value in document.items():
            if isinstance(value, list):
                self.add_pairs((key, _scalar_text(item)) for item in value if _is_scalar(item))
            elif _is_scalar(value):
                self.add_pairs([(key, _scalar_text(value))])

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def get(self, key: str) -> str | None:
        """Return the first value given for ``key`` (stripped), or None."""
        values = self._values.get(key)
        if not values:
            return None
        return values[0].strip()

    def require(self, key: str) -> str:
        """Return the value of a required parameter; 701 when missing or blank."""
        value = self.get(key)
        if not value:
            raise blank(key)
        return value

    def get_list(self, key: str) -> list[str]:
        """Return every value of an array parameter: repeated keys and commas both split."""
        items: list[str] = []
        for raw in self._values.get(key, ()):
            items.extend(part.strip() for part in raw.split(",") if part.strip())
        return items

    def get_int_list(self, key: str, maximum: int | None = None) -> list[int]:
        """Return an array parameter as 64-bit integers; 1003 when one is not.

        With ``maximum``, more than that many values is 1003 too.
        """
        result: list[int] = []
        for item in self.get_list(key):
            number = as_record_id(item)
            if number is None:
                raise invalid_parameter(f"Invalid value '{item}' for '{key}'")
            result.append(number)
        if maximum is not None:
            _check_count(key, result, maximum)
        return result

    def require_list(self, key: str, maximum: int) -> list[str]:
        """Return a required array parameter: 701 when empty, 1003 past ``maximum`` values."""
        return _required(key, self.get_list(key), maximum)

    def require_int_list(self, key: str, maximum: int) -> list[int]:
        """Return a required integer array: 1003 bad or past ``maximum``, 701 when empty."""
        return _required(key, self.get_int_list(key), maximum)

    def get_bool(self, key: str, default: bool = False) -> bool:
        """Return a boolean parameter, case-insensitively (clients send ``False``, §1)."""
        value = self.get(key)
        if value is None or value == "":
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise invalid_parameter(f"Invalid value '{value}' for '{key}'")

    def get_int(self, key: str, default: int | None = None) -> int | None:
        """Return a 64-bit integer parameter; 1003 when it is not one."""
        value = self.get(key)
        if value is None or value == "":
            return default
        number = as_record_id(value)
        if number is None:
            raise invalid_parameter(f"Invalid value '{value}' for '{key}'")
        return number

    def batch_size(self, maximum: int = 300) -> int:
        """Return ``batchSize`` (default and maximum 300, spec §1.2); 1003 out of range."""
        size = self.get_int("batchSize", maximum)
        assert size is not None
        if size < 1 or size > maximum:
            raise invalid_parameter(f"Invalid batchSize '{size}', must be 1 to {maximum}")
        return size


def _required(key: str, values: list[_T], maximum: int) -> list[_T]:
    if not values:
        raise blank(key)
    _check_count(key, values, maximum)
    return values


def _check_count(key: str, values: list[Any], maximum: int) -> None:
    if len(values) > maximum:
        raise invalid_parameter(f"Too many {key}: {len(values)}, at most {maximum}")


def as_record_id(value: object) -> int | None:
    """Return ``value`` as a non-negative 64-bit integer id, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if 0 <= number <= MAX_RECORD_ID else None


def parse_datetime(text: str) -> dt.datetime:
    """Parse a ``sinceDatetime``: ISO-8601 with ``Z``, ``+hh:mm``, ``+hhmm`` or a bare date.

    A bare date means midnight UTC; a value without a zone is taken as UTC (spec §5.2).
    Raises :class:`ApiError` 704 when the text is not a date.
    """
    cleaned = text.strip().replace(" ", "+") if "T" in text else text.strip()
    if cleaned.endswith("Z") or cleaned.endswith("z"):
        cleaned = cleaned[:-1] + "+00:00"
    offset = cleaned[-4:]
    if (
        len(cleaned) >= 5
        and cleaned[-5] in "+-"
        and offset.isascii()
        and offset.isdigit()
        and "T" in cleaned
    ):
        cleaned = f"{cleaned[:-2]}:{cleaned[-2:]}"
    try:
        value = dt.datetime.fromisoformat(cleaned)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:
        raise ApiError("704", "Invalid date format") from exc


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool) and value is not None


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
