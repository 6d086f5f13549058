"""The demo's marketing persons: a few hundred realistic, always identical people."""

from __future__ import annotations

import random

DEMO_SEED = 20_260_101

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
# Labels of the demo org's option sets, so that every person can be synced to Microsoft as a
# lead or a contact: lead sources of a lead's Lead Source, live lead states (Open → an active
# contact), industries of a lead's and an account's Industry.
_SOURCES = ("Web", "Trade Show", "Seminar", "Partner", "Employee Referral", "Advertisement")
_STATUSES = ("Open", "Open", "Open", "Qualified")
_INDUSTRIES = (
    "Business Services",
    "Consulting",
    "Financial",
    "Durable Manufacturing",
    "Service Retail",
    "Doctor's Offices and Clinics",
)


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
