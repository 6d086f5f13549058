"""A connection checklist for an org (B43): reachable, authenticated, identity, privileges,
change tracking per table. Each check is recorded with its outcome; nothing raises past here
except programming errors, so an administrator always sees the whole list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crmsync.dynamics.client import DynamicsClient
from crmsync.errors import CrmsyncError

DEFAULT_TABLES = ("lead", "contact", "account", "opportunity", "systemuser", "team")
TWO_WAY_TABLES = frozenset({"lead", "contact"})


@dataclass(frozen=True, slots=True)
class CheckItem:
    """One line of the checklist."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """The whole checklist; ``ok`` when every item passed."""

    items: tuple[CheckItem, ...]

    @property
    def ok(self) -> bool:
        """Whether every line of the checklist passed."""
        return all(item.ok for item in self.items)


def check_connection(
    client: DynamicsClient, tables: Sequence[str] = DEFAULT_TABLES
) -> ConnectionReport:
    """Run the checklist against the org behind ``client``."""
    items: list[CheckItem] = []
    try:
        identity = client.who_am_i()
    except CrmsyncError as exc:
        items.append(CheckItem("connect and authenticate (WhoAmI)", False, exc.message))
        return ConnectionReport(tuple(items))
    sync_user = client.user_label(identity.user_id)
    items.append(CheckItem("connect and authenticate (WhoAmI)", True, f"sync user {sync_user}"))
    try:
        privileges = client.user_privileges()
    except CrmsyncError as exc:
        items.append(CheckItem("read the sync user's privileges", False, exc.message))
        return ConnectionReport(tuple(items))
    for table in tables:
        try:
            schema = client.entity_schema(table)
        except CrmsyncError as exc:
            items.append(CheckItem(f"{table}: metadata", False, exc.message))
            continue
        name = schema.schema_name or table.capitalize()
        wanted = ["Read"] + (["Create", "Write"] if table in TWO_WAY_TABLES else [])
        missing = [action for action in wanted if not privileges.can(action, name)]
        global_read = privileges.can("Read", name, "Global")
        detail = "ok" if not missing else f"missing prv{'/'.join(missing)}{name}"
        if not missing and not global_read:
            detail = f"prvRead{name} is held below Organization depth (change tracking needs it)"
        items.append(CheckItem(f"{table}: privileges", not missing and global_read, detail))
        tracking = schema.change_tracking
        items.append(
            CheckItem(
                f"{table}: change tracking",
                tracking,
                "enabled" if tracking else "disabled: enable Track changes on the table",
            )
        )
        hidden = sorted(
            attribute.logical_name
            for attribute in schema.attributes.values()
            if attribute.is_secured and not attribute.can_read
        )
        if hidden:
            items.append(
                CheckItem(
                    f"{table}: secured columns",
                    True,
                    f"not readable, never offered for sync: {', '.join(hidden)}",
                )
            )
    return ConnectionReport(tuple(items))
