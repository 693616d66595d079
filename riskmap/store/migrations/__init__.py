"""Alembic migrations of the PostGIS store's schema (run by ``riskmap db init``)."""
