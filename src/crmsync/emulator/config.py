"""Configuration of the Dataverse Web API emulator: tenant, users, limits, faults.

The configuration is one frozen :class:`EmulatorConfig`, built either by :func:`default_config`
or from a TOML file by :func:`load_emulator_config`. Everything that varies while the emulator
runs (fault knobs changed through the admin API, token and delta-token epochs, counters) lives
in :class:`crmsync.emulator.runtime.EmulatorRuntime`, never here.

TOML format (every key optional; unknown keys are refused)::

    tenant = "5c7d...-..."              # tenant id used in the token endpoint path
    seed = 42                            # makes ids, faults and seeded data deterministic
    token_lifetime_seconds = 3600
    request_limit = 6000                 # per user, per sliding window (spec §8)
    request_window_seconds = 300
    execution_time_limit_ms = 1200000    # combined execution time per user per window
    concurrency_limit = 52
    delta_token_max_age_days = 7
    max_page_size = 5000
    admin_key = "..."                    # key for the /_emulator/ admin API
    org_url = "https://org.crm.example"  # also accept tokens for this org URL (spec §1a)
    secured_attributes = ["lead.revenue"]

    [change_tracking]
    task = true

    [faults]
    error_rate = 0.0                     # see FaultSettings

    [[users]]                            # when present, replaces the default users
    fullname = "crmsync sync"
    kind = "application"                 # or "user"
    client_id = "..."                    # application users
    client_secret = "..."
    # upn = "alex@contoso.example"       # ordinary users
    # password = "..."
    # mfa_required = true                # password grant refused (AADSTS50076)
    can_impersonate = true               # may send CallerObjectId / MSCRMCallerID
    # entra_object_id = "..."            # Entra object id (CallerObjectId); default derived
    privileges = { "*" = ["create", "read", "write", "delete", "append", "appendto"] }
    readable_secured = ["lead.revenue"]
    updatable_secured = ["lead.revenue"]

    [[plugin_rules]]
    entity = "lead"
    attribute = "telephone1"
    kind = "regex"                       # or "required_on_create"
    pattern = "^\\+?[0-9 ()-]+$"
    message = "Business phone must contain digits only."
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from crmsync.emulator.errors import EmulatorConfigError
from crmsync.emulator.secret import Secret

PRIVILEGES: frozenset[str] = frozenset({"create", "read", "write", "delete", "append", "appendto"})
USER_KINDS: frozenset[str] = frozenset({"application", "user"})
PLUGIN_RULE_KINDS: frozenset[str] = frozenset({"regex", "required_on_create"})
FAULT_ERROR_STATUSES: frozenset[int] = frozenset({500, 502, 503, 504})
HTTP_METHODS: frozenset[str] = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})

# Change tracking is a per-table switch in Dataverse (spec §4); these are on by default.
DEFAULT_CHANGE_TRACKING: Mapping[str, bool] = MappingProxyType(
    {
        "lead": True,
        "contact": True,
        "account": True,
        "systemuser": True,
        "team": True,
        "opportunity": True,
        "campaign": False,
        "list": False,
        "task": False,
    }
)

_ID_NAMESPACE = uuid.UUID("8a4c3f5e-2d71-4b0e-9c6a-1f3e5d7b9a20")


def stable_id(*parts: object) -> str:
    """Return a GUID string determined only by ``parts`` (used for every emulator id)."""
    return str(uuid.uuid5(_ID_NAMESPACE, "/".join(str(part) for part in parts)))


@dataclass(frozen=True, slots=True)
class EmulatorUser:
    """A Dataverse user the emulator knows: an application user or an ordinary (licensed) user.

    ``privileges`` maps an entity logical name (or ``"*"`` for every entity without its own
    entry) to the privileges held on it; an entity's own entry replaces ``"*"``, it does not
    add to it. Secrets are held in :attr:`EmulatorConfig.secrets`, never here.

    ``entra_object_id`` is the user's object id in Microsoft Entra ID (Dataverse's
    ``azureactivedirectoryobjectid``): the ``oid`` of its tokens and the value of the
    ``CallerObjectId`` header, while ``MSCRMCallerID`` carries the ``systemuserid``. Left empty,
    it is derived from the ``systemuserid``, so it is the same on every run.
    """

    systemuserid: str
    fullname: str
    kind: str
    client_id: str | None
    upn: str | None
    privileges: Mapping[str, frozenset[str]]
    readable_secured: frozenset[tuple[str, str]] = frozenset()
    updatable_secured: frozenset[tuple[str, str]] = frozenset()
    mfa_required: bool = False  # the password grant then fails as Entra's does (spec §1b)
    can_impersonate: bool = False  # holds prvActOnBehalfOfAnotherUser (CallerObjectId header)
    entra_object_id: str = ""

    def __post_init__(self) -> None:
        if not self.entra_object_id:
            derived = stable_id("entra-object", self.systemuserid.lower())
            object.__setattr__(self, "entra_object_id", derived)

    def can(self, entity: str, privilege: str) -> bool:
        """Whether the user holds ``privilege`` (create, read, ...) on ``entity``."""
        held = self.privileges.get(entity)
        if held is None:
            held = self.privileges.get("*", frozenset())
        return privilege in held

    def acting_for(self, target: EmulatorUser) -> EmulatorUser:
        """``target`` as impersonated by this user: the privileges both hold (spec §9).

        Dataverse runs an impersonated request with the intersection of the caller's and the
        impersonated user's privileges; field-security access is intersected the same way.
        """
        keys = set(self.privileges) | set(target.privileges) | {"*"}
        shared: dict[str, frozenset[str]] = {}
        for key in keys:
            mine = self.privileges.get(key, self.privileges.get("*", frozenset()))
            theirs = target.privileges.get(key, target.privileges.get("*", frozenset()))
            shared[key] = mine & theirs
        return dataclasses.replace(
            target,
            privileges=MappingProxyType(shared),
            readable_secured=self.readable_secured & target.readable_secured,
            updatable_secured=self.updatable_secured & target.updatable_secured,
            can_impersonate=False,
        )

    def can_read_secured(self, entity: str, attribute: str) -> bool:
        """Whether the user's field-security profile lets it read a secured column."""
        return (entity, attribute) in self.readable_secured

    def can_update_secured(self, entity: str, attribute: str) -> bool:
        """Whether the user's field-security profile lets it create/update a secured column."""
        return (entity, attribute) in self.updatable_secured


