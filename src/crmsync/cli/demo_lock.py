"""One demo per folder: a running ``crmsync demo`` holds an exclusive lock on
``.demo/demo.lock`` for as long as it runs, so a second one started beside it says so and stops
before changing anything (its API client, the databases and the ports stay the running
demo's). The lock goes with the process, however it ends; the file keeps the holder's pid.

A ``flock`` belongs to the open file, not the process: any process sharing it keeps the lock
held after the demo is gone. So the file is shared with nobody: it is closed on ``exec``
(never inherited by a program the demo starts), and a process forked from the demo (a pool
worker, a library's helper) closes its copy at once, so that a second demo started right
after a killed one is not refused while the dying one's children finish.
"""

from __future__ import annotations

import contextlib
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
        held = _keep_to_this_process(handle.fileno())
        try:
            yield
        finally:
            held.clear()  # a later fork must not close whatever reuses the number
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def _keep_to_this_process(fd: int) -> set[int]:
    """Make sure no other process holds the lock's file: not across ``exec`` (Python opens
    files so already; said here as it matters) and not across ``fork``. Returns the set of
    descriptors a forked child closes; empty it when the lock is released."""
    os.set_inheritable(fd, False)
    held = {fd}

    def close_in_child() -> None:
        for number in list(held):
            with contextlib.suppress(OSError):
                os.close(number)
        held.clear()

    os.register_at_fork(after_in_child=close_in_child)
    return held
