"""An initial read's progress total above the 5,000 ``$count`` cap comes from
``RetrieveTotalRecordCount`` (spec §3), against the emulator: ``25000/?`` no more."""

from __future__ import annotations

from dynamics_emulator import InProcessEmulator


def test_record_total_above_the_count_cap_is_the_org_total() -> None:
    running = InProcessEmulator(leads=5_100)
    try:
        with running.client() as client:
            total = client.tracking.record_total("lead")
        assert total == running.count("lead")
        assert total is not None and total > 5_000
    finally:
        running.close()
