"""Campaign Sync (B47, R44): Dynamics campaigns, one way, into the marketing database.

:func:`refresh_microsoft_campaigns` reads every Dynamics campaign (name, state, status) and
the static marketing lists crmsync created for them (``Mkto-leads-<campaign id>`` and
``Mkto-contacts-<campaign id>``, R82) through the product's Dynamics client, and stores them
in ``microsoft_campaigns``; campaigns gone from Dynamics are dropped. The Add to / Remove
from Microsoft Campaign steps pick an **active** campaign (state Active, R84) by name with
:func:`find_campaign`, refreshing first when the name is not known yet.

:func:`sync_microsoft_campaigns` is Campaign Sync in the regular sync cycle, once Campaign
Sync is in use (campaigns were read once, or a saved smart campaign has a Microsoft campaign
step or trigger). It reads only the campaigns modified since the last read (a ``modifiedon``
filter: Dynamics does not change-track campaigns by default), so a cycle with no campaign
change adds one request; every :data:`FULL_REFRESH_SECONDS` it reads them all again, which
also drops the campaigns deleted in Dynamics.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from crmsync.dynamics.client import DynamicsClient
from crmsync.store.key_values import get_setting, set_setting
from crmsync.store.tables import campaigns, microsoft_campaigns, now_utc

LIST_PREFIX = {"lead": "Mkto-leads-", "contact": "Mkto-contacts-"}
"""The name of the marketing list crmsync creates per Dynamics campaign and member table."""

_LIST_NAMESPACE = uuid.UUID("5f0c2b7e-9a41-4c3d-8e2f-6b1d0a7c9e34")

STATE_KEY = "campaign_sync"
"""The setting holding Campaign Sync's progress: the newest ``modifiedon`` read and the time
of the last full read."""
FULL_REFRESH_SECONDS = 3600.0
"""How often the cycle reads every Dynamics campaign again (deleted ones are dropped then)."""
MICROSOFT_KINDS = frozenset(
    {
        "add_to_microsoft_campaign",
        "remove_from_microsoft_campaign",
        "added_to_microsoft_campaign",
        "removed_from_microsoft_campaign",
    }
)
_FIELDS = ["name", "statecode", "statuscode", "modifiedon"]


@dataclass(frozen=True, slots=True)
class MicrosoftCampaign:
    """A Dynamics campaign as Campaign Sync stored it."""

    crm_id: str
    name: str
    active: bool
    leads_list_id: str | None
    contacts_list_id: str | None

    def list_id(self, entity: str) -> str | None:
        """The id of this campaign's crmsync list for ``entity`` (lead/contact), if made."""
        return self.leads_list_id if entity == "lead" else self.contacts_list_id


def list_name(campaign_crm_id: str, entity: str) -> str:
    """``Mkto-leads-<id>`` or ``Mkto-contacts-<id>`` (R82)."""
    return f"{LIST_PREFIX[entity]}{campaign_crm_id}"


def chosen_list_id(campaign_crm_id: str, entity: str) -> str:
    """The id crmsync gives that list: the same on every retry, so it is created once."""
    return str(uuid.uuid5(_LIST_NAMESPACE, f"{campaign_crm_id}/{entity}"))


def refresh_microsoft_campaigns(conn: Connection, client: DynamicsClient) -> int:
    """Read Dynamics campaigns and crmsync's lists into ``microsoft_campaigns``; returns how
    many campaigns Dynamics has."""
    read = {record.id: record.values for record in client.iter_records("campaigns", _FIELDS)}
    lists: dict[tuple[str, str], str] = {}
    for record in client.iter_records("lists", ["listname"], filter="startswith(listname,'Mkto-')"):
        name = str(record.values.get("listname") or "")
        for entity, prefix in LIST_PREFIX.items():
            if name.startswith(prefix):
                lists[(name[len(prefix) :], entity)] = record.id
    known = set(conn.execute(select(microsoft_campaigns.c.crm_id)).scalars())
    _store(conn, read, known, lists)
    gone = known - set(read)
    if gone:
        conn.execute(delete(microsoft_campaigns).where(microsoft_campaigns.c.crm_id.in_(gone)))
    _save_state(conn, read, full=True)
    return len(read)


def sync_microsoft_campaigns(conn: Connection, client: DynamicsClient) -> int | None:
    """Campaign Sync in a sync cycle: the campaigns modified since the last read (all of them
    on the first run and every :data:`FULL_REFRESH_SECONDS`). ``None`` when Campaign Sync is
    not in use (nothing is read); otherwise how many campaigns were read."""
    state = get_setting(conn, STATE_KEY)
    since = state.get("modified_since") if isinstance(state, dict) else None
    full_at = state.get("full_at") if isinstance(state, dict) else None
    if since is None and not _in_use(conn):
        return None
    due = full_at is None or datetime.fromisoformat(str(full_at)) < datetime.now(UTC) - timedelta(
        seconds=FULL_REFRESH_SECONDS
    )
    if since is None or due:
        return refresh_microsoft_campaigns(conn, client)
    read = {
        record.id: record.values
        for record in client.iter_records("campaigns", _FIELDS, filter=f"modifiedon ge {since}")
    }
    known = set(conn.execute(select(microsoft_campaigns.c.crm_id)).scalars())
    _store(conn, read, known, None)
    _save_state(conn, read, full=False)
    return len(read)


