"""What ``crmsync demo`` prints: where everything is, and ready-to-paste edits on both sides.

:func:`find_demo_lead` picks one lead that came from Dynamics (linked to a person, open, with
an e-mail); :func:`guide_text` renders the URLs, credentials and ``curl`` lines that edit it as
a salesperson in Dynamics and through the Marketo API, and show each edit arriving.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select

from crmsync.cli.demo_org import DemoOrg
from crmsync.errors import ConfigurationError
from crmsync.store.tables import crm_links, persons

DYNAMICS_TITLE = "Chief Demo Officer"
MARKETING_PHONE = "+1 555 0100"


def fresh_edits(now: datetime | None = None) -> tuple[str, str]:
    """A job title and a mobile phone for the guide's edits that differ at every run, so that
    the edits of a second run visibly travel too (a value already set would not)."""
    moment = now or datetime.now(UTC)
    return (
        f"{DYNAMICS_TITLE} {moment:%H%M%S}",
        f"+1 555 {moment:%H%M} {moment:%S}",
    )


NEWLINE = "-w '\\n'"  # curl: end each JSON reply with a newline
_JSON_FIELD = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"{}\"])'"


@dataclass(frozen=True, slots=True)
class DemoLead:
    """The lead the printed edits use, on both sides."""

    person_id: int
    lead_id: str
    name: str
    email: str
    persons_total: int
    persons_synced: int = 0  # persons with a Dynamics lead or contact
    marketing_only_id: int | None = None  # a person with none, for the guide's step 5
    colleagues: tuple[int, int] | None = None  # two persons of one company, for step 6


def find_demo_lead(engine: Engine) -> DemoLead:
    """The first synced Dynamics lead whose person has no contact and is an open lead."""
    contact_people = (
        select(crm_links.c.local_id)
        .where(crm_links.c.entity == "contact", crm_links.c.local_kind == "person")
        .scalar_subquery()
    )
    query = (
        select(
            crm_links.c.local_id,
            crm_links.c.crm_id,
            persons.c.firstName,
            persons.c.lastName,
            persons.c.email,
        )
        .join(persons, persons.c.id == crm_links.c.local_id)
        .where(
            crm_links.c.entity == "lead",
            crm_links.c.local_kind == "person",
            crm_links.c.local_id.not_in(contact_people),
            persons.c.email.is_not(None),
            persons.c.leadStatus.in_(("Open", "0")),
        )
        .order_by(crm_links.c.id)
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
        total = int(conn.execute(select(func.count()).select_from(persons)).scalar_one())
        synced = int(
            conn.execute(
                select(func.count()).select_from(persons).where(persons.c.crmType.is_not(None))
            ).scalar_one()
        )
        marketing_only = conn.execute(
            select(persons.c.id)
            .where(persons.c.crmType.is_(None), persons.c.email.is_not(None))
            .order_by(persons.c.id)
            .limit(1)
        ).scalar()
        shared = conn.execute(
            select(persons.c.company_id, func.min(persons.c.id), func.max(persons.c.id))
            .where(persons.c.company_id.is_not(None))
            .group_by(persons.c.company_id)
            .having(func.count() > 1)
            .order_by(persons.c.company_id)
            .limit(1)
        ).first()
    if row is None:
        raise ConfigurationError("the initial sync brought no open Dynamics lead to edit")
    name = " ".join(part for part in (row.firstName, row.lastName) if part)
    return DemoLead(
        int(row.local_id),
        str(row.crm_id),
        name,
        str(row.email),
        total,
        synced,
        int(marketing_only) if marketing_only is not None else None,
        (int(shared[1]), int(shared[2])) if shared is not None else None,
    )


def _token_line(variable: str, command: str, key: str) -> str:
    return f"{variable}=$({command} | {_JSON_FIELD.format(key)})"


@dataclass(frozen=True, slots=True)
class GuideInput:
    """Everything the printed guide names."""

    api_url: str
    client_id: str
    client_secret: str
    list_id: int
    org: DemoOrg
    lead: DemoLead
    config_path: Path
    pause_seconds: float
    admin_email: str = ""
    admin_password: str = ""
    serving: bool = True  # False for ``--no-serve``: nothing is left running
    title: str = DYNAMICS_TITLE  # the edits the guide prints (new values at every demo run)
    phone: str = MARKETING_PHONE
    company: str = "Renamed Here Ltd"


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _command_name() -> str:
    """How to run crmsync again: the running executable (e.g. ``.venv/bin/crmsync``)."""
    launched = Path(sys.argv[0])
    if launched.name != "crmsync" or not launched.is_file():
        return "crmsync"
    return _shown_path(launched.resolve()) if launched.is_absolute() else str(launched)


def dynamics_edit_lines(g: GuideInput) -> list[str]:
    """Sign in as the salesperson (password grant) and PATCH the lead's jobtitle."""
    org = g.org
    token = _token_line(
        "DTOKEN",
        f"curl -s -X POST {shlex.quote(org.base_url + '/adfs/oauth2/token')}"
        " -d grant_type=password"
        f" -d {shlex.quote('client_id=' + org.public_client_id)}"
        f" --data-urlencode {shlex.quote('username=' + org.salesperson_upn)}"
        f" --data-urlencode {shlex.quote('password=' + org.salesperson_password.reveal())}"
        f" --data-urlencode {shlex.quote('resource=' + org.base_url + '/')}",
        "access_token",
    )
    body = json.dumps({"jobtitle": g.title})
    patch = (
        'curl -s -X PATCH -H "Authorization: Bearer $DTOKEN"'
        " -H 'Content-Type: application/json' -H 'If-Match: *'"
        f" -d {shlex.quote(body)} -w '%{{http_code}}\\n'"
        f" {shlex.quote(f'{org.web_api_url}leads({g.lead.lead_id})')}"
    )
    return [token, patch]


