"""Security headers for the admin UI and API, and the sign-in rate limit.

The content security policy allows scripts, styles and images from this origin only (no inline
script or style), and no framing; responses are not sniffed and send no referrer elsewhere.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to answers under ``prefixes``."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the security headers to every admin-UI answer."""
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not (path == "/" or path.startswith(self.prefixes)):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                if path.startswith(("/admin", "/api/admin")) and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SignInLimiter:
    """At most ``attempts`` sign-in attempts per client address in ``window_seconds``."""

    def __init__(
        self,
        attempts: int = 10,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._attempts = attempts
        self._window = window_seconds
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def wait_seconds(self, client: str) -> int:
        """Record an attempt from ``client``; 0 if allowed, else whole seconds to wait."""
        now = self._clock()
        stamps = self._seen.setdefault(client, deque())
        while stamps and now - stamps[0] >= self._window:
            stamps.popleft()
        if len(stamps) >= self._attempts:
            return max(1, math.ceil(self._window - (now - stamps[0])))
        stamps.append(now)
        if len(self._seen) > 10_000:  # forget addresses that went quiet
            for key in [k for k, v in self._seen.items() if not v or now - v[-1] >= self._window]:
                del self._seen[key]
        return 0
