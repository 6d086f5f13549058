"""Alembic migrations of the marketing database (``crmsync db upgrade`` runs them)."""
