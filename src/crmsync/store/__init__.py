"""The store: SQLAlchemy Core tables, Alembic migrations and the engine factory."""
