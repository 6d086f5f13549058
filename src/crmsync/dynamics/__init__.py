"""The Dataverse Web API client: the only code in crmsync that talks to Dynamics.

Public surface: :class:`DynamicsClient`, :func:`build_client`, :class:`RetryPolicy`,
:func:`classify` / :class:`Resolution`, and the typed values in :mod:`crmsync.dynamics.types`.
"""

from crmsync.dynamics.budget import ClientStats
from crmsync.dynamics.classify import Action, Resolution, classify
from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.dynamics.metadata import Identity, UserPrivileges
from crmsync.dynamics.retry import RetryPolicy

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
