"""Two campaign runner *processes* on one database drain the same events: every person's step
runs exactly once (PostgreSQL: claims with FOR UPDATE SKIP LOCKED; SQLite: one writer)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import Engine, func, select

from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import activities, campaign_events, campaign_results

pytestmark = pytest.mark.e2e

RUNNER = """
import sys
from crmsync.marketing.campaigns.runner import CampaignRunner
from crmsync.store.db import open_database
engine = open_database(sys.argv[1])
print(CampaignRunner(engine, batch_size=2).run_pending())
"""


def test_two_runner_processes_run_each_step_once(
    migrated_engine: Engine, database_url: str
) -> None:
    service = CampaignService(migrated_engine)
    campaign = service.create(
        {
            "name": "Raced",
            "active": True,
            "qualification": "every_time",
            "triggers": [{"type": "person_created"}],
            "flow": [
                {"type": "change_data_value", "field": "rating", "value": "Raced"},
                {"type": "change_data_value", "field": "leadStatus", "value": "Raced"},
            ],
        }
    )
    PersonService(migrated_engine).sync([{"email": f"race{i}@example.com"} for i in range(60)])

    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RUNNER, database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    handled = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        handled.append(int(out.strip().splitlines()[-1]))

    assert sum(handled) == 60
    with migrated_engine.connect() as conn:
        results = conn.execute(
            select(campaign_results.c.person_id, campaign_results.c.step_index).where(
                campaign_results.c.campaign_id == campaign.id
            )
        ).all()
        pending = conn.execute(
            select(func.count()).where(campaign_events.c.processed_at.is_(None))
        ).scalar_one()
        changes = conn.execute(
            select(func.count()).where(
                activities.c.campaign_id == campaign.id, activities.c.field_name == "rating"
            )
        ).scalar_one()
    assert len(results) == 120 and len(set(results)) == 120
    assert pending == 0
    assert changes == 60  # one Change Data Value of the rating per person, never two