def _in_use(conn: Connection) -> bool:
    """Campaigns were read before, or a saved smart campaign steps into or listens to
    Microsoft campaigns."""
    if conn.execute(select(microsoft_campaigns.c.crm_id).limit(1)).first() is not None:
        return True
    for flow, triggers in conn.execute(select(campaigns.c.flow, campaigns.c.triggers)):
        kinds = {str(item.get("type")) for item in [*(flow or []), *(triggers or [])]}
        if kinds & MICROSOFT_KINDS:
            return True
    return False


def _store(
    conn: Connection,
    read: Mapping[str, Mapping[str, object]],
    known: set[str],
    lists: dict[tuple[str, str], str] | None,
) -> None:
    """Insert or update the ``read`` campaigns; ``lists`` (when read) sets their list ids."""
    stamp = now_utc()
    for crm_id, values in read.items():
        row: dict[str, object] = {
            "name": str(values.get("name") or "")[:255],
            "statecode": _int(values.get("statecode")),
            "statuscode": _int(values.get("statuscode")),
            "synced_at": stamp,
        }
        if lists is not None:
            row["leads_list_id"] = lists.get((crm_id, "lead"))
            row["contacts_list_id"] = lists.get((crm_id, "contact"))
        if crm_id in known:
            conn.execute(
                update(microsoft_campaigns)
                .where(microsoft_campaigns.c.crm_id == crm_id)
                .values(**row)
            )
        else:
            conn.execute(insert(microsoft_campaigns).values(crm_id=crm_id, **row))


def _save_state(conn: Connection, read: Mapping[str, Mapping[str, object]], *, full: bool) -> None:
    """Remember the newest ``modifiedon`` seen (Dynamics' clock, not ours) and, after a full
    read, its time. The next read asks for ``modifiedon ge`` that value: a campaign changed
    in the same second is read again rather than missed."""
    state = get_setting(conn, STATE_KEY)
    saved = dict(state) if isinstance(state, dict) else {}
    stamps = [_utc_text(values.get("modifiedon")) for values in read.values()]
    newest = max([s for s in stamps if s] + [str(saved.get("modified_since") or "")])
    saved["modified_since"] = newest or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if full:
        saved["full_at"] = datetime.now(UTC).isoformat()
    set_setting(conn, STATE_KEY, saved)


def _utc_text(value: object) -> str:
    """A ``modifiedon`` value as the OData literal ``2026-12-06T10:00:00Z`` ('' if none)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value or "")


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def find_campaign(
    conn: Connection,
    name: str,
    client: DynamicsClient | None = None,
    *,
    max_age_seconds: float = 300.0,
) -> MicrosoftCampaign | None:
    """The stored Dynamics campaign called ``name`` (any case); with ``client``, refresh
    from Dynamics first when none is stored under that name or what is stored is older than
    ``max_age_seconds`` (a campaign deactivated in Dynamics is then refused, R84)."""
    query = select(microsoft_campaigns).where(
        func.lower(microsoft_campaigns.c.name) == name.strip().lower()
    )
    row = conn.execute(query).mappings().first()
    stale = row is not None and row["synced_at"] < now_utc() - timedelta(seconds=max_age_seconds)
    if (row is None or stale) and client is not None:
        refresh_microsoft_campaigns(conn, client)
        row = conn.execute(query).mappings().first()
    if row is None:
        return None
    return MicrosoftCampaign(
        str(row["crm_id"]),
        str(row["name"]),
        row["statecode"] == 0,
        row["leads_list_id"],
        row["contacts_list_id"],
    )


def remember_list(conn: Connection, campaign_crm_id: str, entity: str, list_id: str) -> None:
    """Store the list crmsync created for a campaign (in the step's transaction)."""
    column = "leads_list_id" if entity == "lead" else "contacts_list_id"
    conn.execute(
        update(microsoft_campaigns)
        .where(microsoft_campaigns.c.crm_id == campaign_crm_id)
        .values({column: list_id})
    )


def list_campaigns(conn: Connection, *, active_only: bool = True) -> list[MicrosoftCampaign]:
    """The stored Dynamics campaigns by name (the step's picker shows active ones, R84)."""
    query = select(microsoft_campaigns).order_by(microsoft_campaigns.c.name)
    if active_only:
        query = query.where(microsoft_campaigns.c.statecode == 0)
    return [
        MicrosoftCampaign(
            str(r["crm_id"]),
            str(r["name"]),
            r["statecode"] == 0,
            r["leads_list_id"],
            r["contacts_list_id"],
        )
        for r in conn.execute(query).mappings()
    ]
