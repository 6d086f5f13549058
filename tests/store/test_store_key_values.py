"""The global sync switch read by the REST API (spec marketo-rest §7.2, B44)."""

from __future__ import annotations

from sqlalchemy import Engine

from crmsync.store.key_values import get_setting, get_sync_enabled, set_setting, set_sync_enabled


def test_sync_enabled_defaults_to_false_and_round_trips(migrated_engine: Engine) -> None:
    """Sync is off on a new database; enabling and disabling persist."""
    with migrated_engine.begin() as conn:
        assert get_sync_enabled(conn) is False
        set_sync_enabled(conn, True)
    with migrated_engine.begin() as conn:
        assert get_sync_enabled(conn) is True
        set_sync_enabled(conn, False)
    with migrated_engine.connect() as conn:
        assert get_sync_enabled(conn) is False


def test_settings_hold_json_values(migrated_engine: Engine) -> None:
    """Any JSON value can be stored under a key."""
    with migrated_engine.begin() as conn:
        assert get_setting(conn, "pause", 30) == 30
        set_setting(conn, "pause", {"seconds": 5, "entities": ["lead"]})
        set_setting(conn, "pause", {"seconds": 6, "entities": ["lead"]})
    with migrated_engine.connect() as conn:
        assert get_setting(conn, "pause") == {"seconds": 6, "entities": ["lead"]}
