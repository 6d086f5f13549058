"""Building an :class:`~crmsync.emulator.config.EmulatorConfig` from a parsed TOML document.

The file format is described in :mod:`crmsync.emulator.config`; every function here raises
:class:`~crmsync.emulator.errors.EmulatorConfigError` naming the key that is wrong.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from crmsync.emulator.config import (
    DEFAULT_CHANGE_TRACKING,
    PLUGIN_RULE_KINDS,
    PRIVILEGES,
    USER_KINDS,
    EmulatorConfig,
    EmulatorUser,
    FaultSettings,
    PluginRule,
    default_config,
    stable_id,
)
from crmsync.emulator.errors import EmulatorConfigError
from crmsync.emulator.secret import Secret
from crmsync.emulator.tokens import org_origin

_TOP_LEVEL_SCALARS: dict[str, type] = {
    "tenant": str,
    "seed": int,
    "token_lifetime_seconds": int,
    "request_limit": int,
    "request_window_seconds": float,
    "execution_time_limit_ms": float,
    "concurrency_limit": int,
    "delta_token_max_age_days": float,
    "max_page_size": int,
    "organization_id": str,
    "business_unit_id": str,
    "public_client_id": str,
    "org_url": str,
}
_TOP_LEVEL_OTHER = frozenset(
    {"admin_key", "secured_attributes", "change_tracking", "faults", "users", "plugin_rules"}
)
_USER_KEYS = frozenset(
    {
        "systemuserid",
        "fullname",
        "kind",
        "client_id",
        "client_secret",
        "upn",
        "password",
        "privileges",
        "readable_secured",
        "updatable_secured",
        "mfa_required",
        "can_impersonate",
        "entra_object_id",
    }
)
_RULE_KEYS = frozenset({"entity", "attribute", "kind", "pattern", "message"})


# Keys whose values are secrets: an error about them never repeats the value.
_SECRET_KEYS = frozenset({"client_secret", "password", "admin_key"})


def _typed(where: str, raw: object, wanted: type) -> Any:
    if wanted is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if not isinstance(raw, wanted) or (wanted is not bool and isinstance(raw, bool)):
        if where.rpartition(".")[2] in _SECRET_KEYS:
            shown = f"a {type(raw).__name__} (value not shown: it is a secret)"
        else:
            shown = repr(raw)
        raise EmulatorConfigError(f"{where} must be a {wanted.__name__}, got {shown}")
    return raw


def _string_list(where: str, raw: object) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise EmulatorConfigError(f"{where} must be a list of strings")
    return list(raw)


def _column_refs(where: str, raw: object) -> frozenset[tuple[str, str]]:
    refs: set[tuple[str, str]] = set()
    for item in _string_list(where, raw):
        entity, dot, attribute = item.strip().lower().partition(".")
        if not dot or not entity or not attribute:
            raise EmulatorConfigError(f"{where}: {item!r} must look like 'entity.attribute'")
        refs.add((entity, attribute))
    return frozenset(refs)


def _unknown(where: str, given: Mapping[str, object], known: frozenset[str]) -> None:
    extra = sorted(set(given) - known)
    if extra:
        raise EmulatorConfigError(f"unknown key(s) in {where}: {', '.join(extra)}")


def _privileges(where: str, raw: object) -> Mapping[str, frozenset[str]]:
    if not isinstance(raw, dict):
        raise EmulatorConfigError(f"{where} must be a table of entity = [privileges]")
    granted: dict[str, frozenset[str]] = {}
    for entity, names in raw.items():
        values = frozenset(name.lower() for name in _string_list(f"{where}.{entity}", names))
        bad = sorted(values - PRIVILEGES)
        if bad:
            allowed = ", ".join(sorted(PRIVILEGES))
            raise EmulatorConfigError(
                f"{where}.{entity}: unknown privilege(s) {', '.join(bad)} (allowed: {allowed})"
            )
        granted[entity.lower()] = values
    return MappingProxyType(granted)


def _user_from(
    index: int, raw: object, secured: frozenset[tuple[str, str]]
) -> tuple[EmulatorUser, Secret]:
    where = f"users[{index}]"
    if not isinstance(raw, dict):
        raise EmulatorConfigError(f"{where} must be a table")
    _unknown(where, raw, _USER_KEYS)
    fullname = _typed(f"{where}.fullname", raw.get("fullname", ""), str)
    if not fullname:
        raise EmulatorConfigError(f"{where}.fullname is required")
    kind = _typed(f"{where}.kind", raw.get("kind", "user"), str)
    if kind not in USER_KINDS:
        raise EmulatorConfigError(f"{where}.kind must be 'application' or 'user', got {kind!r}")
    if kind == "application":
        client_id = _typed(f"{where}.client_id", raw.get("client_id", ""), str)
        secret = _typed(f"{where}.client_secret", raw.get("client_secret", ""), str)
        if not client_id or not secret:
            raise EmulatorConfigError(
                f"{where}: an application user needs client_id and client_secret"
            )
        upn = None
        identity = f"app:{client_id.lower()}"
    else:
        upn = _typed(f"{where}.upn", raw.get("upn", ""), str)
        secret = _typed(f"{where}.password", raw.get("password", ""), str)
        if not upn or "@" not in upn or not secret:
            raise EmulatorConfigError(f"{where}: a user needs a upn (name@domain) and a password")
        client_id = None
        identity = f"user:{upn.lower()}"
    systemuserid = _typed(
        f"{where}.systemuserid", raw.get("systemuserid", stable_id("systemuser", identity)), str
    )
    try:
        systemuserid = str(uuid.UUID(systemuserid))
    except ValueError as exc:
        raise EmulatorConfigError(f"{where}.systemuserid must be a GUID") from exc
    object_id = _typed(f"{where}.entra_object_id", raw.get("entra_object_id", ""), str)
    if object_id:
        try:
            object_id = str(uuid.UUID(object_id))
        except ValueError as exc:
            raise EmulatorConfigError(f"{where}.entra_object_id must be a GUID") from exc
    readable = _column_refs(f"{where}.readable_secured", raw.get("readable_secured", []))
    updatable = _column_refs(f"{where}.updatable_secured", raw.get("updatable_secured", []))
    for ref in sorted((readable | updatable) - secured):
        raise EmulatorConfigError(f"{where}: {ref[0]}.{ref[1]} is not listed in secured_attributes")
    user = EmulatorUser(
        systemuserid=systemuserid,
        fullname=fullname,
        kind=kind,
        client_id=client_id,
        upn=upn,
        privileges=_privileges(f"{where}.privileges", raw.get("privileges", {})),
        readable_secured=readable,
        updatable_secured=updatable,
        mfa_required=_typed(f"{where}.mfa_required", raw.get("mfa_required", False), bool),
        can_impersonate=_typed(f"{where}.can_impersonate", raw.get("can_impersonate", False), bool),
        entra_object_id=object_id,
    )
    return user, Secret(secret)


def _rule_from(index: int, raw: object) -> PluginRule:
    where = f"plugin_rules[{index}]"
    if not isinstance(raw, dict):
        raise EmulatorConfigError(f"{where} must be a table")
    _unknown(where, raw, _RULE_KEYS)
    values = {key: _typed(f"{where}.{key}", raw.get(key, ""), str) for key in _RULE_KEYS}
    if not values["entity"] or not values["attribute"] or not values["message"]:
        raise EmulatorConfigError(f"{where} needs entity, attribute and message")
    if values["kind"] not in PLUGIN_RULE_KINDS:
        raise EmulatorConfigError(f"{where}.kind must be 'regex' or 'required_on_create'")
    if values["kind"] == "regex":
        try:
            re.compile(values["pattern"])
        except re.error as exc:
            raise EmulatorConfigError(
                f"{where}.pattern is not a valid regular expression: {exc}"
            ) from exc
    return PluginRule(
        entity=values["entity"].lower(),
        attribute=values["attribute"].lower(),
        kind=values["kind"],
        pattern=values["pattern"],
        message=values["message"],
    )


def faults_from_mapping(
    raw: Mapping[str, object], base: FaultSettings | None = None
) -> FaultSettings:
    """Build validated :class:`FaultSettings` from a mapping, starting from ``base``.

    Used for the ``[faults]`` table and for the admin API's ``PUT /_emulator/faults`` body.
    """
    current = base or FaultSettings()
    known = {f.name: f.type for f in dataclasses.fields(FaultSettings)}
    _unknown("faults", raw, frozenset(known))
    changes: dict[str, Any] = {}
    for name, value in raw.items():
        where = f"faults.{name}"
        if name == "methods":
            changes[name] = tuple(method.upper() for method in _string_list(where, value))
        elif name == "path_contains":
            changes[name] = _typed(where, value, str)
        else:
            wanted = float if known[name] in ("float", float) else int
            changes[name] = _typed(where, value, wanted)
    return dataclasses.replace(current, **changes).validated()


def config_from_document(document: Mapping[str, object]) -> EmulatorConfig:
    """Build an :class:`EmulatorConfig` from a parsed TOML document, on top of the defaults."""
    defaults = default_config()
    _unknown("the top level", document, frozenset(_TOP_LEVEL_SCALARS) | _TOP_LEVEL_OTHER)
    changes: dict[str, Any] = {}
    for name, wanted in _TOP_LEVEL_SCALARS.items():
        if name in document:
            changes[name] = _typed(name, document[name], wanted)
    for name in ("token_lifetime_seconds", "request_limit", "concurrency_limit", "max_page_size"):
        if name in changes and changes[name] < 1:
            raise EmulatorConfigError(f"{name} must be at least 1")
    for name in ("request_window_seconds", "execution_time_limit_ms", "delta_token_max_age_days"):
        if name in changes and changes[name] <= 0:
            raise EmulatorConfigError(f"{name} must be positive")
    if changes.get("max_page_size", 1) > 5000:
        raise EmulatorConfigError("max_page_size cannot exceed 5000 (the Dataverse cap)")
    if "org_url" in changes:
        origin = org_origin(changes["org_url"])
        if origin is None:
            raise EmulatorConfigError(
                "org_url must be an http(s) URL with a host and no path, like "
                "https://org.crm.example"
            )
        changes["org_url"] = origin
    if "admin_key" in document:
        key = _typed("admin_key", document["admin_key"], str)
        if len(key) < 8:
            raise EmulatorConfigError("admin_key must be at least 8 characters")
        changes["admin_key"] = Secret(key)
    secured = defaults.secured_attributes
    if "secured_attributes" in document:
        secured = _column_refs("secured_attributes", document["secured_attributes"])
        changes["secured_attributes"] = secured
    if "change_tracking" in document:
        raw_tracking = document["change_tracking"]
        if not isinstance(raw_tracking, dict):
            raise EmulatorConfigError("change_tracking must be a table of entity = true/false")
        tracking = dict(DEFAULT_CHANGE_TRACKING)
        for entity, enabled in raw_tracking.items():
            tracking[entity.lower()] = _typed(f"change_tracking.{entity}", enabled, bool)
        changes["change_tracking"] = MappingProxyType(tracking)
    if "faults" in document:
        raw_faults = document["faults"]
        if not isinstance(raw_faults, dict):
            raise EmulatorConfigError("faults must be a table")
        changes["faults"] = faults_from_mapping(raw_faults)
    if "users" in document:
        raw_users = document["users"]
        if not isinstance(raw_users, list) or not raw_users:
            raise EmulatorConfigError("users must be a non-empty array of tables ([[users]])")
        parsed = [_user_from(i, raw, secured) for i, raw in enumerate(raw_users)]
        users = tuple(user for user, _ in parsed)
        _check_unique(users)
        changes["users"] = users
        changes["secrets"] = MappingProxyType({u.systemuserid: s for u, s in parsed})
    elif "secured_attributes" in changes:
        # The default application user keeps access to every secured column, whatever they are.
        changes["users"] = tuple(
            dataclasses.replace(user, readable_secured=secured, updatable_secured=secured)
            if user.kind == "application"
            else user
            for user in defaults.users
        )
    if "plugin_rules" in document:
        raw_rules = document["plugin_rules"]
        if not isinstance(raw_rules, list):
            raise EmulatorConfigError("plugin_rules must be an array of tables ([[plugin_rules]])")
        changes["plugin_rules"] = tuple(_rule_from(i, raw) for i, raw in enumerate(raw_rules))
    return dataclasses.replace(defaults, **changes)


def _check_unique(users: tuple[EmulatorUser, ...]) -> None:
    seen: set[str] = set()
    for user in users:
        keys = []
        if user.client_id:
            keys.append(f"client_id {user.client_id.lower()}")
        if user.upn:
            keys.append(f"upn {user.upn.lower()}")
        keys.append(f"systemuserid {user.systemuserid}")
        keys.append(f"entra_object_id {user.entra_object_id.lower()}")
        for key in keys:
            if key in seen:
                raise EmulatorConfigError(f"users: {key} appears more than once")
            seen.add(key)
