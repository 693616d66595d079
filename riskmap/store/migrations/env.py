"""Alembic environment of the PostGIS store: runs on the connection `riskmap db init` passes.

`riskmap.store.postgis.init_db` puts an open SQLAlchemy connection in
``config.attributes["connection"]``; the version table lives in the store's own schema.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from riskmap.store.postgis import SCHEMA

connection = context.config.attributes["connection"]
connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
context.configure(connection=connection, version_table_schema=SCHEMA)
with context.begin_transaction():
    context.run_migrations()
