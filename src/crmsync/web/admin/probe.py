"""Whether Dynamics answers, for ``/readyz``: a ``WhoAmI`` request (the cheapest call that
proves the org is reachable and the credentials work), made at most once per
:data:`PROBE_EVERY_SECONDS` and waited for at most :data:`PROBE_TIMEOUT_SECONDS`; between
probes the last answer is repeated. The reason given when Dynamics does not answer never holds
a secret.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from crmsync.errors import CrmsyncError
from crmsync.web.admin.context import AdminContext

PROBE_EVERY_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Whether Dynamics answered, and why not when it did not."""

    reachable: bool
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        """The result as ``/readyz`` shows it."""
        return (
            {"reachable": True} if self.reachable else {"reachable": False, "reason": self.reason}
        )


def who_am_i(ctx: AdminContext, timeout: float) -> ProbeResult:
    """Ask the org in effect ``WhoAmI``, each request given at most ``timeout`` seconds."""
    current = ctx.connection()
    if ctx.dynamics_client is None and not current.url.strip():
        return ProbeResult(False, "no Dynamics org is configured (see the Setup page)")
    secrets = [s.reveal() for s in (current.client_secret, current.password) if s.reveal()]
    try:
        if ctx.dynamics_client is not None:
            client = ctx.dynamics_client()
        else:
            client = ctx.open_dynamics(dataclasses.replace(current, timeout_seconds=timeout))
        with client:
            client.who_am_i()
    except CrmsyncError as exc:
        reason = exc.message
    except Exception as exc:  # a probe reports any failure, it never raises
        reason = f"unexpected {type(exc).__name__}"
    else:
        return ProbeResult(True)
    for secret in secrets:
        reason = reason.replace(secret, "********")
    return ProbeResult(False, f"Dynamics did not answer: {reason}")


class DynamicsProbe:
    """Runs :func:`who_am_i` in its own thread, at most once per ``every`` seconds of
    ``clock``; a probe still running after ``timeout`` seconds is reported as not answering
    (and is not started again until it ends)."""

    def __init__(
        self,
        check: Callable[[], ProbeResult],
        clock: Callable[[], float],
        *,
        every: float = PROBE_EVERY_SECONDS,
        timeout: float = PROBE_TIMEOUT_SECONDS,
    ) -> None:
        self._check = check
        self._clock = clock
        self._every = every
        self._timeout = timeout
        self._lock = threading.Lock()
        self._last: tuple[float, ProbeResult] | None = None
        self._running: Future[ProbeResult] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crmsync-probe")

    def result(self) -> ProbeResult:
        """The last answer when it is recent enough, else a new probe's."""
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last[0] < self._every:
                return self._last[1]
            if self._running is None or self._running.done():
                self._running = self._pool.submit(self._check)
            running = self._running
        try:
            found = running.result(timeout=self._timeout)
        except FutureTimeout:
            found = ProbeResult(False, f"Dynamics did not answer within {self._timeout:g} seconds")
        with self._lock:
            self._last = (now, found)
        return found

    def close(self) -> None:
        """Stop the probe's thread (after a probe in hand)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
