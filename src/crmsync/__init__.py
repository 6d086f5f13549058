"""crmsync: a marketing database with a native two-way Microsoft Dynamics 365 sync."""

__version__ = "0.1.0"
