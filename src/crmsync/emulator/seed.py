"""Realistic, reproducible data for the emulator: leads, accounts, contacts, opportunities, users.

:func:`seed_dataset` fills a :class:`~crmsync.emulator.storage.Storage` with ``leads`` leads and
proportional other tables (about ``leads/5`` accounts, ``leads`` contacts, ``leads/10``
opportunities, one salesperson per 2,000 leads, at least five, and one team per ten users),
plus a few campaigns (three launched, one proposed) whenever it creates leads.
Every value — ids included — comes from one ``random.Random(seed)`` drawn in a fixed order,
so the same seed always produces the same rows. Rows are generated and inserted in batches
(``Storage.insert_many``), so memory stays flat and a million leads take about a minute.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

BATCH_SIZE = 5000
T = TypeVar("T")
# Opportunities point at leads drawn from the first leads only, so memory stays flat.
_LEAD_SAMPLE = 20_000


def _pool(weights: dict[int, int]) -> tuple[int, ...]:
    """A tuple where each value appears as often as its weight (fast weighted choice)."""
    return tuple(value for value, weight in weights.items() for _ in range(weight))


# Lead status: mostly New/Contacted (open), some Disqualified reasons (spec §2b statuscode).
_LEAD_STATUS_POOL = _pool({1: 60, 2: 25, 4: 6, 5: 4, 6: 3, 7: 2})
_LEAD_RATING_POOL = _pool({1: 15, 2: 55, 3: 30})  # Hot / Warm / Cold
_OPPORTUNITY_STATUS_POOL = _pool({1: 55, 2: 10, 3: 20, 4: 10, 5: 5})
Row = dict[str, Any]


class SeedTarget(Protocol):
    """What the seeder needs from storage (``crmsync.emulator.storage.Storage`` provides it)."""

    def insert_many(self, entity: str, rows: Any, *, acting_user: str) -> list[str]:
        """Insert rows, stamping them as created by ``acting_user``; return their ids."""
        ...


@dataclass(frozen=True, slots=True)
class SeedSummary:
    """How many rows of each table were created."""

    leads: int
    accounts: int
    contacts: int
    opportunities: int
    users: int
    teams: int
    campaigns: int = 0

    def as_dict(self) -> dict[str, int]:
        """Counts of the tables that grow with the number of leads, keyed by table, for
        ``--json`` output (the few fixed campaigns are not among them)."""
        return {
            "lead": self.leads,
            "account": self.accounts,
            "contact": self.contacts,
            "opportunity": self.opportunities,
            "systemuser": self.users,
            "team": self.teams,
        }


def planned_counts(leads: int) -> SeedSummary:
    """The table sizes :func:`seed_dataset` creates for ``leads`` leads."""
    if leads < 0:
        raise ValueError("the number of leads cannot be negative")
    users = max(5, leads // 2000)
    return SeedSummary(
        leads=leads,
        accounts=leads // 5,
        contacts=leads,
        opportunities=leads // 10,
        users=users,
        teams=max(1, users // 10),
        campaigns=len(CAMPAIGNS) if leads else 0,
    )


class _Generator:
    """Draws every value from one seeded generator, in a fixed order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.random = self.rng.random

    def pick(self, values: Sequence[T]) -> T:
        """One of ``values``, uniformly (cheaper than ``Random.choice``; same determinism)."""
        return values[int(self.random() * len(values))]

    def span(self, low: int, high: int) -> int:
        """An integer in ``[low, high)``, uniformly."""
        return low + int(self.random() * (high - low))

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def person(self) -> tuple[str, str]:
        return self.pick(FIRST_NAMES), self.pick(LAST_NAMES)

    def company(self) -> str:
        return f"{self.pick(COMPANY_STEMS)} {self.pick(COMPANY_SUFFIXES)}"

    def phone(self, country: str) -> str:
        digits = self.span(1000000, 9999999)
        prefix = {"United States": "+1", "Canada": "+1", "United Kingdom": "+44"}.get(
            country, "+49" if country == "Germany" else "+33"
        )
        return f"{prefix} {self.span(200, 999)} {digits // 10000:03d}-{digits % 10000:04d}"

    def address(self) -> Row:
        city, state, country, postal = self.pick(CITIES)
        number = self.span(1, 9999)
        return {
            "address1_line1": f"{number} {self.pick(STREETS)}",
            "address1_city": city,
            "address1_stateorprovince": state,
            "address1_country": country,
            "address1_postalcode": postal.replace("#", str(self.span(10, 99))),
        }


