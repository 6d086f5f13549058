"""The parameters of the Microsoft flow steps (R80-R83) and of Wait, checked when a
campaign is saved.

* ``wait``: ``days``, ``hours`` and/or ``minutes`` (together 1 minute to 365 days): the
  person's flow goes on with the next step after that time;

* ``change_owner_in_microsoft``: ``owner``, a sales user's Dynamics id;
* ``create_task_in_microsoft``: ``subject`` (``{{lead.field}}`` tokens allowed),
  ``description``, ``dueIn`` (days, default 5, R81), ``status`` (Not Started, In Progress,
  Waiting on someone else, Deferred, Completed: the task's Status Reason), ``owner``;
* ``add_to_microsoft_campaign`` / ``remove_from_microsoft_campaign``: ``campaign``, the name of
  an active Dynamics campaign (Campaign Sync, B47).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmsync.errors import InvalidValueError

TASK_STATUSES = ("Not Started", "In Progress", "Waiting on someone else", "Deferred", "Completed")
MAX_DUE_DAYS = 3650


def _required_text(raw: Mapping[str, Any], key: str, where: str, what: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidValueError(f"{where}: '{key}' is required ({what})")
    return value.strip()


def parse_microsoft_step(kind: str, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The checked parameters of one Microsoft step; raise :class:`InvalidValueError`."""
    if kind == "change_owner_in_microsoft":
        return {"owner": _required_text(raw, "owner", where, "a sales user's Dynamics id")}
    if kind == "create_task_in_microsoft":
        params: dict[str, Any] = {"subject": _required_text(raw, "subject", where, "a text")}
        if len(params["subject"]) > 200:
            raise InvalidValueError(f"{where}: 'subject' is longer than 200 characters")
        description = raw.get("description")
        if description is not None and not isinstance(description, str):
            raise InvalidValueError(f"{where}: 'description' must be a text")
        due = raw.get("dueIn", 5)
        if due in (None, ""):
            due = 5  # blank Due In means 5 days, as in Marketo (R81)
        if isinstance(due, bool) or not isinstance(due, int) or not 0 <= due <= MAX_DUE_DAYS:
            raise InvalidValueError(f"{where}: 'dueIn' must be a number of days (0-{MAX_DUE_DAYS})")
        params["dueIn"] = due
        status = raw.get("status", "Not Started")
        known = {s.lower(): s for s in TASK_STATUSES}
        if not isinstance(status, str) or status.strip().lower() not in known:
            raise InvalidValueError(f"{where}: 'status' must be one of {', '.join(TASK_STATUSES)}")
        params["status"] = known[status.strip().lower()]
        owner = raw.get("owner")
        if owner is not None and (not isinstance(owner, str) or not owner.strip()):
            raise InvalidValueError(f"{where}: 'owner' must be a sales user's Dynamics id")
        return params
    return {"campaign": _required_text(raw, "campaign", where, "a Dynamics campaign's name")}


MAX_WAIT_MINUTES = 365 * 24 * 60


def parse_wait(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The checked parameters of a Wait step (its duration in days, hours, minutes)."""
    params: dict[str, Any] = {}
    for unit in ("days", "hours", "minutes"):
        value = raw.get(unit)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidValueError(f"{where}: '{unit}' must be a whole number, 0 or more")
        params[unit] = value
    total = params.get("days", 0) * 1440 + params.get("hours", 0) * 60 + params.get("minutes", 0)
    if not 1 <= total <= MAX_WAIT_MINUTES:
        raise InvalidValueError(f"{where}: a Wait lasts from 1 minute to 365 days")
    return params


def wait_minutes(params: Mapping[str, Any]) -> int:
    """A Wait step's duration in minutes."""
    return (
        int(params.get("days", 0)) * 1440
        + int(params.get("hours", 0)) * 60
        + int(params.get("minutes", 0))
    )
