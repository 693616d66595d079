"""Initial schema: heads, versions, features (PostGIS), history, attachments.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "riskmap"


def upgrade() -> None:
    """Create the store's tables, indexes and the lenient ``try_date`` cast of the views."""
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "heads",
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("current_version", sa.Integer, nullable=True),
        sa.Column("token", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('layer', 'records', 'catalog')", name="heads_kind"),
        schema=SCHEMA,
    )
    op.create_table(
        "versions",
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("version_no", sa.Integer, primary_key=True),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("columns", JSONB, nullable=True),
        sa.Column("records", JSONB, nullable=True),
        sa.Column("content", sa.Text, nullable=True),
        sa.Column("n_rows", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.ForeignKeyConstraint(
            ["kind", "name"], [f"{SCHEMA}.heads.kind", f"{SCHEMA}.heads.name"],
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "features",
        sa.Column("layer_id", sa.Text, primary_key=True),
        sa.Column("version_no", sa.Integer, primary_key=True),
        sa.Column("fid", sa.Integer, primary_key=True),
        sa.Column("uid", sa.Text, nullable=True),
        sa.Column("township_code", sa.Text, nullable=True),
        sa.Column("props", JSONB, nullable=False),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=True),
        schema=SCHEMA,
    )
    op.create_index("features_geom_gist", "features", ["geom"], schema=SCHEMA,
                    postgresql_using="gist")
    op.create_index("features_township", "features", ["layer_id", "version_no", "township_code"],
                    schema=SCHEMA)
    op.create_table(
        "history",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.Text, nullable=False, server_default=""),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("rows_before", sa.Integer, nullable=True),
        sa.Column("rows_after", sa.Integer, nullable=True),
        sa.Column("backup", sa.Text, nullable=True),
        sa.Column("entry", JSONB, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("history_object", "history", ["kind", "name", "id"], schema=SCHEMA)
    op.create_table(
        "attachments",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=SCHEMA,
    )
    # Lenient casts for the typed per-layer views: a malformed stored value reads as NULL
    # instead of making the whole view fail.
    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.try_date(value text) RETURNS date
        LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
            RETURN value::date;
        EXCEPTION WHEN others THEN
            RETURN NULL;
        END $$
    """)


def downgrade() -> None:
    """Drop everything this revision created (the data with it)."""
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.try_date(text)")
    for table in ("attachments", "history", "features", "versions", "heads"):
        op.drop_table(table, schema=SCHEMA)
