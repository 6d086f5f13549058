"""The push of 10,000 updates beside raw ``$batch``, on its own, into SQLite and PostgreSQL.

The same figure as :mod:`bench.bench_sync`'s push, without the 230,058-record initial sync
around it: the emulator seeds a smaller org (25,000 leads and the rest), one untimed initial
sync links its leads, and each sample then pushes ``pushes`` title changes and sends as many
prepared updates raw (:mod:`bench.push_limits`). Run it alone with ``--only push``.

Quick mode seeds 2,000 leads and pushes 500 updates.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from bench.bench_sync import figure, summarise
from bench.org_harness import (
    Emulator,
    samples_by_store,
)
from bench.push_limits import push_and_raw
from crmsync.dynamics.factory import build_client
from crmsync.marketing.persons import PersonService
from crmsync.store.db import open_database
from crmsync.store.tables import crm_links
from crmsync.sync.cycle import SyncCycle


def run(quick: bool) -> dict[str, object]:
    """Push ``pushes`` updates per sample and store; the push ÷ raw ``$batch`` figures."""
    leads, pushes = (2_000, 500) if quick else (25_000, 10_000)
    samples = samples_by_store(leads, lambda org, url: push_sample(org, url, pushes))
    figures = [
        figure(
            f"push ÷ raw $batch, push module ({'SQLite' if kind == 'sqlite' else 'PostgreSQL'})",
            [s["push_vs_raw_batch"] for s in found],
            0.5,
            at_least=True,
        )
        for kind, found in samples.items()
    ]
    return {
        "seeded_leads": leads,
        "pushes": pushes,
        "figures": figures,
        "summary": {kind: summarise(found) for kind, found in samples.items()},
        "samples": samples,
    }


def push_sample(org: Emulator, url: str, pushes: int) -> dict[str, Any]:
    """An untimed initial sync into the store at ``url``, then the push and raw ``$batch``."""
    engine = open_database(url)
    try:
        with build_client(org.settings()) as client:
            cycle = SyncCycle(engine, client)
            cycle.run()
            with engine.connect() as conn:
                linked = conn.execute(
                    select(crm_links.c.crm_id, crm_links.c.local_id)
                    .where(crm_links.c.entity == "lead")
                    .order_by(crm_links.c.id)
                    .limit(2 * pushes)
                ).all()
            service = PersonService(engine)
            pairs = [(str(crm_id), int(local)) for crm_id, local in linked]
            tag = uuid.uuid4().hex[:6]
            return push_and_raw(org, client, cycle, service, pairs, pushes=pushes, tag=tag)
    finally:
        engine.dispose()
