"""Ctrl-C for long-running sync commands: stop soon, cleanly, and say so in one line.

The first Ctrl-C only sets an event: the sync finishes the page or push round in hand (its
transaction commits), stops, and releases the lease; pauses between retries end at once. A
second Ctrl-C raises :class:`KeyboardInterrupt` for those who cannot wait: the transaction in
hand rolls back and the lease is still released on the way out.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

INTERRUPTED = (
    "interrupted: the work in hand was finished and committed, the lease released; "
    "the next run continues from there"
)
"""The one line printed when the sync was stopped with Ctrl-C."""


@contextmanager
def first_ctrl_c_sets(interrupt: threading.Event, *also: threading.Event) -> Iterator[None]:
    """Within the block, the first SIGINT sets ``interrupt`` (and the events in ``also``);
    the next raises :class:`KeyboardInterrupt`. Outside the main thread (tests) signals are
    left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        if interrupt.is_set():
            raise KeyboardInterrupt
        interrupt.set()
        for event in also:
            event.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interruptible_pause(interrupt: threading.Event) -> Callable[[float], None]:
    """A ``sleep`` for the Dynamics client's retries that ends early once interrupted (the
    retries then give up quickly, leaving the work for the next run)."""

    def pause(seconds: float) -> None:
        interrupt.wait(seconds)

    return pause
