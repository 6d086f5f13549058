"""Wire-format values shared by the marketing services.

Dates are ``YYYY-MM-DD``, date-times ISO-8601 UTC without fractions (``2026-01-02T03:04:05Z``),
exactly as Marketo emits them (spec marketo-rest §5.3) and as the store keeps them.
"""

from __future__ import annotations

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
