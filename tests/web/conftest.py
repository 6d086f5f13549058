"""Fixtures for the Marketo-compatible API tests (see ``marketo_harness``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from marketo_harness import MarketoHarness, build_harness
from sqlalchemy import Engine


@pytest.fixture
def marketo(migrated_engine: Engine) -> Iterator[MarketoHarness]:
    """A harness on SQLite and on PostgreSQL."""
    yield from build_harness(migrated_engine)