def marketing_edit_lines(g: GuideInput) -> list[str]:
    """Get an API token and change the person's mobile phone with Sync Leads (updateOnly)."""
    token = _token_line(
        "TOKEN",
        "curl -s "
        + shlex.quote(
            f"{g.api_url}/identity/oauth/token?grant_type=client_credentials"
            f"&client_id={g.client_id}&client_secret={g.client_secret}"
        ),
        "access_token",
    )
    body = json.dumps(
        {
            "action": "updateOnly",
            "lookupField": "id",
            "input": [{"id": g.lead.person_id, "mobilePhone": g.phone}],
        }
    )
    sync = (
        f'curl -s {NEWLINE} -X POST -H "Authorization: Bearer $TOKEN"'
        " -H 'Content-Type: application/json'"
        f" -d {shlex.quote(body)} {shlex.quote(g.api_url + '/rest/v1/leads.json')}"
    )
    return [token, sync]


SIGNUP_EMAIL = "web.signup@example.com"


def campaign_lines(g: GuideInput) -> list[str]:
    """Create a person with Sync Leads; read back the lead id the campaign gave them."""
    body = json.dumps(
        {
            "action": "createOrUpdate",
            "lookupField": "email",
            "input": [{"email": SIGNUP_EMAIL, "firstName": "Web", "lastName": "Signup"}],
        }
    )
    create = (
        f'curl -s {NEWLINE} -X POST -H "Authorization: Bearer $TOKEN"'
        " -H 'Content-Type: application/json'"
        f" -d {shlex.quote(body)} {shlex.quote(g.api_url + '/rest/v1/leads.json')}"
    )
    read = f'curl -s {NEWLINE} -H "Authorization: Bearer $TOKEN" ' + shlex.quote(
        f"{g.api_url}/rest/v1/leads.json?filterType=email&filterValues={SIGNUP_EMAIL}"
        "&fields=email,crmType,crmLeadId"
    )
    results = (
        f"{_command_name()} --config {_shown_path(g.config_path)} campaigns results "
        + shlex.quote("Demo: web sign-ups to Dynamics")
    )
    return [create, read, results]


def watch_lines(g: GuideInput) -> list[str]:
    """Sync status, the person through the API, its changes, the lead read back from Dynamics."""
    person = g.lead.person_id
    today = datetime.now(UTC).date().isoformat()
    auth = '-H "Authorization: Bearer $TOKEN"'
    paging = _token_line(
        "NPT",
        f"curl -s {auth} "
        + shlex.quote(f"{g.api_url}/rest/v1/activities/pagingtoken.json?sinceDatetime={today}"),
        "nextPageToken",
    )
    changes = (
        f"{g.api_url}/rest/v1/activities/leadchanges.json?nextPageToken=$NPT"
        f"&leadIds={person}&fields=title,mobilePhone"
    )
    lead_url = f"{g.org.web_api_url}leads({g.lead.lead_id})?$select=fullname,jobtitle,mobilephone"
    return [
        f"{_command_name()} --config {_shown_path(g.config_path)} sync status",
        f"curl -s {NEWLINE} {auth} "
        + shlex.quote(f"{g.api_url}/rest/v1/lead/{person}.json?fields=email,title,mobilePhone"),
        paging,
        f'curl -s {NEWLINE} {auth} "{changes}"',
        f'curl -s {NEWLINE} -H "Authorization: Bearer $DTOKEN" {shlex.quote(lead_url)}',
    ]


def sync_person_lines(g: GuideInput) -> list[str]:
    """Sync Person to Microsoft for a marketing-only person; read back its new lead id."""
    person = g.lead.marketing_only_id
    if person is None:
        return []
    read = f'curl -s {NEWLINE} -H "Authorization: Bearer $TOKEN" ' + shlex.quote(
        f"{g.api_url}/rest/v1/lead/{person}.json?fields=email,crmType,crmLeadId"
    )
    return [
        f"{_command_name()} --config {_shown_path(g.config_path)} sync person {person}",
        f"sleep {g.pause_seconds + 2:g}",
        read,
    ]


