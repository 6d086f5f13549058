"""``crmsync demo``: a working marketing database with a Marketo-compatible API, in one command.

Everything lives in ``.demo/`` under the working directory: a SQLite database is migrated, a
few hundred realistic persons (always the same ones) and a static list are loaded, an API
client is created, and the server starts on 127.0.0.1 with the URL, credentials and ready-made
``curl`` / Python examples printed. Running it again reuses the data (the load is an
idempotent createOrUpdate by email) and replaces the demo API client.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import Engine

from crmsync.cli import settings_from
from crmsync.cli.serve import run_server
from crmsync.errors import ConfigurationError, InputError
from crmsync.marketing.lists import ListService
from crmsync.marketing.persons import PersonService
from crmsync.store.db import open_database, upgrade_database
from crmsync.web.app import create_app
from crmsync.web.clients import ApiClientStore, CreatedClient

DEMO_DIRECTORY = ".demo"
DEMO_CLIENT_NAME = "demo"
DEMO_LIST_NAME = "Demo newsletter"
DEMO_SEED = 20_260_101
BATCH = 300

console = Console()

_FIRST_NAMES = (
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "John",
    "Radia",
    "Tim",
    "Katherine",
    "Donald",
    "Hedy",
    "Edsger",
    "Annie",
    "Guido",
    "Sophie",
    "Niklaus",
    "Joan",
    "Bjarne",
    "Mary",
    "Vint",
    "Karen",
    "Leslie",
    "Elena",
    "Yukihiro",
    "Shafi",
    "Anders",
)
_LAST_NAMES = (
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "McCarthy",
    "Perlman",
    "Berners-Lee",
    "Johnson",
    "Knuth",
    "Lamarr",
    "Dijkstra",
    "Easley",
    "van Rossum",
    "Wilson",
    "Wirth",
    "Clarke",
    "Stroustrup",
    "Keller",
    "Cerf",
    "Sparck Jones",
    "Lamport",
    "Martin",
    "Matsumoto",
    "Goldwasser",
    "Hejlsberg",
)
_COMPANIES = (
    ("Northwind Traders", "northwind.example"),
    ("Contoso Ltd", "contoso.example"),
    ("Fabrikam Inc", "fabrikam.example"),
    ("Adventure Works", "adventure-works.example"),
    ("Tailspin Toys", "tailspin.example"),
    ("Wide World Importers", "wideworld.example"),
    ("Litware Inc", "litware.example"),
    ("Proseware", "proseware.example"),
    ("Woodgrove Bank", "woodgrove.example"),
    ("Alpine Ski House", "alpineski.example"),
)
_TITLES = (
    "Marketing Manager",
    "VP Sales",
    "CTO",
    "Head of Operations",
    "Data Analyst",
    "Procurement Lead",
    "Founder",
    "Product Manager",
    "IT Director",
    "Account Executive",
)
_PLACES = (
    ("Seattle", "WA", "United States", "98101"),
    ("Austin", "TX", "United States", "73301"),
    ("London", "", "United Kingdom", "EC1A 1BB"),
    ("Berlin", "", "Germany", "10115"),
    ("Paris", "", "France", "75001"),
    ("Toronto", "ON", "Canada", "M5H 2N2"),
    ("Sydney", "NSW", "Australia", "2000"),
    ("Amsterdam", "", "Netherlands", "1012"),
)
_SOURCES = ("Website", "Trade Show", "Webinar", "Partner", "Referral", "Paid Search")
_STATUSES = ("New", "Open", "Working", "Nurture", "Qualified")
_INDUSTRIES = ("Software", "Retail", "Finance", "Manufacturing", "Healthcare", "Education")


def demo_persons(count: int, seed: int = DEMO_SEED) -> list[dict[str, object]]:
    """Return ``count`` realistic, always identical person records (unique e-mails)."""
    rng = random.Random(seed)
    records: list[dict[str, object]] = []
    for index in range(count):
        first = rng.choice(_FIRST_NAMES)
        last = rng.choice(_LAST_NAMES)
        company, domain = rng.choice(_COMPANIES)
        city, state, country, postal = rng.choice(_PLACES)
        local = f"{first}.{last}".lower().replace(" ", "").replace("-", "")
        records.append(
            {
                "email": f"{local}.{index}@{domain}",
                "firstName": first,
                "lastName": last,
                "company": company,
                "title": rng.choice(_TITLES),
                "phone": f"+1 555 {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}",
                "city": city,
                "state": state or None,
                "country": country,
                "postalCode": postal,
                "industry": rng.choice(_INDUSTRIES),
                "leadSource": rng.choice(_SOURCES),
                "leadStatus": rng.choice(_STATUSES),
                "leadScore": rng.randrange(0, 100),
                "numberOfEmployees": rng.choice((12, 50, 250, 1200, 8000)),
                "unsubscribed": rng.random() < 0.05,
            }
        )
    return records


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """What ``prepare_demo`` made: where the data is and how to call the API."""

    database_url: str
    persons: int
    list_id: int
    client: CreatedClient


def _load_persons(engine: Engine, count: int) -> tuple[int, list[int]]:
    service = PersonService(engine)
    ids: list[int] = []
    records = demo_persons(count)
    for start in range(0, len(records), BATCH):
        outcomes = service.sync(
            records[start : start + BATCH],
            action="createOrUpdate",
            lookup_field="email",
            source="crmsync demo",
        )
        ids.extend(outcome.id for outcome in outcomes if outcome.id is not None)
    return len(ids), ids


def _ensure_list(engine: Engine, member_ids: list[int]) -> int:
    lists = ListService(engine)
    existing, _ = lists.query(names=[DEMO_LIST_NAME])
    if existing:
        raw_id = existing[0]["id"]
        assert isinstance(raw_id, int)
        list_id = raw_id
    else:
        try:
            list_id = lists.create(DEMO_LIST_NAME, "Persons who asked for the newsletter")
        except InputError:
            found, _ = lists.query(names=[DEMO_LIST_NAME])
            raw_id = found[0]["id"]
            assert isinstance(raw_id, int)
            list_id = raw_id
    lists.add_members(list_id, member_ids, source="crmsync demo")
    return list_id


def prepare_demo(directory: Path, count: int) -> DemoSetup:
    """Migrate the demo database in ``directory``, load the data and make a fresh API client."""
    directory.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{(directory / 'crmsync.db').resolve()}"
    upgrade_database(database_url)
    engine = open_database(database_url)
    try:
        loaded, ids = _load_persons(engine, count)
        list_id = _ensure_list(engine, ids[::7][:BATCH])
        clients = ApiClientStore(engine)
        for client in clients.list():
            if client.name == DEMO_CLIENT_NAME and client.active:
                clients.revoke(client.client_id)
        created = clients.create(DEMO_CLIENT_NAME)
    finally:
        engine.dispose()
    return DemoSetup(database_url, loaded, list_id, created)


def _print_instructions(setup: DemoSetup, url: str) -> None:
    client_id = setup.client.client_id
    secret = setup.client.client_secret.reveal()
    console.print(f"\n[bold]crmsync demo[/bold]: {setup.persons} persons, list {setup.list_id}")
    console.print(f"  API URL:       {url}")
    console.print(f"  client id:     {client_id}")
    console.print(f"  client secret: {secret}")
    console.print("\n[bold]curl[/bold]:")
    console.print(
        f"  TOKEN=$(curl -s '{url}/identity/oauth/token?grant_type=client_credentials"
        f"&client_id={client_id}&client_secret={secret}' | python3 -c "
        "'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        soft_wrap=True,
    )
    console.print(
        f'  curl -s -H "Authorization: Bearer $TOKEN" '
        f"'{url}/rest/v1/lists/{setup.list_id}/leads.json?fields=email,firstName,company"
        "&batchSize=5'",
        soft_wrap=True,
    )
    console.print("\n[bold]python[/bold] (marketorestpython):")
    console.print("  from marketorestpython.client import MarketoClient")
    console.print(f"  mc = MarketoClient('000-AAA-000', '{client_id}', '{secret}')", soft_wrap=True)
    console.print(f"  mc.host = '{url}'")
    console.print(
        "  mc.execute(method='get_multiple_leads_by_list_id', "
        f"listId={setup.list_id}, fields=['email', 'company'])",
        soft_wrap=True,
    )
    console.print("\nCtrl-C stops the server.\n")


def demo(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Port on 127.0.0.1 (default: the configured port, or any "
            "free one when it is taken; 0: any free one).",
        ),
    ] = None,
    persons: Annotated[int, typer.Option("--persons", min=1, help="Persons to load.")] = 400,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Prepare the data and client, then exit.")
    ] = False,
) -> None:
    """Set up a demo marketing database in ./.demo and serve the Marketo-compatible API."""
    settings = settings_from(ctx)
    setup = prepare_demo(Path.cwd() / DEMO_DIRECTORY, persons)
    if no_serve:
        _print_instructions(setup, "http://127.0.0.1:<port>")
        return
    demo_settings = settings.with_database(setup.database_url)
    app = create_app(demo_settings)

    def announce(url: str) -> None:
        _print_instructions(setup, url)

    if port is not None:
        run_server(app, "127.0.0.1", port, on_ready=announce)
        return
    try:
        run_server(app, "127.0.0.1", settings.web.port, on_ready=announce)
    except ConfigurationError:
        console.print(f"port {settings.web.port} is taken; using a free port instead")
        run_server(app, "127.0.0.1", 0, on_ready=announce)
