"""The shape of Web API links: what of a ``@odata.nextLink`` / ``@odata.deltaLink`` is worth
storing.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def portable_link(link: str) -> str:
    """``link`` relative to the Web API root: ``https://org.crm.dynamics.com/api/data/v9.2/
    leads?$deltatoken=…`` → ``leads?$deltatoken=…``.

    Stored links are portable: the client resolves them against the configured Dynamics URL,
    so a new host name for the same org (or the emulator on a new port) is followed by the
    next cycle. A link of another shape is kept as it is.
    """
    parts = urlsplit(link)
    if not parts.scheme or not parts.netloc:
        return link
    _, marker, rest = parts.path.partition("/api/data/")
    version, slash, resource = rest.partition("/")
    if not marker or not slash or not version.startswith("v"):
        return link
    return resource + (f"?{parts.query}" if parts.query else "")
