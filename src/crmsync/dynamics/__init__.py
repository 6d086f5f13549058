"""The Dataverse Web API client: the only code in crmsync that talks to Dynamics.

Public surface: :class:`DynamicsClient`, :func:`build_client`, :class:`RetryPolicy`,
:func:`classify` / :class:`Resolution`, and the typed values in :mod:`crmsync.dynamics.types`.

The names are loaded on first use, so importing one light module of the package (such as
:mod:`crmsync.dynamics.links`) does not load the HTTP client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmsync.dynamics.budget import ClientStats
    from crmsync.dynamics.classify import Action, Resolution, classify
    from crmsync.dynamics.client import DynamicsClient
    from crmsync.dynamics.factory import build_client
    from crmsync.dynamics.metadata import Identity, UserPrivileges
    from crmsync.dynamics.retry import RetryPolicy

_HOMES = {
    "Action": "classify",
    "ClientStats": "budget",
    "DynamicsClient": "client",
    "Identity": "metadata",
    "Resolution": "classify",
    "RetryPolicy": "retry",
    "UserPrivileges": "metadata",
    "build_client": "factory",
    "classify": "classify",
}

__all__ = [
    "Action",
    "ClientStats",
    "DynamicsClient",
    "Identity",
    "Resolution",
    "RetryPolicy",
    "UserPrivileges",
    "build_client",
    "classify",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
