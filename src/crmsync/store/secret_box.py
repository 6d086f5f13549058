"""Secrets kept in the database (the Dynamics client secret saved on the Setup page) are
encrypted at rest, so that a copy of the database or a backup does not give the secret away.

**Why Fernet** (from ``cryptography``, the Python Cryptographic Authority's library, already
used under the Microsoft sign-in library): it is authenticated encryption (AES-128-CBC with an
HMAC-SHA256 over a versioned token), so a wrong key or an altered value is detected instead of
decrypting to garbage, and it has no parameter to get wrong (the key is generated, the IV is
drawn for every value). Nothing here is hand-made cryptography.

**Where the key is** (:func:`key_location`), first found wins:

1. ``[database] secret_key`` / ``CRMSYNC_DATABASE_SECRET_KEY``: the key itself (for
   deployments that inject secrets through the environment);
2. ``[database] secret_key_file`` / ``CRMSYNC_DATABASE_SECRET_KEY_FILE``: a file holding it;
3. otherwise a file beside the SQLite database (``crmsync.db`` → ``crmsync.db.key``), or, for
   other databases, ``crmsync-secret.key`` in the working directory.

The key file is created, readable by its owner only (mode 0600), the first time a secret is
stored; it is never overwritten. The key is never logged nor put in a message; errors name the
file or the setting and say what to do.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from crmsync.errors import SecretKeyError
from crmsync.settings import DatabaseSettings, Secret

KEY_ENV = "CRMSYNC_DATABASE_SECRET_KEY"
DEFAULT_KEY_FILE = "crmsync-secret.key"


def key_location(database: DatabaseSettings) -> Path:
    """The key file of ``database`` (whether or not it exists yet)."""
    if database.secret_key_file.strip():
        return Path(database.secret_key_file.strip()).expanduser()
    try:
        url = make_url(database.url)
    except ArgumentError:
        return Path(DEFAULT_KEY_FILE)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database)
        return path.with_name(f"{path.name}.key")
    return Path(DEFAULT_KEY_FILE)


@dataclass(frozen=True, slots=True)
class SecretBox:
    """Encrypts (:meth:`seal`) and decrypts (:meth:`unseal`) secrets stored in the database,
    with the key given in the settings or kept in :attr:`key_file`."""

    key_file: Path
    given_key: Secret  # a key given in the settings wins over the file; Secret("") for none

    @classmethod
    def of(cls, database: DatabaseSettings) -> SecretBox:
        """The box of ``database``'s settings."""
        return cls(key_location(database), database.secret_key)

    def seal(self, secret: str) -> str:
        """``secret`` encrypted (a Fernet token); creates the key file when there is none."""
        return self._fernet(create=True).encrypt(secret.encode("utf-8")).decode("ascii")

    def unseal(self, token: str) -> str:
        """The secret in ``token``, or :class:`SecretKeyError` saying what to do."""
        fernet = self._fernet(create=False)
        try:
            return fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretKeyError(
                f"The client secret saved on the Setup page cannot be decrypted with "
                f"{self._source()}: it is not the key it was saved with. Put the original key "
                "back, or enter the client secret again on the Setup page and save."
            ) from None

    def _source(self) -> str:
        if self.given_key:
            return f"the key in {KEY_ENV} ([database] secret_key)"
        return f"the key file {self.key_file}"

    def _fernet(self, *, create: bool) -> Fernet:
        if self.given_key:
            return self._checked(self.given_key.reveal())
        try:
            text = self.key_file.read_text(encoding="ascii")
        except FileNotFoundError:
            if not create:
                raise SecretKeyError(
                    f"The client secret saved on the Setup page is encrypted, but its key file "
                    f"{self.key_file} is missing. Put the key file back (or give the key in "
                    f"{KEY_ENV}), or enter the client secret again on the Setup page and save."
                ) from None
            return self._checked(self._create_key_file())
        except (OSError, UnicodeError) as exc:
            raise SecretKeyError(
                f"The key file {self.key_file} cannot be read ({type(exc).__name__}): check "
                "that it is a file the crmsync user may read."
            ) from None
        return self._checked(text)

    def _create_key_file(self) -> str:
        key = Fernet.generate_key().decode("ascii")
        folder = self.key_file.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # written whole under a private name (owner-only, mode 0600), then linked in place:
            # a second process never reads half a key, and an existing key is never replaced
            handle, draft = tempfile.mkstemp(dir=folder, prefix=".crmsync-key-")
            try:
                os.fchmod(handle, 0o600)
                with os.fdopen(handle, "w", encoding="ascii") as out:
                    out.write(key + "\n")
                os.link(draft, self.key_file)
            finally:
                os.unlink(draft)
        except FileExistsError:
            return self.key_file.read_text(encoding="ascii")
        except OSError as exc:
            raise SecretKeyError(
                f"The key file {self.key_file} cannot be created ({type(exc).__name__}): set "
                "[database] secret_key_file to a writable place, or give the key in "
                f"{KEY_ENV}."
            ) from None
        return key

    def _checked(self, key: str) -> Fernet:
        try:
            return Fernet(key.strip().encode("ascii"))
        except (ValueError, UnicodeError):
            source = self._source()
            raise SecretKeyError(
                f"{source[0].upper()}{source[1:]} is not a valid key (it must be 32 url-safe "
                "base64-encoded bytes, as made by crmsync). Put the original key back, or "
                "remove it and enter the client secret again on the Setup page."
            ) from None
