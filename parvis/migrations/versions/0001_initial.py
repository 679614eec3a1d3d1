"""Initial schema: sources, channels, members, identities, conversations, activities, links,
raw payloads, quarantine, cursors, member events, import runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("platform", sa.String(length=50), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("present", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_runs")),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("merged_into", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["merged_into"], ["members.id"], name=op.f("fk_members_merged_into_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("platform", sa.String(length=50), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("extras", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
    )
    op.create_table(
        "channels",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("native_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("extras", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_channels_source_id_sources")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
    )
    op.create_index(op.f("ix_channels_source_id"), "channels", ["source_id"], unique=False)
    op.create_table(
        "cursors",
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("stream", sa.String(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=40), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_cursors_source_id_sources")),
        sa.PrimaryKeyConstraint("source_id", "stream", name=op.f("pk_cursors")),
    )
    op.create_table(
        "identities",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("native_id", sa.Text(), nullable=False),
        sa.Column("member_id", sa.String(), nullable=False),
        sa.Column("home_member_id", sa.String(), nullable=False),
        sa.Column("handle", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("extras", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["home_member_id"],
            ["members.id"],
            name=op.f("fk_identities_home_member_id_members"),
        ),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_identities_member_id_members")),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_identities_source_id_sources")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identities")),
    )
    op.create_index(op.f("ix_identities_email"), "identities", ["email"], unique=False)
    op.create_index(op.f("ix_identities_member_id"), "identities", ["member_id"], unique=False)
    op.create_index(op.f("ix_identities_source_id"), "identities", ["source_id"], unique=False)
    op.create_table(
        "links",
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("from_activity_id", sa.String(), nullable=False),
        sa.Column("to_activity_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_links_source_id_sources")),
        sa.PrimaryKeyConstraint("from_activity_id", "to_activity_id", "kind", name=op.f("pk_links")),
    )
    op.create_index(op.f("ix_links_to_activity_id"), "links", ["to_activity_id"], unique=False)
    op.create_table(
        "quarantine",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_quarantine_source_id_sources")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    op.create_index(op.f("ix_quarantine_source_id"), "quarantine", ["source_id"], unique=False)
    op.create_table(
        "raw_payloads",
        sa.Column("item_id", sa.String(), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_raw_payloads_source_id_sources"),
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_raw_payloads")),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("native_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("root_activity_id", sa.String(), nullable=True),
        sa.Column("thread_key", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_conversations_channel_id_channels"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_conversations_source_id_sources"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index(
        op.f("ix_conversations_channel_id"),
        "conversations",
        ["channel_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_conversations_source_id_thread_key_created_at"),
        "conversations",
        ["source_id", "thread_key", "created_at"],
        unique=False,
    )
    op.create_table(
        "member_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("identity_id", sa.String(), nullable=False),
        sa.Column("from_member_id", sa.String(), nullable=False),
        sa.Column("to_member_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name=op.f("fk_member_events_identity_id_identities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_events")),
    )
    op.create_table(
        "activities",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("native_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("identity_id", sa.String(), nullable=True),
        sa.Column("channel_id", sa.String(), nullable=True),
        sa.Column("conversation_id", sa.String(), nullable=True),
        sa.Column("parent_id", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("edited_at", sa.DateTime(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("text_raw", sa.Text(), nullable=True),
        sa.Column("text_plain", sa.Text(), nullable=True),
        sa.Column("text_format", sa.String(length=20), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("extras", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_activities_channel_id_channels"),
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_activities_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name=op.f("fk_activities_identity_id_identities"),
        ),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_activities_source_id_sources")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    op.create_index(
        op.f("ix_activities_channel_id_created_at"),
        "activities",
        ["channel_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_activities_conversation_id_created_at"),
        "activities",
        ["conversation_id", "created_at"],
        unique=False,
    )
    op.create_index(op.f("ix_activities_created_at"), "activities", ["created_at"], unique=False)
    op.create_index(
        op.f("ix_activities_identity_id_created_at"),
        "activities",
        ["identity_id", "created_at"],
        unique=False,
    )
    op.create_index(op.f("ix_activities_parent_id"), "activities", ["parent_id"], unique=False)
    op.create_index(
        op.f("ix_activities_source_id_kind"),
        "activities",
        ["source_id", "kind"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_activities_source_id_kind"), table_name="activities")
    op.drop_index(op.f("ix_activities_parent_id"), table_name="activities")
    op.drop_index(op.f("ix_activities_identity_id_created_at"), table_name="activities")
    op.drop_index(op.f("ix_activities_created_at"), table_name="activities")
    op.drop_index(op.f("ix_activities_conversation_id_created_at"), table_name="activities")
    op.drop_index(op.f("ix_activities_channel_id_created_at"), table_name="activities")
    op.drop_table("activities")
    op.drop_table("member_events")
    op.drop_index(
        op.f("ix_conversations_source_id_thread_key_created_at"),
        table_name="conversations",
    )
    op.drop_index(op.f("ix_conversations_channel_id"), table_name="conversations")
    op.drop_table("conversations")
    op.drop_table("raw_payloads")
    op.drop_index(op.f("ix_quarantine_source_id"), table_name="quarantine")
    op.drop_table("quarantine")
    op.drop_index(op.f("ix_links_to_activity_id"), table_name="links")
    op.drop_table("links")
    op.drop_index(op.f("ix_identities_source_id"), table_name="identities")
    op.drop_index(op.f("ix_identities_member_id"), table_name="identities")
    op.drop_index(op.f("ix_identities_email"), table_name="identities")
    op.drop_table("identities")
    op.drop_table("cursors")
    op.drop_index(op.f("ix_channels_source_id"), table_name="channels")
    op.drop_table("channels")
    op.drop_table("sources")
    op.drop_table("members")
    op.drop_table("import_runs")