def company_edit_lines(g: GuideInput) -> list[str]:
    """Rename one person's company through the API; read it on another person of it."""
    if g.lead.colleagues is None:
        return []
    edited, other = g.lead.colleagues
    body = json.dumps(
        {
            "action": "updateOnly",
            "lookupField": "id",
            "input": [{"id": edited, "company": g.company}],
        }
    )
    sync = (
        f'curl -s {NEWLINE} -X POST -H "Authorization: Bearer $TOKEN"'
        " -H 'Content-Type: application/json'"
        f" -d {shlex.quote(body)} {shlex.quote(g.api_url + '/rest/v1/leads.json')}"
    )
    read = f'curl -s {NEWLINE} -H "Authorization: Bearer $TOKEN" ' + shlex.quote(
        f"{g.api_url}/rest/v1/lead/{other}.json?fields=company,externalCompanyId"
    )
    return [sync, read]


def banner(lead: DemoLead) -> str:
    """The first line: how many persons there are, how many are synced with Dynamics."""
    only = lead.persons_total - lead.persons_synced
    return (
        f"crmsync demo: {lead.persons_total:,} persons in the marketing database: "
        f"{lead.persons_synced:,} synced both ways with Dynamics (leads and contacts), "
        f"{only:,} marketing-only"
    )


def admin_lines(g: GuideInput) -> list[str]:
    """Where to sign in to the admin UI, and as whom (the password is shown only now)."""
    if not g.admin_email:
        return []
    return [
        "Admin UI: open in a browser and sign in",
        f"  sign in at:     {g.api_url}/admin/",
        f"  e-mail:         {g.admin_email}",
        f"  password:       {g.admin_password}  (new at every demo run; shown only now)",
        "",
    ]


def _step_five(g: GuideInput) -> list[str]:
    lines = sync_person_lines(g)
    if not lines:
        return []
    return [
        f"5. Sync a marketing-only person to Microsoft (person {g.lead.marketing_only_id}): "
        "the next cycle creates its Dynamics lead:",
        *(f"  {line}" for line in lines),
        "",
    ]


def _step_six(g: GuideInput) -> list[str]:
    lines = company_edit_lines(g)
    if not lines or g.lead.colleagues is None:
        return []
    edited, other = g.lead.colleagues
    return [
        f"6. Rename person {edited}'s company through the API: person {other}, of the same "
        "company, shows the new name at once (it stays in crmsync; the next Dynamics edit of "
        "the account overwrites it):",
        *(f"  {line}" for line in lines),
        "",
    ]


def guide_text(g: GuideInput) -> str:
    """The whole printed guide, as plain text (no markup)."""
    org, lead = g.org, g.lead
    lines = [
        "",
        banner(lead),
        "",
        *admin_lines(g),
        "Marketo-compatible API",
        f"  API URL:        {g.api_url}",
        f"  client id:      {g.client_id}",
        f"  client secret:  {g.client_secret}",
        f"  static list:    {g.list_id} (Demo newsletter)",
        "Dynamics 365 (the bundled Dataverse emulator)",
        f"  emulator URL:   {org.base_url}",
        f"  Web API:        {org.web_api_url}",
        f"  salesperson:    {org.salesperson_upn} / {org.salesperson_password.reveal()}"
        f" ({org.salesperson_name})",
        f"  config:         {_shown_path(g.config_path)}",
        f"The lead below:   {lead.name} <{lead.email}>, person {lead.person_id} in crmsync, "
        f"lead {lead.lead_id} in Dynamics",
        "",
        f"1. Change the lead's job title in Dynamics, as {org.salesperson_name}:",
        *(f"  {line}" for line in dynamics_edit_lines(g)),
        "",
        "2. Change the same person's mobile phone through the Marketo API:",
        *(f"  {line}" for line in marketing_edit_lines(g)),
        "",
        f"3. Watch each edit arrive on the other side (the sync runs every {g.pause_seconds:g} s):",
        *(f"  {line}" for line in watch_lines(g)),
        "",
        "4. Create a person through the Marketo API; the trigger campaign 'Demo: web sign-ups to "
        "Dynamics' gives them a Dynamics lead at once:",
        *(f"  {line}" for line in campaign_lines(g)),
        "",
        *_step_five(g),
        *_step_six(g),
        f"Python (marketorestpython, installed in crmsync's environment: {_python_name()}):",
        "  from marketorestpython.client import MarketoClient",
        f"  mc = MarketoClient('000-AAA-000', '{g.client_id}', '{g.client_secret}')",
        f"  mc.host = '{g.api_url}'",
        f"  mc.execute(method='get_lead_by_id', id={lead.person_id}, "
        "fields=['email', 'title', 'mobilePhone'])",
        "",
        (
            "Ctrl-C stops the API, the sync and the emulator."
            if g.serving
            else "Nothing is running now (--no-serve): start `crmsync demo` to try these steps."
        ),
        "",
    ]
    return "\n".join(lines)


def _python_name() -> str:
    """How to run the Python that has crmsync's packages (e.g. ``.venv/bin/python``)."""
    return _shown_path(Path(sys.executable))
