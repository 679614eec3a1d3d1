"""Enrichments: language, sentiment, toxicity and question labels per activity (derived data).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrichments",
        sa.Column("activity_id", sa.String(), nullable=False),
        sa.Column("enricher", sa.String(length=50), nullable=False),
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.Column("label", sa.String(length=50), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("extras", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["activity_id"], ["activities.id"], name=op.f("fk_enrichments_activity_id_activities")),
        sa.PrimaryKeyConstraint("activity_id", "enricher", name=op.f("pk_enrichments")),
    )
    op.create_index(op.f("ix_enrichments_enricher_label"), "enrichments", ["enricher", "label"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_enrichments_enricher_label"), table_name="enrichments")
    op.drop_table("enrichments")
