"""The sync filter's baseline wrapper for a lead switched Yes→No (B20, R64, R76)."""

from __future__ import annotations

from crmsync.sync.filtering import (
    FILTERED_OUT_KEY,
    FilterAction,
    agreed_baseline,
    sync_filter,
)


def test_a_wrapped_baseline_unwraps_to_the_last_agreed_values() -> None:
    """R64: while the filter excludes a lead its agreed values are kept, not lost."""
    agreed = {"firstName": "Ada", "city": "Turin"}
    assert agreed_baseline({FILTERED_OUT_KEY: agreed}) == agreed
    assert agreed_baseline(agreed) == agreed
    assert agreed_baseline({FILTERED_OUT_KEY: None}) is None
    assert agreed_baseline(None) is None


def test_the_wrapper_key_can_never_be_a_marketing_field() -> None:
    """REST field names are identifiers, so the wrapper never shadows a synced field."""
    assert not FILTERED_OUT_KEY.isidentifier()


def test_only_an_explicit_no_skips() -> None:
    """R63: absent, empty and Yes sync; only No skips, and only when the column is selected."""
    assert sync_filter({"new_synctomkto": False}, True) is FilterAction.SKIP
    assert sync_filter({"new_synctomkto": False}, False) is FilterAction.SYNC
    assert sync_filter({"new_synctomkto": None}, True) is FilterAction.SYNC
    assert sync_filter({}, True) is FilterAction.SYNC
