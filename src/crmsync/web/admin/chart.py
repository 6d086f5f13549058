"""The overview's chart of the last 24 hours (B40): per clock hour, the records synced, the
records that failed, and the backlog left after the hour's last cycle; drawn as an SVG by the
template from the geometry computed here (no script, no library), with the same figures in a
table under it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from crmsync.store.tables import sync_history

HOURS = 24
WIDTH = 720
HEIGHT = 200
LEFT = 48  # room for the axis labels
BOTTOM = 24


@dataclass(frozen=True, slots=True)
class HourBucket:
    """One clock hour: records synced and failed by its cycles, the backlog after its last
    cycle (None: no cycle ran)."""

    start: datetime
    cycles: int
    synced: int
    failed: int
    backlog: int | None


@dataclass(frozen=True, slots=True)
class Bar:
    """A bar (or bar segment) of the chart."""

    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything the template draws."""

    buckets: list[HourBucket]
    synced_bars: list[Bar]
    failed_bars: list[Bar]
    backlog_points: str  # an SVG polyline's points
    backlog_dots: list[tuple[float, float, str]]  # a marker per hour with a cycle
    top: int  # the records axis' top value
    backlog_top: int
    x_labels: list[tuple[float, str]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = BOTTOM


def _number(details: Any, *path: str) -> int:
    value: Any = details
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return int(value) if isinstance(value, int | float) else 0


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def hourly_buckets(conn: Connection, now: datetime | None = None) -> list[HourBucket]:
    """The last 24 clock hours (the current one last), from the cycles' history."""
    current = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=HOURS - 1)
    rows = conn.execute(
        select(sync_history.c.started_at, sync_history.c.details)
        .where(sync_history.c.kind == "cycle", sync_history.c.started_at >= first)
        .order_by(sync_history.c.started_at)
    ).all()
    cycles = [0] * HOURS
    synced = [0] * HOURS
    failed = [0] * HOURS
    backlog: list[int | None] = [None] * HOURS
    for started, details in rows:
        index = int((_aware(started) - first).total_seconds() // 3600)
        if not 0 <= index < HOURS:
            continue
        cycles[index] += 1
        synced[index] += _number(details, "records_synced")
        failed[index] += _number(details, "push", "failed")
        if isinstance(details, dict) and isinstance(details.get("backlog_after"), int):
            backlog[index] = int(details["backlog_after"])
    return [
        HourBucket(first + timedelta(hours=i), cycles[i], synced[i], failed[i], backlog[i])
        for i in range(HOURS)
    ]


def _nice_top(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if step * top >= value:
                return step * top
        top *= 10


def build_chart(buckets: list[HourBucket]) -> Chart:
    """The chart's geometry: stacked bars (synced, failed) on the left axis, the backlog as a
    line on its own scale."""
    plot_width = WIDTH - LEFT
    plot_height = HEIGHT - BOTTOM
    slot = plot_width / len(buckets)
    top = _nice_top(max((b.synced + b.failed for b in buckets), default=0))
    backlog_top = _nice_top(max((b.backlog or 0 for b in buckets), default=0))
    synced_bars, failed_bars, points, labels = [], [], [], []
    dots: list[tuple[float, float, str]] = []
    for i, bucket in enumerate(buckets):
        x = LEFT + i * slot + slot * 0.15
        hour = f"{bucket.start:%H}:00"
        synced_height = plot_height * bucket.synced / top
        failed_height = plot_height * bucket.failed / top
        if bucket.synced:
            synced_bars.append(
                Bar(
                    x,
                    plot_height - synced_height,
                    slot * 0.7,
                    synced_height,
                    f"{hour}: {bucket.synced:,} synced",
                )
            )
        if bucket.failed:
            failed_bars.append(
                Bar(
                    x,
                    plot_height - synced_height - failed_height,
                    slot * 0.7,
                    failed_height,
                    f"{hour}: {bucket.failed:,} failed",
                )
            )
        if bucket.backlog is not None:
            y = plot_height - plot_height * bucket.backlog / backlog_top
            points.append(f"{LEFT + (i + 0.5) * slot:.1f},{y:.1f}")
            dots.append((LEFT + (i + 0.5) * slot, y, f"{hour}: backlog {bucket.backlog:,}"))
        if i % 3 == 0:
            labels.append((LEFT + (i + 0.5) * slot, hour))
    return Chart(
        buckets=buckets,
        synced_bars=synced_bars,
        failed_bars=failed_bars,
        backlog_points=" ".join(points),
        backlog_dots=dots,
        top=top,
        backlog_top=backlog_top,
        x_labels=labels,
    )
