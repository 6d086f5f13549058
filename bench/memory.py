"""The peak resident memory of this process over a stretch of a benchmark.

``getrusage``'s peak covers the whole process, and ``bench.run`` runs every module in one
process: a module measuring its own peak would see an earlier module's. :class:`PeakRss`
samples the current resident set (``/proc/self/statm``) on a background thread instead.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

_PAGE = os.sysconf("SC_PAGE_SIZE")


def current_rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    resident = int(Path("/proc/self/statm").read_text().split()[1])
    return resident * _PAGE / (1024 * 1024)


class PeakRss:
    """``with PeakRss() as peak:`` … ``peak.mb``: the highest resident memory seen inside."""

    def __init__(self, interval: float = 0.05) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.mb = 0.0

    def _sample(self) -> None:
        while True:
            self.mb = max(self.mb, current_rss_mb())
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> PeakRss:
        self.mb = current_rss_mb()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.mb = max(self.mb, current_rss_mb())
