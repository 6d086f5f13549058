"""The client secret of a connection saved on the Setup page is stored encrypted: the row in
the database does not hold it, the commands and the server read it back with the key, a
secret stored in plain text by an older version is still read and then stored encrypted, and
a wrong key is a clear error (the Setup page then asks for the secret again)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from crmsync.errors import SecretKeyError
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.key_values import get_setting, set_setting
from crmsync.store.secret_box import SecretBox
from crmsync.store.tables import sync_settings
from crmsync.sync.connection import (
    CONNECTION_KEY,
    ConnectionChange,
    connection_in_effect,
    connection_shown,
    save_connection,
)

SECRET = "saved-secret-31f2e9"
FILE = DynamicsSettings(url="https://file.example.com", client_secret=Secret("file-secret"))


def _stored_text(engine: Engine) -> str:
    """The stored row as the database holds it (what a copy or a backup would give away)."""
    with engine.connect() as conn:
        value = conn.execute(
            select(sync_settings.c.value).where(sync_settings.c.key == CONNECTION_KEY)
        ).scalar_one()
    return json.dumps(value)


def _save(engine: Engine, box: SecretBox, secret: str = SECRET) -> None:
    change = ConnectionChange.checked("https://org.example.com", "t", "adfs", "app-id", secret)
    with engine.begin() as conn:
        save_connection(conn, FILE, change, actor="ana@example.com", box=box)


def test_the_saved_secret_is_encrypted_in_the_row(migrated_engine: Engine, tmp_path: Path) -> None:
    box = SecretBox(tmp_path / "secret.key", Secret(""))
    _save(migrated_engine, box)
    assert SECRET not in _stored_text(migrated_engine)
    effective = connection_in_effect(migrated_engine, FILE, box)
    assert effective.client_secret.reveal() == SECRET
    assert effective.url == "https://org.example.com"

    _save(migrated_engine, box, secret="")  # blank: keep the one in use, still encrypted
    assert SECRET not in _stored_text(migrated_engine)
    assert connection_in_effect(migrated_engine, FILE, box).client_secret.reveal() == SECRET


def test_a_plain_text_secret_is_read_and_stored_encrypted(
    migrated_engine: Engine, tmp_path: Path
) -> None:
    older = {"url": "https://org.example.com", "client_id": "app-id", "client_secret": SECRET}
    with migrated_engine.begin() as conn:
        set_setting(conn, CONNECTION_KEY, older)
    box = SecretBox(tmp_path / "secret.key", Secret(""))
    assert connection_in_effect(migrated_engine, FILE, box).client_secret.reveal() == SECRET
    assert SECRET not in _stored_text(migrated_engine)
    with migrated_engine.connect() as conn:
        stored = get_setting(conn, CONNECTION_KEY)
    assert isinstance(stored, dict) and "client_secret" not in stored
    assert connection_in_effect(migrated_engine, FILE, box).client_secret.reveal() == SECRET


def test_a_wrong_key_is_a_clear_error_and_the_setup_page_asks_again(
    migrated_engine: Engine, tmp_path: Path
) -> None:
    _save(migrated_engine, SecretBox(tmp_path / "first.key", Secret("")))
    wrong = SecretBox(tmp_path / "other.key", Secret(""))
    wrong.seal("x")
    with pytest.raises(SecretKeyError) as raised:
        connection_in_effect(migrated_engine, FILE, wrong)
    assert "Put the original key back" in raised.value.message
    assert SECRET not in raised.value.message

    shown, problem = connection_shown(migrated_engine, FILE, wrong)
    assert problem == raised.value.message
    assert shown.url == "https://org.example.com"  # the rest of the saved connection
    assert not shown.client_secret  # neither the saved secret nor the file's

    _save(migrated_engine, wrong, secret="entered-again-88")  # a new secret, with today's key
    assert connection_in_effect(migrated_engine, FILE, wrong).client_secret.reveal() == (
        "entered-again-88"
    )
