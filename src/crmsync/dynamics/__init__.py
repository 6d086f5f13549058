"""The Dataverse Web API client: the only code in crmsync that talks to Dynamics.

Its parts, each imported from its own module (this package imports none of them, so reading
a typed value such as :mod:`crmsync.dynamics.types` never loads the HTTP stack):
:func:`~crmsync.dynamics.factory.build_client` builds a
:class:`~crmsync.dynamics.client.DynamicsClient` from settings; requests are retried in
:mod:`crmsync.dynamics.retry`, classified in :mod:`crmsync.dynamics.classify`, pages of changes
parsed in :mod:`crmsync.dynamics.changes` and read in :mod:`crmsync.dynamics.tracking`.
"""
