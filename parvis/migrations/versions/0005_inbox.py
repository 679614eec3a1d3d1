"""Inbox: shared settings (business hours, response target) and the team's platform identities.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "team_identities",
        sa.Column("identity_id", sa.String(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("linked_by", sa.String(length=100), nullable=False),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["identities.id"], name=op.f("fk_team_identities_identity_id_identities")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_team_identities_user_id_users")),
        sa.PrimaryKeyConstraint("identity_id", name=op.f("pk_team_identities")),
    )
    op.create_index(op.f("ix_team_identities_user_id"), "team_identities", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_team_identities_user_id"), table_name="team_identities")
    op.drop_table("team_identities")
    op.drop_table("settings")