@dataclass(frozen=True, slots=True)
class PluginRule:
    """A simulated server-side plug-in that rejects writes (spec §10, error 0x80040265).

    ``kind`` is ``"regex"`` (a non-null value of ``attribute`` must match ``pattern`` in full)
    or ``"required_on_create"`` (``attribute`` must be present and not empty on create).
    """

    entity: str
    attribute: str
    kind: str
    pattern: str
    message: str

    def violated_by(self, values: Mapping[str, object], *, creating: bool) -> bool:
        """Whether a create/update carrying ``values`` breaks this rule."""
        if self.kind == "required_on_create":
            if not creating:
                return self.attribute in values and values[self.attribute] in (None, "")
            return values.get(self.attribute) in (None, "")
        if self.attribute not in values or values[self.attribute] is None:
            return False
        return re.fullmatch(self.pattern, str(values[self.attribute])) is None


# (knob, lowest, highest) of the numeric fault knobs without a range of their own.
_KNOB_RANGES = (
    ("latency_ms", 0, 120_000),  # two minutes: Dataverse's own request timeout is about that
    ("throttle_burst", 0, 1_000_000_000),
    ("throttle_retry_after_seconds", 1, 86_400),
)


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """Fault-injection knobs applied to ``/api/data/*`` requests (changeable at run time).

    ``error_rate``: fraction (0..1) of requests answered with ``error_status`` (5xx).
    ``latency_ms``: delay added before every request is handled.
    ``throttle_burst``: the next N requests are refused with 429 and ``Retry-After:
    throttle_retry_after_seconds`` (the counter goes down as they are served).
    ``drop_rate``: fraction (0..1) of requests whose connection is closed with no response.
    ``lost_answer_rate``: fraction (0..1) of requests that are carried out (a write is applied)
    but whose answer is lost: the connection is closed before the response body.
    ``methods`` / ``path_contains``: when set, the knobs apply only to requests with one of
    these HTTP methods / whose path contains this text (e.g. ``["POST"]`` and ``"$batch"``);
    other requests pass untouched.
    Random draws come from the runtime's seeded generator, so a run is reproducible.
    """

    error_rate: float = 0.0
    error_status: int = 503
    latency_ms: float = 0.0
    throttle_burst: int = 0
    throttle_retry_after_seconds: int = 5
    drop_rate: float = 0.0
    lost_answer_rate: float = 0.0
    methods: tuple[str, ...] = ()
    path_contains: str = ""

    def applies_to(self, method: str, path: str) -> bool:
        """Whether the knobs apply to a request with this method and path."""
        if self.methods and method.upper() not in self.methods:
            return False
        return not self.path_contains or self.path_contains in path

    def validated(self) -> FaultSettings:
        """Return self, or raise :class:`EmulatorConfigError` naming the bad knob."""
        for name in ("error_rate", "drop_rate", "lost_answer_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise EmulatorConfigError(f"fault {name} must be between 0 and 1, got {value}")
        if self.error_status not in FAULT_ERROR_STATUSES:
            allowed = ", ".join(str(s) for s in sorted(FAULT_ERROR_STATUSES))
            raise EmulatorConfigError(f"fault error_status must be one of {allowed}")
        # Upper bounds keep a typo from hanging every request (1e12 ms of latency) or making
        # clients wait for days; NaN and infinities fail every comparison, so they fail here.
        for name, low, high in _KNOB_RANGES:
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise EmulatorConfigError(
                    f"fault {name} must be between {low:,} and {high:,}, got {value}"
                )
        unknown = sorted(set(self.methods) - HTTP_METHODS)
        if unknown:
            raise EmulatorConfigError(f"fault methods: unknown HTTP method(s) {', '.join(unknown)}")
        return self

    def as_dict(self) -> dict[str, Any]:
        """The knobs as a JSON-ready mapping (the admin API's representation)."""
        knobs = dataclasses.asdict(self)
        knobs["methods"] = list(self.methods)
        return knobs


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything fixed for one emulator instance. Secrets are excluded from the repr."""

    tenant: str
    users: tuple[EmulatorUser, ...]
    secured_attributes: frozenset[tuple[str, str]] = frozenset()
    plugin_rules: tuple[PluginRule, ...] = ()
    change_tracking: Mapping[str, bool] = field(default_factory=lambda: DEFAULT_CHANGE_TRACKING)
    delta_token_max_age_days: float = 7.0
    max_page_size: int = 5000
    token_lifetime_seconds: int = 3600
    request_limit: int = 6000
    request_window_seconds: float = 300.0
    execution_time_limit_ms: float = 1_200_000.0
    concurrency_limit: int = 52
    faults: FaultSettings = FaultSettings()
    seed: int = 42
    organization_id: str = stable_id("organization")
    business_unit_id: str = stable_id("businessunit")
    public_client_id: str = stable_id("client", "public")
    secrets: Mapping[str, Secret] = field(default_factory=dict, repr=False)
    admin_key: Secret = field(default=Secret("emulator-admin-key"), repr=False)
    # An org URL tokens may be issued for besides the URL a request reaches (e.g. behind a
    # proxy); empty: only the URL the request reached.
    org_url: str = ""

    def user_by_client_id(self, client_id: str) -> EmulatorUser | None:
        """The application user bound to an app registration's client id."""
        wanted = client_id.lower()
        for user in self.users:
            if user.client_id is not None and user.client_id.lower() == wanted:
                return user
        return None

    def user_by_upn(self, upn: str) -> EmulatorUser | None:
        """The ordinary user with this user principal name (case-insensitive)."""
        wanted = upn.lower()
        for user in self.users:
            if user.upn is not None and user.upn.lower() == wanted:
                return user
        return None

    def user_by_id(self, systemuserid: str) -> EmulatorUser | None:
        """The user with this systemuserid."""
        wanted = systemuserid.lower()
        for user in self.users:
            if user.systemuserid.lower() == wanted:
                return user
        return None

    def user_by_object_id(self, object_id: str) -> EmulatorUser | None:
        """The user with this Microsoft Entra object id (``CallerObjectId``, token ``oid``)."""
        wanted = object_id.lower()
        for user in self.users:
            if user.entra_object_id.lower() == wanted:
                return user
        return None

    def secret_for(self, user: EmulatorUser) -> Secret:
        """The user's client secret (application) or password (user)."""
        return self.secrets.get(user.systemuserid, Secret(""))

    def is_tracked(self, entity: str) -> bool:
        """Whether change tracking is enabled for ``entity``."""
        return bool(self.change_tracking.get(entity, False))

    def is_secured(self, entity: str, attribute: str) -> bool:
        """Whether a column is protected by field-level security."""
        return (entity, attribute) in self.secured_attributes


ALL_PRIVILEGES: frozenset[str] = PRIVILEGES
_SALES_ENTITIES = ("lead", "contact", "account", "opportunity", "task")
_SALES_PRIVILEGES = frozenset({"create", "read", "write", "append", "appendto"})

DEFAULT_APP_CLIENT_ID = stable_id("client", "crmsync-sync")
DEFAULT_APP_SECRET = "crmsync-emulator-secret"  # noqa: S105 - a published test credential
DEFAULT_TENANT = stable_id("tenant")
DEFAULT_DOMAIN = "contoso.example"


def _sales_privileges() -> Mapping[str, frozenset[str]]:
    granted: dict[str, frozenset[str]] = {name: _SALES_PRIVILEGES for name in _SALES_ENTITIES}
    granted["*"] = frozenset({"read"})
    return MappingProxyType(granted)


def default_config() -> EmulatorConfig:
    """The out-of-the-box configuration: one sync application user and two salespeople.

    Ids, client id and credentials are fixed, so the demo and tests can rely on them. The
    application user holds every privilege and may read and update every secured column;
    the salespeople may create/read/write (not delete) sales records, read everything else,
    and cannot see the secured ``lead.revenue`` column.
    """
    secured = frozenset({("lead", "revenue")})
    app_user = EmulatorUser(
        systemuserid=stable_id("systemuser", "crmsync-sync"),
        fullname="crmsync sync",
        kind="application",
        client_id=DEFAULT_APP_CLIENT_ID,
        upn=None,
        privileges=MappingProxyType({"*": ALL_PRIVILEGES}),
        readable_secured=secured,
        updatable_secured=secured,
        can_impersonate=True,
    )
    salespeople = tuple(
        EmulatorUser(
            systemuserid=stable_id("systemuser", login),
            fullname=name,
            kind="user",
            client_id=None,
            upn=f"{login}@{DEFAULT_DOMAIN}",
            privileges=_sales_privileges(),
        )
        for login, name in (("alex.morgan", "Alex Morgan"), ("sam.patel", "Sam Patel"))
    )
    secrets = {
        app_user.systemuserid: Secret(DEFAULT_APP_SECRET),
        salespeople[0].systemuserid: Secret("alex-password-1"),
        salespeople[1].systemuserid: Secret("sam-password-1"),
    }
    return EmulatorConfig(
        tenant=DEFAULT_TENANT,
        users=(app_user, *salespeople),
        secured_attributes=secured,
        secrets=MappingProxyType(secrets),
    )


def load_emulator_config(path: str | Path | None) -> EmulatorConfig:
    """Read an emulator TOML file; ``None`` gives :func:`default_config`.

    Raises :class:`EmulatorConfigError` with the file and key named for any missing file,
    invalid TOML, unknown key, wrong type or inconsistent value.
    """
    if path is None:
        return default_config()
    source = Path(path)
    if not source.is_file():
        raise EmulatorConfigError(f"emulator configuration file {source} not found")
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EmulatorConfigError(f"{source} is not valid TOML: {exc}") from exc
    from crmsync.emulator.config_toml import config_from_document

    try:
        return config_from_document(document)
    except EmulatorConfigError as exc:
        raise EmulatorConfigError(f"{source}: {exc.message}") from exc
