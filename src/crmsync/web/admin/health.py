"""``/healthz`` (the process answers), ``/readyz`` (database reachable, migrations current;
whether Dynamics answers, or why not) and ``/metrics`` (Prometheus text format through
``prometheus-client``).

Metrics are collected from the store at scrape time by a collector registered in a registry of
this application (no process-global registry), plus a latency histogram of admin requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crmsync.errors import CrmsyncError
from crmsync.store.db import current_revision, head_revision
from crmsync.sync.status import read_status
from crmsync.web.admin.probe import DynamicsProbe
from crmsync.web.admin.queries import requests_last_5_minutes, unread_notifications

router = APIRouter()


class SyncCollector(Collector):
    """Sync figures read from the store at each scrape (B40)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read the sync status at scrape time and yield it as gauges."""
        status = read_status(self._engine)
        with self._engine.connect() as conn:
            requests = requests_last_5_minutes(conn)
            unread = unread_notifications(conn)
        yield GaugeMetricFamily(
            "crmsync_sync_enabled", "1 when the sync is on", value=status.enabled
        )
        backlog = GaugeMetricFamily(
            "crmsync_sync_backlog",
            "Changes waiting to go to Dynamics",
            labels=["entity", "operation"],
        )
        for b in status.backlog:
            backlog.add_metric([b.entity, "create"], b.pending_creates)
            backlog.add_metric([b.entity, "update"], b.pending_updates)
            backlog.add_metric([b.entity, "delete"], b.pending_deletes)
        yield backlog
        yield GaugeMetricFamily(
            "crmsync_sync_open_errors", "Records failing to sync", value=status.open_errors
        )
        waiting = GaugeMetricFamily(
            "crmsync_sync_writes_waiting",
            "1 per table whose writes to Dynamics wait (e.g. the sync user lost a privilege)",
            labels=["entity", "reason"],
        )
        for wait in status.writes_waiting:
            waiting.add_metric([wait.entity, wait.reason], 1)
        yield waiting
        yield GaugeMetricFamily(
            "crmsync_sync_records_last_hour",
            "Records synced by the cycles of the last hour",
            value=status.records_synced_last_hour,
        )
        yield GaugeMetricFamily(
            "crmsync_sync_cycles_last_hour",
            "Cycles run in the last hour",
            value=status.cycles_last_hour,
        )
        yield GaugeMetricFamily(
            "crmsync_dynamics_requests_last_5_minutes",
            "Dynamics Web API requests in the last five minutes",
            value=requests,
        )
        traffic = status.traffic_last_hour
        yield GaugeMetricFamily(
            "crmsync_dynamics_throttled_last_hour",
            "429 answers in the last hour",
            value=traffic.throttled,
        )
        yield GaugeMetricFamily(
            "crmsync_dynamics_retries_last_hour",
            "Retried requests in the last hour",
            value=traffic.retries,
        )
        yield GaugeMetricFamily(
            "crmsync_notifications_unread", "Unread admin notifications", value=unread
        )


class Telemetry:
    """This application's metrics registry and request-latency histogram."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(SyncCollector(engine))
        self.latency = Histogram(
            "crmsync_http_request_duration_seconds",
            "Time to answer admin UI and API requests",
            ["area"],
            registry=self.registry,
        )


class RequestTimer:
    """ASGI middleware timing each request into :attr:`Telemetry.latency` by area."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``/healthz``, ``/readyz`` and ``/metrics``; pass anything else on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        area = (
            "admin_api"
            if path.startswith("/api/admin")
            else "admin_ui"
            if path.startswith("/admin")
            else "marketo_api"
            if path.startswith(("/rest", "/identity"))
            else "other"
        )
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.telemetry.latency.labels(area).observe(time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, timed_send)


@router.get("/healthz")
async def healthz() -> Response:
    """The process is up."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
def readyz(request: Request) -> Response:
    """Ready when the database answers and its schema is the current one. Whether Dynamics
    answers is said too (``dynamics``: reachable, or the reason why not), without making the
    process unready: pages, the admin API and the Marketo API still serve while it is away,
    and the sync waits for it."""
    engine: Engine = request.app.state.engine
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = current_revision(engine)
    except (CrmsyncError, OSError, Exception):  # any failure to reach it means not ready
        return JSONResponse(
            {"status": "not ready", "reason": "the database cannot be reached"}, status_code=503
        )
    head = head_revision()
    if current != head:
        return JSONResponse(
            {
                "status": "not ready",
                "reason": f"the database schema is {current or 'empty'}, not {head}: "
                "run 'crmsync db upgrade'",
            },
            status_code=503,
        )
    probe: DynamicsProbe = request.app.state.dynamics_probe
    return JSONResponse({"status": "ready", "schema": head, "dynamics": probe.result().as_dict()})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    telemetry: Telemetry = request.app.state.telemetry
    return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)
