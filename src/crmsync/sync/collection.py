"""Garbage collection paced by pages during long reads (B16, B17).

An initial read keeps one page of records (5,000 by default, each several dictionaries)
alive while it is planned and written. Python's automatic collector counts those
allocations, promotes the page's objects to its oldest generation and then runs full
collections over everything the process holds, dozens of times per read: measured at about
an eighth of a 220,000-record initial sync. The records themselves form no reference
cycles; they are freed by reference counting as soon as the next page replaces them.

:class:`PageCollector` turns the automatic collector off for the read and collects the
young generations once per page instead (a few milliseconds), with a full collection every
:data:`FULL_EVERY_PAGES` pages, so cyclic garbage from anything else in the process is still
reclaimed. The collector is switched back on when the read ends, whatever way it ends.
"""

from __future__ import annotations

import gc

FULL_EVERY_PAGES = 20


class PageCollector:
    """``with PageCollector() as collector:`` … ``collector.page_done()`` after each page."""

    def __init__(self) -> None:
        self._was_enabled = False
        self._pages = 0

    def __enter__(self) -> PageCollector:
        self._was_enabled = gc.isenabled()
        gc.disable()
        return self

    def page_done(self) -> None:
        """Collect after a page: the young generations, or everything every few pages."""
        self._pages += 1
        gc.collect(2 if self._pages % FULL_EVERY_PAGES == 0 else 1)

    def __exit__(self, *exc_info: object) -> None:
        if self._was_enabled:
            gc.enable()
