"""Helpers for the Dynamics client tests: a client on an ``httpx.MockTransport`` handler,
recorded sleeps, and a tiny stateful org that answers documented Web API shapes (spec §3–§6).
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.retry import RetryPolicy

ORG = "https://contoso.crm.dynamics.com"
ROOT = f"{ORG}/api/data/v9.2/"
Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Sleeps:
    """Records the pauses the client asked for instead of sleeping."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_client(
    handler: Handler, *, sleeps: Sleeps | None = None, **options: Any
) -> DynamicsClient:
    """A client whose transport is ``handler``; pauses are recorded, never slept."""
    options.setdefault("retry_policy", RetryPolicy(max_attempts=6, jitter=0.0))
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return DynamicsClient(http, ORG, sleep=sleeps if sleeps is not None else Sleeps(), **options)


def json_response(
    status: int, document: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        headers={"Content-Type": "application/json; odata.metadata=minimal", **(headers or {})},
        content=json.dumps(document).encode(),
    )


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


@dataclass
class InnerRequest:
    """One request found inside a ``$batch`` body."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None


def parse_batch_request(request: httpx.Request) -> list[InnerRequest]:
    """Read a multipart ``$batch`` request with the standard library's MIME parser."""
    content_type = request.headers["Content-Type"]
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + request.content
    message = email.message_from_bytes(raw, policy=email.policy.HTTP)
    inner: list[InnerRequest] = []
    for part in message.iter_parts():  # type: ignore[attr-defined]
        payload = part.get_payload(decode=True)
        head, _, body = payload.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        method, url, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        inner.append(InnerRequest(method, url, headers, body, part.get("Content-ID")))
    return inner


def batch_response(parts: list[tuple[int, str, dict[str, str], bytes]]) -> httpx.Response:
    """A ``multipart/mixed`` batch answer: (status, reason, headers, body) per part (spec §6)."""
    boundary = "batchresponse_01346794-f2e2-4d45-8cc2-f97e09fe8916"
    chunks: list[bytes] = []
    for status, reason, headers, body in parts:
        lines = [
            f"--{boundary}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            f"HTTP/1.1 {status} {reason}",
            *(f"{name}: {value}" for name, value in headers.items()),
            "",
        ]
        chunks.append("\r\n".join(lines).encode() + b"\r\n" + body + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return httpx.Response(
        200,
        headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
        content=b"".join(chunks),
    )


ROW_VERSION_MISMATCH = (
    "The version of the existing record doesn't match the RowVersion property provided."
)
RECORD_URL = re.compile(r"/api/data/v9\.2/(\w+)\(([0-9a-f-]{36})\)")


class FakeOrg:
    """A minimal in-memory org for write tests: leads keyed by id with a row version.

    ``before_batch`` may return a response to send instead of processing the batch (429, 503);
    ``drop_after_batch`` processes a batch and then drops the connection (outcome unknown).
    """

    def __init__(self) -> None:
        self.leads: dict[str, dict[str, Any]] = {}
        self.version = 1000
        self.lock = threading.Lock()
        self.batches = 0
        self.creates_applied = 0
        self.before_batch: Callable[[int], httpx.Response | None] = lambda number: None
        self.drop_after_batch: Callable[[int], bool] = lambda number: False
        self.part_override: Callable[
            [InnerRequest], tuple[int, str, dict[str, str], bytes] | None
        ] = lambda inner: None

    def etag(self, lead_id: str) -> str:
        return f'W/"{self.leads[lead_id]["versionnumber"]}"'

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith("/$batch"):
            with self.lock:
                self.batches += 1
                number = self.batches
            early = self.before_batch(number)
            if early is not None:
                return early
            parts = [self._apply(inner) for inner in parse_batch_request(request)]
            if self.drop_after_batch(number):
                raise httpx.ReadError("connection dropped", request=request)
            return batch_response(parts)
        match = RECORD_URL.search(path)
        if request.method == "GET" and match:
            lead = self.leads.get(match.group(2))
            if lead is None:
                return error_response(
                    404, "0x80040217", f"lead With Id = {match.group(2)} Does Not Exist"
                )
            return json_response(200, {"@odata.etag": self.etag(lead["leadid"]), **lead})
        return error_response(404, "", f"no route {request.method} {path}")

    def _apply(self, inner: InnerRequest) -> tuple[int, str, dict[str, str], bytes]:
        override = self.part_override(inner)
        if override is not None:
            return override
        with self.lock:
            self.version += 1
            body = json.loads(inner.body) if inner.body else {}
            if inner.method == "POST":
                lead_id = body["leadid"]
                if lead_id in self.leads:
                    error = {
                        "error": {
                            "code": "0x80040237",
                            "message": "A record with matching key values already exists.",
                        }
                    }
                    return (
                        412,
                        "Precondition Failed",
                        {"Content-Type": "application/json"},
                        json.dumps(error).encode(),
                    )
                self.leads[lead_id] = {**body, "versionnumber": self.version}
                self.creates_applied += 1
                return (
                    201,
                    "Created",
                    {"Content-Type": "application/json"},
                    json.dumps({"@odata.etag": self.etag(lead_id), "leadid": lead_id}).encode(),
                )
            match = RECORD_URL.search(inner.url)
            assert match is not None, inner.url
            lead_id = match.group(2)
            if inner.method == "PATCH":
                if lead_id not in self.leads:
                    error = {
                        "error": {
                            "code": "0x80040217",
                            "message": f"lead With Id = {lead_id} Does Not Exist",
                        }
                    }
                    return (
                        404,
                        "Not Found",
                        {"Content-Type": "application/json"},
                        json.dumps(error).encode(),
                    )
                expected = inner.headers.get("if-match")
                if expected not in (None, "*") and expected != self.etag(lead_id):
                    error = {
                        "error": {
                            "code": "0x80060882",
                            "message": ROW_VERSION_MISMATCH,
                        }
                    }
                    return (
                        412,
                        "Precondition Failed",
                        {"Content-Type": "application/json"},
                        json.dumps(error).encode(),
                    )
                self.leads[lead_id].update(body)
                self.leads[lead_id]["versionnumber"] = self.version
                return (
                    200,
                    "OK",
                    {"Content-Type": "application/json"},
                    json.dumps({"@odata.etag": self.etag(lead_id), "leadid": lead_id}).encode(),
                )
            if inner.method == "DELETE":
                if self.leads.pop(lead_id, None) is None:
                    return (
                        404,
                        "Not Found",
                        {},
                        b'{"error":{"code":"0x80040217","message":"Does Not Exist"}}',
                    )
                return 204, "No Content", {}, b""
        raise AssertionError(f"unexpected {inner.method} {inner.url}")
