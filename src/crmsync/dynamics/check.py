"""A connection checklist for an org (B43): reachable, authenticated, identity, then per table
read and write privileges, change tracking, secured columns, the selected columns and the sync
filter column. Each check is recorded with its outcome and, when it failed, a concrete fix;
nothing raises past here except programming errors, so an administrator always sees the whole
list.

The per-table checks are a list (:data:`TABLE_CHECKS`) of functions from
:class:`TableFacts` to checklist lines: a new kind of table (a custom entity, say) joins by
being passed in ``tables`` (and ``two_way`` when crmsync writes to it), and a new check by
being added to the list or passed as ``table_checks``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.metadata import UserPrivileges
from crmsync.dynamics.types import EntitySchema
from crmsync.errors import CrmsyncError

DEFAULT_TABLES = ("lead", "contact", "account", "opportunity", "systemuser", "team")
TWO_WAY_TABLES = frozenset({"lead", "contact"})
ROLES_PATH = "Settings → Security → Security Roles"

CONNECT = "connect and authenticate (WhoAmI)"  # the checklist's first line
CONNECT_FIX = (
    "Check [dynamics] url (the org's address, such as https://contoso.crm.dynamics.com), "
    "tenant and client_id, and that CRMSYNC_DYNAMICS_CLIENT_SECRET holds the app "
    "registration's current secret (or enter them in the connection form on the admin Setup "
    "page); the app must be an application user of the org."
)


@dataclass(frozen=True, slots=True)
class CheckItem:
    """One line of the checklist: what was checked, whether it passed, what was found, and
    what an administrator does to make it pass (empty when it passed)."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """The whole checklist; ``ok`` when every item passed."""

    items: tuple[CheckItem, ...]

    @property
    def ok(self) -> bool:
        """Whether every line of the checklist passed."""
        return all(item.ok for item in self.items)


@dataclass(frozen=True, slots=True)
class TableFacts:
    """What the per-table checks look at: the table's schema, the sync user's privileges,
    whether crmsync writes to it, its selected columns (empty: none saved) and its sync
    filter column (``None``: no filter configured)."""

    table: str
    schema: EntitySchema
    privileges: UserPrivileges
    two_way: bool
    selected: tuple[str, ...] = ()
    sync_filter: str | None = None

    @property
    def schema_name(self) -> str:
        """The table's schema name, as privilege names spell it (``Lead``)."""
        return self.schema.schema_name or self.table.capitalize()


TableCheck = Callable[[TableFacts], Iterable[CheckItem]]
"""One check of a table: the checklist lines it gives (none when it does not apply)."""


def read_privilege(facts: TableFacts) -> Iterable[CheckItem]:
    """Read at Organization depth: the sync reads every record through change tracking."""
    name = facts.schema_name
    line = f"{facts.table}: read privilege"
    if not facts.privileges.can("Read", name):
        yield CheckItem(
            line,
            False,
            f"missing prvRead{name}",
            f"Add prvRead{name} at Organization depth to the sync user's security role "
            f"({ROLES_PATH}).",
        )
    elif not facts.privileges.can("Read", name, "Global"):
        yield CheckItem(
            line,
            False,
            f"prvRead{name} is held below Organization depth (change tracking needs it)",
            f"In the sync user's security role, raise Read on {facts.table} to Organization "
            f"depth ({ROLES_PATH}); change tracking needs it.",
        )
    else:
        yield CheckItem(line, True, f"prvRead{name} at Organization depth")


def write_privileges(facts: TableFacts) -> Iterable[CheckItem]:
    """Create and Write at Organization depth on a table crmsync writes to."""
    if not facts.two_way:
        return
    name = facts.schema_name
    wanted = (f"prvCreate{name}", f"prvWrite{name}")
    missing = [p for p in wanted if not facts.privileges.has(p, "Global")]
    line = f"{facts.table}: write privileges (create and update)"
    if not missing:
        yield CheckItem(line, True, f"{' and '.join(wanted)} at Organization depth")
        return
    yield CheckItem(
        line,
        False,
        f"missing {' and '.join(missing)} at Organization depth: marketing changes to "
        f"{facts.table} records would wait",
        f"Add {' and '.join(missing)} at Organization depth to the sync user's security role "
        f"({ROLES_PATH}: Create and Write on the {facts.table} table).",
    )


def change_tracking(facts: TableFacts) -> Iterable[CheckItem]:
    """Change tracking on: the sync reads only what changed."""
    tracking = facts.schema.change_tracking
    yield CheckItem(
        f"{facts.table}: change tracking",
        tracking,
        "enabled" if tracking else "disabled: enable Track changes on the table",
        ""
        if tracking
        else (
            f"In Power Apps, open the {facts.table} table's properties, tick Track changes "
            "under Advanced options, and save."
        ),
    )


