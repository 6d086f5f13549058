"""Settings: one frozen value built at the edge (CLI / tests) and passed down.

Sources, later ones winning: built-in defaults, a TOML file (``crmsync.toml`` in the working
directory, or the path in ``CRMSYNC_CONFIG``), then ``CRMSYNC_*`` environment variables.
TOML keys are grouped in tables (``[database] url = ...``); the matching environment variable
joins table and key with an underscore (``CRMSYNC_DATABASE_URL``).

Secrets are held in :class:`Secret`, whose ``repr``/``str`` never show the value.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmsync.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret string that never shows itself in logs, reprs or tracebacks."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        """Return the secret; call only where it is sent to its destination."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    def __str__(self) -> str:
        return "********" if self._value else ""

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Where the marketing database lives (``[database]``), and the key that encrypts the
    secrets it stores (:mod:`crmsync.store.secret_box`): given here, or kept in a key file."""

    url: str = "sqlite:///crmsync.db"
    secret_key: Secret = Secret("")
    secret_key_file: str = ""  # "": beside a SQLite file, else crmsync-secret.key here


@dataclass(frozen=True, slots=True)
class DynamicsSettings:
    """How to reach Dynamics. ``auth_mode`` is ``client_credentials``, ``password`` or ``adfs``."""

    url: str = ""
    tenant: str = ""
    authority: str = "https://login.microsoftonline.com"
    auth_mode: str = "client_credentials"
    client_id: str = ""
    client_secret: Secret = Secret("")
    username: str = ""
    password: Secret = Secret("")
    api_version: str = "v9.2"
    ca_bundle: str = ""
    page_size: int = 5000
    batch_size: int = 1000
    concurrency: int = 4
    timeout_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """The background sync (``[sync]``): pause between cycles, lease, duplicate detection."""

    pause_seconds: float = 30.0
    lease_seconds: float = 30.0  # renewed every third of it; a vanished holder frees it
    duplicate_detection: bool = False  # ask Dynamics to run duplicate detection on writes


@dataclass(frozen=True, slots=True)
class WebSettings:
    """The web server (``[web]``): address, request limits, admin sessions, daily quota."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576
    calls_per_window: int = 100
    window_seconds: float = 20.0
    max_concurrent_calls: int = 10
    daily_calls: int = 50_000  # per API client per day (Marketo's 607 quota); 0 turns it off
    token_lifetime_seconds: int = 3600
    session_secret: Secret = Secret("")  # signs admin-UI CSRF tokens; random per process if unset
    admin_idle_seconds: float = 1800.0  # an admin-UI session unused this long is signed out


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Sending notifications by e-mail (``[smtp]``); off while ``host`` is empty."""

    host: str = ""
    port: int = 25
    username: str = ""
    password: Secret = Secret("")
    sender: str = "crmsync@localhost"
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    """All of crmsync's configuration."""

    database: DatabaseSettings = DatabaseSettings()
    dynamics: DynamicsSettings = DynamicsSettings()
    sync: SyncSettings = SyncSettings()
    web: WebSettings = WebSettings()
    smtp: SmtpSettings = SmtpSettings()

    def with_database(self, url: str) -> Settings:
        """Return a copy pointing at another database URL."""
        return dataclasses.replace(self, database=dataclasses.replace(self.database, url=url))


_SECTIONS: dict[str, type[Any]] = {
    "database": DatabaseSettings,
    "dynamics": DynamicsSettings,
    "sync": SyncSettings,
    "web": WebSettings,
    "smtp": SmtpSettings,
}


_EXPECTED = {Secret: "a string", bool: "a boolean", int: "an integer", float: "a number"}


def _kind(value: object) -> str:
    """The TOML name of a raw value's type, for error messages (never the value itself)."""
    kinds: tuple[tuple[type[Any] | tuple[type[Any], ...], str], ...] = (
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        ((list, tuple), "array"),
        (dict, "table"),
    )
    for types, name in kinds:
        if isinstance(value, types):
            return name
    return type(value).__name__


def _expected(current: object) -> str:
    for kind, text in _EXPECTED.items():
        if type(current) is kind:
            return text
    if isinstance(current, tuple):
        return "a list of strings or a comma-separated string"
    return "a string"


