"""The short soak inside ``make test``: a seeded workload of about a hundred operations with
faults and three kills of ``crmsync sync run`` (two racing processes on PostgreSQL), checked
against the model; then an inconsistency planted in what was read must be caught.

Real processes on 127.0.0.1: the emulator, ``crmsync serve --no-sync`` and the sync.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from soak.check import compare
from soak.model import TRACKED
from soak.run import Options, run_one

# Real processes on a shared, loaded machine: allow more than the suite's default timeout.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

SEED = int(os.environ.get("CRMSYNC_SOAK_SEED", "20261207"))


def test_a_short_soak_loses_nothing_and_its_checker_catches_a_planted_change(
    database_url: str, tmp_path: Path
) -> None:
    """Both sides converge to what the rules allow after faults and kills; then one person's
    value changed behind the sync's back is reported as a mismatch.

    The default seed qualifies a lead and then edits its person's job title: under load the
    edit used to be pushed to the qualified lead before the contact was read, and the
    contact's older copy then overwrote it on both sides (tests/sync/test_sync_qualify_push.py
    holds the deterministic version)."""
    label = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    options = Options(seed=SEED, operations=100, kills=3, leads=12, fault_every=15)

    outcome = run_one(options, label, database_url, tmp_path)

    explained = "\n".join(m.explain() for m in outcome.check.mismatches[:10])
    assert outcome.passed, f"{outcome.summary}\n{explained}"
    assert sum(outcome.report["kills"].values()) == 3
    assert sum(outcome.report["operations"].values()) >= 80
    assert outcome.check.checked_fields > 0
    assert " lost=0 duplicates=0 mismatches=0 " in outcome.summary

    pair = next(
        p
        for p in outcome.pairs
        if p.person_id in outcome.seen.people and p.poison is None and not p.person_deleted
    )
    _, field = TRACKED[1]
    outcome.seen.people[pair.person_id][field] = "planted by the test"
    planted = compare(outcome.pairs, outcome.seen)
    assert [(m.kind, m.pair, m.field) for m in planted.mismatches] == [
        ("mismatch", pair.key, TRACKED[1][0])
    ]
