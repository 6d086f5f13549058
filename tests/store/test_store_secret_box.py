"""The key that encrypts secrets stored in the database: created once, owner-only (0600),
never replaced; a key given in the settings wins; a missing, wrong or malformed key is a clear
error that says what to do and never shows a secret or the key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from crmsync.errors import ConfigurationError, SecretKeyError
from crmsync.settings import DatabaseSettings, Secret, load_settings
from crmsync.store.secret_box import DEFAULT_KEY_FILE, SecretBox, key_location

SECRET = "client-secret-7a6b5c4d"


def test_sealing_creates_an_owner_only_key_file_and_keeps_it(tmp_path: Path) -> None:
    box = SecretBox(tmp_path / "keys" / "crmsync.key", Secret(""))
    token = box.seal(SECRET)
    assert SECRET not in token
    mode = stat.S_IMODE(box.key_file.stat().st_mode)
    assert mode == 0o600
    key = box.key_file.read_text()
    again = box.seal(SECRET)
    assert box.key_file.read_text() == key  # never replaced
    assert token != again  # a fresh IV for every value
    assert box.unseal(token) == SECRET == box.unseal(again)
    assert [p.name for p in box.key_file.parent.iterdir()] == ["crmsync.key"]  # no draft left


def test_a_wrong_key_is_a_clear_error_naming_what_to_do(tmp_path: Path) -> None:
    token = SecretBox(tmp_path / "first.key", Secret("")).seal(SECRET)
    other = SecretBox(tmp_path / "other.key", Secret(""))
    other.seal("something else")  # a valid key, but not the one of the token
    with pytest.raises(SecretKeyError) as raised:
        other.unseal(token)
    message = raised.value.message
    assert "cannot be decrypted with the key file" in message and "other.key" in message
    assert "enter the client secret again on the Setup page" in message
    assert SECRET not in message and other.key_file.read_text().strip() not in message
    assert isinstance(raised.value, ConfigurationError)


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    token = SecretBox(tmp_path / "gone.key", Secret("")).seal(SECRET)
    (tmp_path / "gone.key").unlink()
    with pytest.raises(SecretKeyError, match=r"its key file .*gone\.key is missing\. Put the key"):
        SecretBox(tmp_path / "gone.key", Secret("")).unseal(token)


def test_a_malformed_key_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not-a-key\n")
    with pytest.raises(SecretKeyError, match=r"The key file .*bad.key is not a valid key"):
        SecretBox(bad, Secret("")).seal(SECRET)


def test_a_key_given_in_the_settings_wins_over_the_file(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = load_settings(
        environ={
            "CRMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}",
            "CRMSYNC_DATABASE_SECRET_KEY": key,
        }
    )
    box = SecretBox.of(settings.database)
    token = box.seal(SECRET)
    assert not box.key_file.exists()  # nothing written to disk
    assert Fernet(key.encode()).decrypt(token.encode()).decode() == SECRET
    assert key not in repr(settings)
    wrong = SecretBox(box.key_file, Secret(Fernet.generate_key().decode()))
    with pytest.raises(SecretKeyError, match="the key in CRMSYNC_DATABASE_SECRET_KEY"):
        wrong.unseal(token)


def test_the_key_file_sits_beside_the_sqlite_database(tmp_path: Path) -> None:
    beside = key_location(DatabaseSettings(url=f"sqlite:///{tmp_path / 'crm.db'}"))
    assert beside == tmp_path / "crm.db.key"
    assert key_location(DatabaseSettings(url="postgresql+psycopg://u@h/db")) == Path(
        DEFAULT_KEY_FILE
    )
    chosen = DatabaseSettings(url="sqlite://", secret_key_file=str(tmp_path / "k"))
    assert key_location(chosen) == tmp_path / "k"
