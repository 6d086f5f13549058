"""Campaign Sync (B47, R44): Dynamics campaigns, one way, into the marketing database.

:func:`refresh_microsoft_campaigns` reads every Dynamics campaign (name, state, status) and
the static marketing lists crmsync created for them (``Mkto-leads-<campaign id>`` and
``Mkto-contacts-<campaign id>``, R82) through the product's Dynamics client, and stores them
in ``microsoft_campaigns``; campaigns gone from Dynamics are dropped. The Add to / Remove
from Microsoft Campaign steps pick an **active** campaign (state Active, R84) by name with
:func:`find_campaign`, refreshing first when the name is not known yet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from crmsync.dynamics.client import DynamicsClient
from crmsync.store.tables import microsoft_campaigns, now_utc

LIST_PREFIX = {"lead": "Mkto-leads-", "contact": "Mkto-contacts-"}
"""The name of the marketing list crmsync creates per Dynamics campaign and member table."""

_LIST_NAMESPACE = uuid.UUID("5f0c2b7e-9a41-4c3d-8e2f-6b1d0a7c9e34")


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
    read = {
        record.id: record.values
        for record in client.iter_records("campaigns", ["name", "statecode", "statuscode"])
    }
    lists: dict[tuple[str, str], str] = {}
    for record in client.iter_records("lists", ["listname"], filter="startswith(listname,'Mkto-')"):
        name = str(record.values.get("listname") or "")
        for entity, prefix in LIST_PREFIX.items():
            if name.startswith(prefix):
                lists[(name[len(prefix) :], entity)] = record.id
    stamp = now_utc()
    known = set(conn.execute(select(microsoft_campaigns.c.crm_id)).scalars())
    for crm_id, values in read.items():
        row = {
            "name": str(values.get("name") or "")[:255],
            "statecode": _int(values.get("statecode")),
            "statuscode": _int(values.get("statuscode")),
            "leads_list_id": lists.get((crm_id, "lead")),
            "contacts_list_id": lists.get((crm_id, "contact")),
            "synced_at": stamp,
        }
        if crm_id in known:
            conn.execute(
                update(microsoft_campaigns)
                .where(microsoft_campaigns.c.crm_id == crm_id)
                .values(**row)
            )
        else:
            conn.execute(insert(microsoft_campaigns).values(crm_id=crm_id, **row))
    gone = known - set(read)
    if gone:
        conn.execute(delete(microsoft_campaigns).where(microsoft_campaigns.c.crm_id.in_(gone)))
    return len(read)


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
