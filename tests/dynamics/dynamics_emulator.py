"""Run the Dataverse emulator for the client tests: in process (an ASGI-to-sync bridge) or
over real HTTP(S) with uvicorn on 127.0.0.1, port 0.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn


class AsgiBridge(httpx.BaseTransport):
    """A synchronous httpx transport calling an ASGI app on a private event-loop thread."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._transport = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            inner = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._transport.handle_async_request(inner)
            content = await response.aread()
            await response.aclose()
            headers = [
                (name, value)
                for name, value in response.headers.raw
                if name.lower() not in (b"content-encoding", b"transfer-encoding")
            ]
            return response.status_code, headers, content

        try:
            status, headers, content = asyncio.run_coroutine_threadsafe(call(), self._loop).result(
                60
            )
        except (httpx.TransportError, RuntimeError, OSError) as exc:
            raise httpx.ReadError(f"in-process call failed: {exc}", request=request) from exc
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()


@contextmanager
def serve(app: Any, *, certfile: str | None = None, keyfile: str | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1, a free port; yield its base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the emulator did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if certfile else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
