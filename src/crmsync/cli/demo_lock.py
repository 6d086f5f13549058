"""One demo per folder: a running ``crmsync demo`` holds an exclusive lock on
``.demo/demo.lock`` for as long as it runs, so a second one started beside it says so and stops
before changing anything (its API client, the databases and the ports stay the running
demo's). The lock goes with the process, however it ends; the file keeps the holder's pid.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from crmsync.errors import LeaseHeldError

LOCK_FILE = "demo.lock"


@contextmanager
def demo_lock(directory: Path) -> Iterator[None]:
    """Hold the demo lock of ``directory`` while the block runs; raise
    :class:`~crmsync.errors.LeaseHeldError` at once when another demo holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = (directory / LOCK_FILE).open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            process = f" (process {holder})" if holder.isdigit() else ""
            raise LeaseHeldError(
                f"a crmsync demo is already running in {directory}{process}; nothing was "
                "changed and its printed URLs and credentials still work. Use that one, or "
                "stop it (Ctrl-C in its terminal) before starting another."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
