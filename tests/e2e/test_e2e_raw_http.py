"""Over real HTTP (``crmsync serve`` on 127.0.0.1, raw sockets): a request the HTTP parser
cannot read is still answered with the API's JSON envelope, never uvicorn's plain text."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from marketo_server import RunningServer, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir: Path = tmp_path_factory.mktemp("raw-http")
    with running_server(workdir, setup_by_cli=False) as running:
        yield running


def _exchange(server: RunningServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /rest/v1/leads\xff\xfe.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /rest/v1/leads.json?filterValues=é HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        b"GET /rest/v1/l\xc3\xa9ads.json HTTP/1.1\r\nHost: x\r\n\r\n",
        b"NOT AN HTTP REQUEST\r\n\r\n",
        b"GET /rest/v1/leads.json HTTP/1.1\r\nHost: x\r\nbroken header line\r\n\r\n",
    ],
)
def test_unparsable_requests_get_the_json_envelope(
    server: RunningServer, request_bytes: bytes
) -> None:
    status, headers, body = _exchange(server, request_bytes)
    assert status == 400
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert document["success"] is False
    assert document["errors"] == [{"code": "400", "message": "Invalid HTTP request"}]
    assert isinstance(document["requestId"], str)


def test_the_server_keeps_serving_after_a_bad_request(server: RunningServer) -> None:
    _exchange(server, b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = _exchange(
        server, b"GET /rest/v1/leads.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200
    assert json.loads(body)["errors"][0]["code"] == "601"