# Settings with a range: (lowest, highest) allowed, inclusive; ``None`` means unbounded.
# Dataverse pages hold at most 5,000 records and a $batch at most 1,000 requests.
_RANGES: dict[str, tuple[float, float | None]] = {
    "dynamics.page_size": (1, 5000),
    "dynamics.batch_size": (1, 1000),
    "dynamics.concurrency": (1, 64),
    "dynamics.timeout_seconds": (0.1, None),
    "sync.pause_seconds": (0, None),
    "sync.lease_seconds": (1, None),
    "web.port": (0, 65535),
    "web.max_body_bytes": (1, None),
    "web.calls_per_window": (1, None),
    "web.window_seconds": (0.1, None),
    "web.max_concurrent_calls": (1, None),
    "web.token_lifetime_seconds": (1, None),
    "web.admin_idle_seconds": (1, None),
    "web.daily_calls": (0, None),
    "smtp.port": (1, 65535),
}


def _check_range(where: str, value: object) -> None:
    bounds = _RANGES.get(where)
    if bounds is None or not isinstance(value, int | float) or isinstance(value, bool):
        return
    low, high = bounds
    if value < low or (high is not None and value > high):
        expected = f"{low:g}–{high:g}" if high is not None else f"at least {low:g}"
        raise ConfigurationError(f"setting {where} must be {expected}, got {value:g}")


def _coerce(section: str, name: str, current: object, raw: object) -> object:
    value = _converted(section, name, current, raw)
    _check_range(f"{section}.{name}", value)
    return value


def _converted(section: str, name: str, current: object, raw: object) -> object:
    where = f"{section}.{name}"
    try:
        return _coerce_value(current, raw)
    except TypeError:
        # The value itself is never quoted: it may be a secret.
        problem = f"got {_article(_kind(raw))}"
    except ValueError:
        problem = f"got {_article(_kind(raw))} that does not read as one"
    raise ConfigurationError(
        f"setting {where} has an invalid value: expected {_expected(current)}, {problem}"
    )


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _coerce_value(current: object, raw: object) -> object:
    """Convert ``raw`` to the type of ``current``: TypeError for a value of the wrong kind
    (a table or array where a string is expected...), ValueError for text that does not parse."""
    if isinstance(raw, dict) or (isinstance(raw, list | tuple) and not isinstance(current, tuple)):
        raise TypeError(raw)
    if isinstance(current, Secret):
        if not isinstance(raw, str):
            raise TypeError(raw)
        return Secret(raw)
    if isinstance(current, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ValueError(raw)
    if isinstance(raw, bool):  # TOML true/false is not a number nor text
        raise TypeError(raw)
    if isinstance(current, int):
        if isinstance(raw, float):
            raise TypeError(raw)
        return int(str(raw))
    if isinstance(current, float):
        return float(str(raw))
    if isinstance(current, tuple):
        if isinstance(raw, list | tuple):
            if not all(isinstance(item, str) for item in raw):
                raise TypeError(raw)
            return tuple(raw)
        return tuple(part.strip() for part in str(raw).split(",") if part.strip())
    return str(raw)


def load_settings(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, object]] | None = None,
) -> Settings:
    """Build :class:`Settings` from defaults, a TOML file, the environment and overrides."""
    env = os.environ if environ is None else environ
    path: Path | None = None
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigurationError(f"configuration file {path} not found")
    elif env.get("CRMSYNC_CONFIG"):
        path = Path(env["CRMSYNC_CONFIG"])
        if not path.is_file():
            raise ConfigurationError(f"configuration file {path} (CRMSYNC_CONFIG) not found")
    elif Path("crmsync.toml").is_file():
        path = Path("crmsync.toml")

    layered: dict[str, dict[str, object]] = {name: {} for name in _SECTIONS}
    if path is not None:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"configuration file {path} is not valid TOML: {exc}") from exc
        for section, values in document.items():
            if section not in _SECTIONS or not isinstance(values, dict):
                raise ConfigurationError(f"unknown section [{section}] in {path}")
            layered[section].update(values)
    for section, cls in _SECTIONS.items():
        for fld in dataclasses.fields(cls):
            key = f"CRMSYNC_{section.upper()}_{fld.name.upper()}"
            if key in env:
                layered[section][fld.name] = env[key]
    for section, values in (overrides or {}).items():
        layered[section].update(values)

    built: dict[str, object] = {}
    for section, cls in _SECTIONS.items():
        defaults = cls()
        known = {fld.name for fld in dataclasses.fields(cls)}
        kwargs: dict[str, object] = {}
        for name, raw in layered[section].items():
            if name not in known:
                raise ConfigurationError(f"unknown setting {section}.{name}")
            kwargs[name] = _coerce(section, name, getattr(defaults, name), raw)
        built[section] = cls(**kwargs)
    return Settings(**built)  # type: ignore[arg-type]
