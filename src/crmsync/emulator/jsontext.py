"""Strict JSON for request bodies and tokens: what a .NET JSON reader would refuse, refused.

:func:`loads_strict` is ``json.loads`` plus the refusals Dataverse's (and OData's) JSON reader
makes, each turned into a :class:`ValueError` so callers answer their usual 400:

* ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259 §6); Python accepts them;
* nesting deeper than :data:`MAX_DEPTH` (Python would hit its recursion limit and fail with a
  ``RecursionError``, a 500);
* a lone UTF-16 surrogate (``"\\ud800"``) is not a Unicode scalar value and cannot be stored.
"""

from __future__ import annotations

import json
from typing import Any

# Json.NET's default MaxDepth is 64; OData payloads never come close.
MAX_DEPTH = 64


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON value")


def _depth_ok(text: str) -> bool:
    """Whether brackets outside strings nest at most MAX_DEPTH deep (a linear scan)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif char in "]}":
            depth -= 1
    return True


def loads_strict(data: bytes | str) -> Any:
    """Parse JSON text; every way it can be unacceptable raises :class:`ValueError`."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if not _depth_ok(text):
        raise ValueError(f"the JSON nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("the JSON nests too deeply") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the JSON holds a lone UTF-16 surrogate") from None
    return value
