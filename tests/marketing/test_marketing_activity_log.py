"""The activity log's write side: what each builder writes is what the REST API reads back
(spec marketo-rest §5.3), and every activity row is written through one insert path."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from crmsync.errors import InvalidValueError
from crmsync.marketing import activity_log
from crmsync.marketing.activities import ActivityService
from crmsync.marketing.activity_types import SYNC_ERROR
from crmsync.marketing.values import utc_now_text

YESTERDAY = datetime.now(UTC) - timedelta(days=1)
SRC = Path(__file__).resolve().parents[2] / "src" / "crmsync"


def test_a_flow_step_activity_reads_back_with_its_campaign(migrated_engine: Engine) -> None:
    """A campaign's activity (any type, with its campaign id) is listed with that campaign."""
    service = ActivityService(migrated_engine)
    with migrated_engine.begin() as conn:
        activity_log.write_activities(
            conn,
            [
                activity_log.activity(7, 100_001, "Webinar", {"Room": "A"}, campaign_id=42),
                activity_log.sync_error(
                    7,
                    entity="lead",
                    crm_id="c-1",
                    direction="to_crm",
                    code="0x80040237",
                    message="duplicate",
                    when=utc_now_text(),
                ),
            ],
        )
    token = service.paging_token(YESTERDAY)
    custom = service.list(token, [100_001]).items
    error = service.list(token, [SYNC_ERROR]).items
    assert [(i["leadId"], i["campaignId"], i["primaryAttributeValue"]) for i in custom] == [
        (7, 42, "Webinar")
    ]
    assert custom[0]["attributes"] == [{"name": "Room", "value": "A"}]
    assert error[0]["primaryAttributeValue"] == "update"
    attributes = error[0]["attributes"]
    assert isinstance(attributes, list)
    assert {"name": "Message", "value": "duplicate"} in attributes


def test_attributes_of_every_kind_read_back(migrated_engine: Engine) -> None:
    """Text with quotes and accents, numbers (one past 64 bits) and booleans are
    written as JSON and read back as they were given."""
    given = {
        "Quote": 'say "hi", it\'s Zoë',
        "Count": 3,
        "Share": 0.25,
        "Huge": 2**70,
        "Flag": True,
    }
    with migrated_engine.begin() as conn:
        activity_log.write_activities(conn, [activity_log.activity(8, 100_002, "Kinds", given)])
    service = ActivityService(migrated_engine)
    items = service.list(service.paging_token(YESTERDAY), [100_002]).items
    assert items[0]["attributes"] == [{"name": k, "value": v} for k, v in given.items()]


def test_an_unknown_activity_type_is_refused() -> None:
    """Below the custom range, only the types crmsync defines can be written."""
    with pytest.raises(InvalidValueError):
        activity_log.activity(1, 9999, None, {})


def test_only_the_activity_log_inserts_activity_rows() -> None:
    """One insert path: no other module of the product writes into ``activities``."""
    pattern = re.compile(r"insert\(activities\)|activities\.insert\(|insert_many\([^)]*activities")
    writers = sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "emulator" not in path.parts and pattern.search(path.read_text())
    )
    assert writers == []