def secured_columns(facts: TableFacts) -> Iterable[CheckItem]:
    """Secured columns the sync user may not read (B8): named, never offered for sync."""
    hidden = sorted(
        attribute.logical_name
        for attribute in facts.schema.attributes.values()
        if attribute.is_secured and not attribute.can_read
    )
    if hidden:
        yield CheckItem(
            f"{facts.table}: secured columns",
            True,
            f"not readable, never offered for sync: {', '.join(hidden)}",
        )


def selected_fields(facts: TableFacts) -> Iterable[CheckItem]:
    """Every selected column exists and the sync user may read it."""
    if not facts.selected:
        return
    problems: list[str] = []
    gone: list[str] = []
    for column in facts.selected:
        attribute = facts.schema.attributes.get(column)
        if attribute is None:
            gone.append(column)
            problems.append(f"{column} does not exist")
        elif not attribute.valid_for_read:
            gone.append(column)
            problems.append(f"{column} is not valid for read")
        elif attribute.is_secured and not attribute.can_read:
            problems.append(f"{column} is secured and the sync user may not read it")
    line = f"{facts.table}: selected fields readable"
    count = len(facts.selected)
    if not problems:
        yield CheckItem(line, True, f"all {count} selected column{'s' * (count != 1)} readable")
        return
    fixes: list[str] = []
    if gone:
        removes = " ".join(f"--remove {column}" for column in gone)
        fixes.append(
            f"Remove {', '.join(gone)} from the field selection (the Fields page, or "
            f"`crmsync fields select {facts.table} {removes}`)"
        )
    if len(gone) < len(problems):
        fixes.append("give the sync user's field security profile Read on the secured columns")
    fix = "; ".join(fixes)
    yield CheckItem(line, False, "; ".join(problems), fix[0].upper() + fix[1:] + ".")


def sync_filter_column(facts: TableFacts) -> Iterable[CheckItem]:
    """The sync filter's column exists (when a filter is configured for the table)."""
    column = facts.sync_filter
    if column is None:
        return
    attribute = facts.schema.attributes.get(column)
    line = f"{facts.table}: sync filter column {column}"
    if attribute is not None and attribute.valid_for_read and attribute.can_read:
        yield CheckItem(line, True, "present and readable")
        return
    yield CheckItem(
        line,
        False,
        "missing in Dynamics" if attribute is None else "present but not readable",
        f"Create the Yes/No column {column} on the {facts.table} table in Dynamics (and let "
        f"the sync user read it), or stop filtering: `crmsync fields select {facts.table} "
        f"--remove {column}`.",
    )


TABLE_CHECKS: tuple[TableCheck, ...] = (
    read_privilege,
    write_privileges,
    change_tracking,
    secured_columns,
    selected_fields,
    sync_filter_column,
)
"""The checks run on every table, in the order their lines appear."""


def check_connection(
    client: DynamicsClient,
    tables: Sequence[str] = DEFAULT_TABLES,
    *,
    two_way: Collection[str] = TWO_WAY_TABLES,
    selected: Mapping[str, Sequence[str]] | None = None,
    sync_filters: Mapping[str, str] | None = None,
    table_checks: Sequence[TableCheck] = TABLE_CHECKS,
) -> ConnectionReport:
    """Run the checklist against the org behind ``client``: ``selected`` gives each table's
    selected columns, ``sync_filters`` the sync filter column of the tables that have one."""
    items: list[CheckItem] = []
    try:
        identity = client.who_am_i()
    except CrmsyncError as exc:
        items.append(CheckItem(CONNECT, False, exc.message, CONNECT_FIX))
        return ConnectionReport(tuple(items))
    sync_user = client.user_label(identity.user_id)
    items.append(CheckItem(CONNECT, True, f"sync user {sync_user}"))
    try:
        privileges = client.user_privileges()
    except CrmsyncError as exc:
        items.append(
            CheckItem(
                "read the sync user's privileges",
                False,
                exc.message,
                "Give the sync user a security role that may read its own roles and privileges.",
            )
        )
        return ConnectionReport(tuple(items))
    for table in tables:
        try:
            schema = client.entity_schema(table)
        except CrmsyncError as exc:
            items.append(
                CheckItem(
                    f"{table}: metadata",
                    False,
                    exc.message,
                    f"Make sure the {table} table exists and the sync user may read table "
                    "definitions.",
                )
            )
            continue
        facts = TableFacts(
            table,
            schema,
            privileges,
            table in two_way,
            tuple((selected or {}).get(table, ())),
            (sync_filters or {}).get(table),
        )
        for check in table_checks:
            items.extend(check(facts))
    return ConnectionReport(tuple(items))
