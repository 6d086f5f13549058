"""The demo lock goes with the demo's own process: a process the demo forked (and still
running) does not keep it, so a second demo right after a killed one starts; while the demo
lives, a second one is refused with a plain message."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from crmsync.cli.demo_lock import demo_lock
from crmsync.errors import LeaseHeldError

HOLDER = """
import os, sys, time
from pathlib import Path
from crmsync.cli.demo_lock import demo_lock

with demo_lock(Path(sys.argv[1])):
    if os.fork() == 0:  # a helper the demo forked, still busy after the demo is killed
        print(os.getpid(), flush=True)  # running: what follows a fork has run in it
        time.sleep(60)
        os._exit(0)
    time.sleep(60)
"""


def test_a_killed_demos_forked_child_does_not_keep_the_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    child = int(holder.stdout.readline())
    try:
        refused = pytest.raises(LeaseHeldError, match="a crmsync demo is already running")
        with refused, demo_lock(tmp_path):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        os.kill(child, 0)  # the forked child is still alive...
        with demo_lock(tmp_path):  # ...and the lock went with the demo's own process
            assert (tmp_path / "demo.lock").read_text().strip() == str(os.getpid())
    finally:
        holder.kill()
        with contextlib.suppress(ProcessLookupError):  # the forked child we started
            os.kill(child, signal.SIGKILL)
