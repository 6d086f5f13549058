"""Settings: file, environment and secrets handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsync.errors import ConfigurationError
from crmsync.settings import Secret, load_settings


def test_defaults_use_local_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.database.url == "sqlite:///crmsync.db"
    assert settings.sync.pause_seconds == 30.0


def test_environment_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "crmsync.toml"
    config.write_text('[dynamics]\nurl = "https://org.example"\npage_size = 100\n')
    settings = load_settings(
        config,
        environ={"CRMSYNC_DYNAMICS_PAGE_SIZE": "250", "CRMSYNC_DYNAMICS_CLIENT_SECRET": "s3"},
    )
    assert settings.dynamics.url == "https://org.example"
    assert settings.dynamics.page_size == 250
    assert settings.dynamics.client_secret.reveal() == "s3"


def test_secret_never_shows_in_repr() -> None:
    settings = load_settings(environ={"CRMSYNC_DYNAMICS_CLIENT_SECRET": "hunter2-very-secret"})
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.dynamics.client_secret)
    assert repr(Secret("")) == "Secret('')"


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[database]\nurll = 'x'\n")
    with pytest.raises(ConfigurationError, match=r"database\.urll"):
        load_settings(config, environ={})


def test_bad_number_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"dynamics\.page_size"):
        load_settings(environ={"CRMSYNC_DYNAMICS_PAGE_SIZE": "lots"})


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_settings(tmp_path / "absent.toml", environ={})


@pytest.mark.parametrize(
    ("toml_line", "key", "expected", "got"),
    [
        ('client_secret = ["x"]', "dynamics.client_secret", "a string", "an array"),
        ("client_secret = 12345", "dynamics.client_secret", "a string", "an integer"),
        ("password = { value = 'x' }", "dynamics.password", "a string", "a table"),
        ('url = ["https://org.example"]', "dynamics.url", "a string", "an array"),
        ("page_size = [1]", "dynamics.page_size", "an integer", "an array"),
        ("page_size = true", "dynamics.page_size", "an integer", "a boolean"),
    ],
)
def test_wrong_type_in_the_file_is_refused_naming_key_and_types(
    tmp_path: Path, toml_line: str, key: str, expected: str, got: str
) -> None:
    config = tmp_path / "crmsync.toml"
    config.write_text(f"[dynamics]\n{toml_line}\n")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config, environ={})
    message = caught.value.message
    assert key in message
    assert f"expected {expected}" in message
    assert f"got {got}" in message
    assert "'x'" not in message and "12345" not in message  # a secret is never echoed


def test_unparsable_text_says_what_was_expected() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={"CRMSYNC_DYNAMICS_PAGE_SIZE": "lots"})
    assert "expected an integer, got a string that does not read as one" in caught.value.message
    assert "lots" not in caught.value.message
