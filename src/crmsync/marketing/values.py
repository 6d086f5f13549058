"""Wire-format values shared by the marketing services.

Dates are ``YYYY-MM-DD``, date-times ISO-8601 UTC without fractions (``2026-01-02T03:04:05Z``),
exactly as Marketo emits them (spec marketo-rest §5.3) and as the store keeps them.

Text that reaches the database passes :func:`unstorable_reason` first: PostgreSQL text cannot
hold NUL, and neither database can hold a lone UTF-16 surrogate (JSON's ``"\ud800"``), which
UTF-8 cannot encode. A value with either is refused per record (1001) and a lookup value with
either matches nothing, so one bad string never fails a whole call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime


def format_datetime(moment: datetime) -> str:
    """``2026-01-02T03:04:05Z`` for an aware datetime (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now_text() -> str:
    """The current time in wire format."""
    return format_datetime(datetime.now(UTC))


def parse_datetime(text: str) -> datetime:
    """Parse an ISO-8601 date-time (``Z``, ``+hh:mm``, ``+hhmm``, naive = UTC) or a bare date.

    Raises ``ValueError`` when ``text`` is neither.
    """
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


MAX_ID = 2**63 - 1


def storable_ids(ids: Iterable[int]) -> list[int]:
    """The distinct ids, in order, that can exist as row ids (1 .. 2**63-1); others are dropped."""
    return list(dict.fromkeys(i for i in ids if 0 < i <= MAX_ID))


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored in every database crmsync supports, or ``None``.

    The one check every client-supplied string passes before it is stored or looked up.
    """
    if "\x00" in text:
        return "contains a NUL character"
    if _LONE_SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate"
    return None


def printable(text: str) -> str:
    """``text`` safe to quote in a message that may be stored or sent: each lone surrogate is
    shown as U+FFFD, which UTF-8 can encode."""
    return _LONE_SURROGATE.sub("\ufffd", text)