@functools.lru_cache(maxsize=4096)
def _domain(company: str) -> str:
    return "".join(ch for ch in company.lower() if ch.isalnum())[:40] + ".example"


def _email(first: str, last: str, domain: str, serial: int) -> str:
    local = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
    return f"{local}{serial}@{domain}"


def _batches(total: int, make: Callable[[int], Row]) -> Iterator[list[Row]]:
    for start in range(0, total, BATCH_SIZE):
        yield [make(index) for index in range(start, min(total, start + BATCH_SIZE))]


def seed_dataset(
    storage: SeedTarget,
    leads: int,
    seed: int,
    *,
    acting_user: str | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> SeedSummary:
    """Create ``leads`` realistic leads and proportional related rows; deterministic per seed.

    ``acting_user`` is the systemuserid stamped as creator (default: the first seeded
    salesperson). ``progress(table, rows_done)`` is called after every batch.
    """
    plan = planned_counts(leads)
    gen = _Generator(seed)
    rng = gen.rng
    pick, span = gen.pick, gen.span
    base_day = datetime(2025, 1, 1, tzinfo=UTC)

    def report(table: str, done: int) -> None:
        if progress is not None:
            progress(table, done)

    user_ids = [gen.guid() for _ in range(plan.users)]
    creator = acting_user or user_ids[0]
    users: list[Row] = []
    for index, user_id in enumerate(user_ids):
        first, last = gen.person()
        users.append(
            {
                "systemuserid": user_id,
                "firstname": first,
                "lastname": last,
                "internalemailaddress": _email(first, last, "contoso.example", index),
                "domainname": _email(first, last, "contoso.example", index),
                "title": pick(("Account Executive", "Sales Manager", "Sales Rep")),
                "isdisabled": False,
            }
        )
    storage.insert_many("systemuser", users, acting_user=creator)
    report("systemuser", len(users))
    team_ids = [gen.guid() for _ in range(plan.teams)]
    regions = ("North", "South", "East", "West", "Central", "Enterprise", "Partner", "Inside")
    teams = [
        {
            "teamid": team_id,
            "name": f"{regions[index % len(regions)]} Sales {index // len(regions) + 1}",
            "teamtype": 0,
            "administratorid": user_ids[index % len(user_ids)],
        }
        for index, team_id in enumerate(team_ids)
    ]
    storage.insert_many("team", teams, acting_user=creator)
    report("team", len(teams))

    def owner() -> tuple[str, str]:
        if rng.random() < 0.1:
            return ("team", pick(team_ids))
        return ("systemuser", pick(user_ids))

    account_ids = [gen.guid() for _ in range(plan.accounts)]
    account_names: list[str] = []

    def make_account(index: int) -> Row:
        name = gen.company()
        account_names.append(name)
        address = gen.address()
        return {
            "accountid": account_ids[index],
            "name": name,
            "accountnumber": f"ACC-{index + 1:07d}",
            "telephone1": gen.phone(address["address1_country"]),
            "emailaddress1": f"info@{_domain(name)}",
            "websiteurl": f"https://www.{_domain(name)}",
            "industrycode": span(1, 34),
            "numberofemployees": pick((5, 12, 40, 120, 450, 1800, 7500, 32000)),
            "revenue": round(rng.uniform(1e5, 5e9), 2),
            "ownerid": owner(),
            **address,
        }

    done = 0
    for batch in _batches(plan.accounts, make_account):
        storage.insert_many("account", batch, acting_user=creator)
        done += len(batch)
        report("account", done)

    def make_contact(index: int) -> Row:
        first, last = gen.person()
        row: Row = {
            "contactid": gen.guid(),
            "firstname": first,
            "lastname": last,
            "jobtitle": pick(JOB_TITLES),
            "ownerid": owner(),
            "donotbulkemail": rng.random() < 0.04,
            **gen.address(),
        }
        row["telephone1"] = gen.phone(row["address1_country"])
        if account_ids and rng.random() < 0.85:
            account = span(0, len(account_ids))
            row["parentcustomerid"] = ("account", account_ids[account])
            domain = _domain(account_names[account])
        else:
            domain = pick(("mail.example", "inbox.example", "post.example"))
        row["emailaddress1"] = _email(first, last, domain, index)
        return row

    done = 0
    for batch in _batches(plan.contacts, make_contact):
        storage.insert_many("contact", batch, acting_user=creator)
        done += len(batch)
        report("contact", done)

    lead_ids: list[str] = []

    def make_lead(index: int) -> Row:
        first, last = gen.person()
        company = gen.company()
        address = gen.address()
        status = pick(_LEAD_STATUS_POOL)
        lead_id = gen.guid()
        if len(lead_ids) < _LEAD_SAMPLE:
            lead_ids.append(lead_id)
        row: Row = {
            "leadid": lead_id,
            "firstname": first,
            "lastname": last,
            "companyname": company,
            "subject": f"Interested in {pick(PRODUCTS)}",
            "emailaddress1": _email(first, last, _domain(company), index),
            "telephone1": gen.phone(address["address1_country"]),
            "mobilephone": gen.phone(address["address1_country"])[:20],
            "jobtitle": pick(JOB_TITLES),
            "websiteurl": f"https://www.{_domain(company)}",
            "leadsourcecode": span(1, 11),
            "leadqualitycode": pick(_LEAD_RATING_POOL),
            "industrycode": span(1, 34),
            "numberofemployees": pick((3, 10, 25, 80, 250, 1000, 5000)),
            "revenue": round(rng.uniform(5e4, 2e9), 2),
            "statuscode": status,
            "donotemail": rng.random() < 0.03,
            "donotbulkemail": rng.random() < 0.05,
            "mkt_lastinterestingmomentdate": base_day + timedelta(minutes=span(0, 600_000)),
            "ownerid": owner(),
            **address,
        }
        if account_ids and rng.random() < 0.2:
            row["parentaccountid"] = pick(account_ids)
        return row

    done = 0
    for batch in _batches(plan.leads, make_lead):
        storage.insert_many("lead", batch, acting_user=creator)
        done += len(batch)
        report("lead", done)

    def make_opportunity(index: int) -> Row:
        account = span(0, len(account_ids)) if account_ids else -1
        status = pick(_OPPORTUNITY_STATUS_POOL)
        row: Row = {
            "opportunityid": gen.guid(),
            "name": f"{pick(PRODUCTS)} for "
            + (account_names[account] if account >= 0 else "new customer"),
            "estimatedvalue": round(rng.uniform(1e3, 2.5e6), 2),
            "closeprobability": pick((10, 20, 40, 60, 80, 90)),
            "estimatedclosedate": base_day + timedelta(days=span(30, 700)),
            "statuscode": status,
            "ownerid": owner(),
        }
        if account >= 0:
            row["customerid"] = ("account", account_ids[account])
            row["parentaccountid"] = account_ids[account]
        if lead_ids and rng.random() < 0.3:
            row["originatingleadid"] = pick(lead_ids)
        return row

    done = 0
    for batch in _batches(plan.opportunities, make_opportunity):
        storage.insert_many("opportunity", batch, acting_user=creator)
        done += len(batch)
        report("opportunity", done)
    if plan.campaigns:
        campaigns = [
            {
                "campaignid": gen.guid(),
                "name": name,
                "codename": code,
                "typecode": kind,
                "description": description,
                "statecode": 0,
                "statuscode": status,
                "actualstart": base_day + timedelta(days=start),
                "budgetedcost": budget,
                "ownerid": ("systemuser", user_ids[0]),
            }
            for name, code, kind, status, start, budget, description in CAMPAIGNS
        ]
        # Not reported through ``progress``: callers draw one bar per as_dict() table.
        storage.insert_many("campaign", campaigns, acting_user=creator)
    return plan


# The campaigns of the demo org: name, code, typecode, statuscode (2 Launched, 0 Proposed; all
# in state Active), start day after 2025-01-01, budget, description.
CAMPAIGNS = (
    (
        "Spring Product Launch",
        "CMP-1001",
        3,
        2,
        60,
        50_000.0,
        "Launch event and follow-up mailing for the new analytics suite.",
    ),
    (
        "Webinar Series: Data Platform",
        "CMP-1002",
        2,
        2,
        90,
        12_000.0,
        "Monthly webinars; registrants are added to the marketing list.",
    ),
    (
        "Partner Co-marketing",
        "CMP-1003",
        4,
        2,
        120,
        25_000.0,
        "Joint campaign with resellers in Europe.",
    ),
    (
        "Autumn Trade Show",
        "CMP-1004",
        3,
        0,
        250,
        80_000.0,
        "Booth and lead capture at the autumn trade show (proposed).",
    ),
)


FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony",
    "Sandra", "Mark", "Margaret", "Donald", "Ashley", "Steven", "Kimberly", "Andrew", "Emily",
    "Paul", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian",
    "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Laura",
    "Edward", "Sharon", "Jeffrey", "Cynthia", "Ryan", "Kathleen", "Jacob", "Amy", "Gary", "Angela",
    "Nicholas", "Shirley", "Eric", "Anna", "Jonathan", "Brenda", "Stephen", "Pamela", "Larry",
    "Emma", "Justin", "Nicole", "Scott", "Helen", "Brandon", "Samantha", "Benjamin", "Katherine",
    "Samuel", "Christine", "Frank", "Debra", "Gregory", "Rachel", "Raymond", "Carolyn", "Priya",
    "Wei", "Yuki", "Olga", "Mateo", "Sofia", "Lukas", "Ines", "Aarav", "Fatima", "Hiroshi", "Chloé",
    "José", "Zoë", "Björn", "Siobhan",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera",
    "Campbell", "Mitchell", "Carter", "Roberts", "Müller", "Schmidt", "Schneider", "Fischer",
    "Dubois", "Moreau", "Laurent", "Rossi", "Russo", "Ferrari", "Tanaka", "Suzuki", "Sato",
    "Kim", "Park", "Chen", "Wang", "Li", "Singh", "Patel", "Kumar", "O'Brien", "Murphy", "Kelly",
    "Novak", "Kowalski", "Jensen", "Nielsen", "Andersson", "Johansson", "Silva", "Santos",
)  # fmt: skip
COMPANY_STEMS = (
    "Northwind", "Contoso", "Fabrikam", "Adventure", "Tailspin", "Wingtip", "Litware", "Proseware",
    "Alpine", "Blue Yonder", "Coho", "Fourth Coffee", "Graphic", "Humongous", "Lucerne", "Margie's",
    "Southridge", "Trey", "Woodgrove", "Wide World", "Consolidated", "Bluebird", "Granite",
    "Summit", "Harbor", "Redwood", "Silverline", "Ironbridge", "Maple", "Evergreen", "Pinnacle",
    "Cobalt", "Meridian", "Atlas", "Beacon", "Cascade", "Falcon", "Horizon", "Keystone", "Orion",
)  # fmt: skip
COMPANY_SUFFIXES = (
    "Traders", "Ltd", "Inc", "Corp", "Works", "Systems", "Logistics", "Partners", "Group",
    "Industries", "Labs", "Foods", "Energy", "Bank", "Insurance", "Consulting", "Media", "GmbH",
    "SA", "Software", "Health", "Motors", "Airlines", "Publishing",
)  # fmt: skip
JOB_TITLES = (
    "Marketing Manager", "VP Marketing", "Chief Marketing Officer", "Marketing Coordinator",
    "Sales Director", "IT Manager", "CIO", "CTO", "Procurement Lead", "Operations Manager",
    "Product Manager", "Head of Digital", "Demand Generation Manager", "CEO", "CFO",
    "Office Manager", "Business Analyst", "Software Engineer", "Purchasing Agent", "Consultant",
)  # fmt: skip
PRODUCTS = (
    "Cloud Backup", "Analytics Suite", "Field Service", "Marketing Automation", "Data Platform",
    "Security Audit", "Managed Print", "Fleet Tracking", "Payroll", "E-commerce Storefront",
    "Customer Portal", "Support Plan", "Training Package", "IoT Sensors", "Annual Licence",
)  # fmt: skip
STREETS = (
    "Main Street", "Oak Avenue", "Pine Road", "Maple Drive", "Cedar Lane", "Elm Street",
    "Lakeview Road", "Hill Street", "Park Avenue", "Market Street", "Church Road", "High Street",
    "Station Road", "Harbour Way", "Industrial Parkway", "Commerce Drive",
)  # fmt: skip
# (city, state/province, country, postal code pattern with "#" for two random digits)
CITIES = (
    ("Seattle", "WA", "United States", "981##"),
    ("Redmond", "WA", "United States", "980##"),
    ("San Francisco", "CA", "United States", "941##"),
    ("Los Angeles", "CA", "United States", "900##"),
    ("Austin", "TX", "United States", "787##"),
    ("Chicago", "IL", "United States", "606##"),
    ("New York", "NY", "United States", "100##"),
    ("Boston", "MA", "United States", "021##"),
    ("Atlanta", "GA", "United States", "303##"),
    ("Denver", "CO", "United States", "802##"),
    ("Toronto", "ON", "Canada", "M5V 2##"),
    ("Vancouver", "BC", "Canada", "V6B 1##"),
    ("London", "England", "United Kingdom", "EC1A 1##"),
    ("Manchester", "England", "United Kingdom", "M1 1##"),
    ("Berlin", "Berlin", "Germany", "101##"),
    ("Munich", "Bavaria", "Germany", "803##"),
    ("Paris", "Île-de-France", "France", "750##"),
    ("Lyon", "Auvergne-Rhône-Alpes", "France", "690##"),
)
