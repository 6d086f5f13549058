"""The overview's chart of the last 24 hours (B40): per clock hour, records synced and failed
and the backlog after the hour's last cycle, as an SVG and the same figures in a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from admin_harness import AdminApp, SyncedAdmin, text_of
from sqlalchemy import Engine

from crmsync.store.tables import sync_history
from crmsync.web.admin.chart import build_chart, hourly_buckets

NOW = datetime(2026, 5, 3, 12, 30, tzinfo=UTC)


def _cycle(engine: Engine, started: datetime, synced: int, failed: int, backlog: int) -> None:
    details = {"records_synced": synced, "push": {"failed": failed}, "backlog_after": backlog}
    with engine.begin() as conn:
        conn.execute(
            sync_history.insert().values(
                kind="cycle",
                status="ok" if not failed else "partial",
                started_at=started,
                finished_at=started + timedelta(seconds=3),
                api_calls=5,
                details=details,
            )
        )


def test_cycles_are_summed_per_clock_hour(admin_sqlite: AdminApp) -> None:
    engine = admin_sqlite.engine
    _cycle(engine, NOW - timedelta(minutes=20), 10, 1, 7)  # 12:10
    _cycle(engine, NOW - timedelta(minutes=5), 5, 0, 3)  # 12:25: the hour's last backlog
    _cycle(engine, NOW - timedelta(hours=3), 40, 2, 9)  # 09:30
    _cycle(engine, NOW - timedelta(hours=30), 999, 9, 99)  # older than 24 hours
    with engine.connect() as conn:
        buckets = hourly_buckets(conn, NOW)
    assert len(buckets) == 24
    assert buckets[-1].start == datetime(2026, 5, 3, 12, tzinfo=UTC)
    last = buckets[-1]
    assert (last.cycles, last.synced, last.failed, last.backlog) == (2, 15, 1, 3)
    nine = buckets[-4]
    assert (nine.start.hour, nine.synced, nine.failed, nine.backlog) == (9, 40, 2, 9)
    assert sum(b.synced for b in buckets) == 55
    assert [b.backlog for b in buckets].count(None) == 22
    chart = build_chart(buckets)
    assert chart.top == 50 and chart.backlog_top == 10
    assert len(chart.synced_bars) == 2 and len(chart.failed_bars) == 2
    tallest = max(chart.synced_bars, key=lambda bar: bar.height)
    assert tallest.label == "09:00: 40 synced"
    assert len(chart.backlog_points.split()) == len(chart.backlog_dots) == 2


def test_the_overview_draws_the_chart_with_a_table(synced_admin: SyncedAdmin) -> None:
    admin = synced_admin.admin
    html = admin.page(admin.signed_in(), "/admin/")
    assert '<svg viewBox="0 0 720 200" role="img"' in html
    assert html.count('<rect class="synced"') == 1  # the one cycle of the fixture
    text = text_of(html)
    assert "Last 24 hours" in text and "The figures per hour" in text
    hour = datetime.now(UTC).strftime("%Y-%m-%d %H:00")
    row = text.split(hour, 1)[1].split()[:4]
    assert row[0] == "1" and int(row[1].replace(",", "")) > 0 and row[2] == "0"
    assert 'style="' not in html  # the CSP allows no inline style
