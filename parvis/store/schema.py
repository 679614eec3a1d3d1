"""The store's tables (SQLAlchemy Core).  Changes go through a migration in parvis/migrations.

Ids are text, derived from the source id and the platform's native id
(``<source>:<native id>``), so importing the same data always gives the same ids.
Timestamps are naive datetimes holding UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sources = Table(
    "sources",
    metadata,
    Column("id", String(), primary_key=True),
    Column("platform", String(50), nullable=False),
    Column("name", Text, nullable=False),
    Column("url", Text),
    Column("extras", JSON, nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("id", String(), primary_key=True),
    Column("source_id", String(), ForeignKey("sources.id"), nullable=False),
    Column("native_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", String(50), nullable=False),
    Column("url", Text),
    Column("extras", JSON, nullable=False),
    Column("content_hash", String(32), nullable=False),
    Index(None, "source_id"),
)

members = Table(
    "members",
    metadata,
    Column("id", String(), primary_key=True),
    Column("display_name", Text),
    # Set when this member was merged into another; the row is kept so unmerge can restore it.
    Column("merged_into", String(), ForeignKey("members.id")),
)

identities = Table(
    "identities",
    metadata,
    Column("id", String(), primary_key=True),
    Column("source_id", String(), ForeignKey("sources.id"), nullable=False),
    Column("native_id", Text, nullable=False),
    # The member this identity belongs to.  Only merge/unmerge change it; ingest never does.
    Column("member_id", String(), ForeignKey("members.id"), nullable=False),
    # The member created with this identity; unmerge returns the identity to it.
    Column("home_member_id", String(), ForeignKey("members.id"), nullable=False),
    Column("handle", Text, nullable=False),
    Column("display_name", Text),
    Column("email", Text),
    Column("created_at", DateTime),
    Column("is_bot", Boolean, nullable=False),
    Column("extras", JSON, nullable=False),
    Column("content_hash", String(32), nullable=False),
    Index(None, "source_id"),
    Index(None, "member_id"),
    Index(None, "email"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(), primary_key=True),
    Column("source_id", String(), ForeignKey("sources.id"), nullable=False),
    Column("native_id", Text, nullable=False),
    Column("channel_id", String(), ForeignKey("channels.id")),
    Column("title", Text),
    Column("created_at", DateTime, nullable=False),
    # The activity that opened the conversation (None while only replies to a missing root are known).
    Column("root_activity_id", String()),
    Column("thread_key", Text),
    Index(None, "source_id", "thread_key", "created_at"),
    Index(None, "channel_id"),
)

activities = Table(
    "activities",
    metadata,
    Column("id", String(), primary_key=True),
    Column("source_id", String(), ForeignKey("sources.id"), nullable=False),
    Column("native_id", Text, nullable=False),
    Column("kind", String(50), nullable=False),
    Column("identity_id", String(), ForeignKey("identities.id")),
    Column("channel_id", String(), ForeignKey("channels.id")),
    Column("conversation_id", String(), ForeignKey("conversations.id")),
    # Not a foreign key: a reply may point at a message the archive does not hold.
    Column("parent_id", String()),
    Column("created_at", DateTime, nullable=False),
    Column("edited_at", DateTime),
    Column("title", Text),
    Column("text_raw", Text),
    Column("text_plain", Text),
    Column("text_format", String(20), nullable=False),
    Column("url", Text),
    Column("extras", JSON, nullable=False),
    Column("content_hash", String(32), nullable=False),
    Index(None, "source_id", "kind"),
    Index(None, "identity_id", "created_at"),
    Index(None, "conversation_id", "created_at"),
    Index(None, "channel_id", "created_at"),
    Index(None, "parent_id"),
    Index(None, "created_at"),
)

links = Table(
    "links",
    metadata,
    Column("source_id", String(), ForeignKey("sources.id"), nullable=False),
    Column("from_activity_id", String(), primary_key=True),
    Column("to_activity_id", String(), primary_key=True),
    Column("kind", String(50), primary_key=True),
    Index(None, "to_activity_id"),
)

raw_payloads = Table(
    "raw_payloads",
    metadata,
    # The id of the identity or activity, prefixed with its record type ("activity:", "identity:").
    Column("item_id", String(), primary_key=True),
    Column("source_id", String(), ForeignKey("sources.id"), nullable=False),
    # zlib-compressed original bytes of the record, as read from the platform.
    Column("payload", LargeBinary, nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("source_id", String(), ForeignKey("sources.id"), nullable=False),
    Column("stream", Text, nullable=False),
    Column("position", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Index(None, "source_id"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("source_id", String(), ForeignKey("sources.id"), primary_key=True),
    Column("stream", String(), primary_key=True),
    Column("offset", Integer, nullable=False),
    Column("digest", String(40), nullable=False),
    Column("line", Integer, nullable=False),
)

member_events = Table(
    "member_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("action", String(20), nullable=False),
    Column("identity_id", String(), ForeignKey("identities.id"), nullable=False),
    Column("from_member_id", String(), nullable=False),
    Column("to_member_id", String(), nullable=False),
)

import_runs = Table(
    "import_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_id", String(), nullable=False),
    Column("platform", String(50), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("added", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("present", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    Column("status", String(20), nullable=False),
)

# Derived data: what an enricher (language, sentiment, toxicity, question) found in an activity's
# text.  Written only by parvis.enrich; ``content_hash`` is the activity's when it was computed,
# so a changed text is detected and enriched again.
enrichments = Table(
    "enrichments",
    metadata,
    Column("activity_id", String(), ForeignKey("activities.id"), primary_key=True),
    Column("enricher", String(50), primary_key=True),
    Column("version", String(20), nullable=False),
    Column("label", String(50), nullable=False),
    Column("score", Float, nullable=False),
    Column("extras", JSON, nullable=False),
    Column("content_hash", String(32), nullable=False),
    Index(None, "enricher", "label"),
)

# The web cockpit (parvis.web): local accounts, server-side sessions and the inbox's triage state.
# Passwords are argon2 hashes; a session row holds only the SHA-256 of the cookie's token.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Index(None, "name", unique=True),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index(None, "user_id"),
)

# Triage of the inbox (unanswered questions): an activity with no row here is open.
inbox_states = Table(
    "inbox_states",
    metadata,
    Column("activity_id", String(), ForeignKey("activities.id"), primary_key=True),
    Column("state", String(20), nullable=False),
    Column("assignee", String(100)),
    Column("updated_by", String(100), nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index(None, "state"),
)

# Tables whose content is a log of what happened, not community data: they differ between
# an interrupted and an uninterrupted import by design.
LOG_TABLES = frozenset({"import_runs", "member_events"})

# Live platforms (parvis.live): where each Matrix account's sync stopped.  No secret is stored here:
# access tokens stay in the environment or the user's 0600 secrets file.
matrix_sync = Table(
    "matrix_sync",
    metadata,
    Column("source_id", String(), primary_key=True),
    Column("homeserver", Text, nullable=False),
    Column("account", Text, nullable=False),
    Column("device_id", Text),
    # The ``next_batch`` token of the last sync whose events are committed (None before the first).
    Column("next_batch", Text),
    Column("updated_at", DateTime, nullable=False),
)

# Moderation (parvis.workflows.moderation): what a rule or a person flagged, and its state
# (pending, approved, removed, dismissed).  One row per activity and rule.
moderation_queue = Table(
    "moderation_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("activity_id", String(), ForeignKey("activities.id"), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("decided_at", DateTime),
    Column("decided_by", Text),
    Index(None, "activity_id", "rule", unique=True),
    Index(None, "state", "created_at"),
)

# Every automatic and human moderation action: who, what, when, which rule, why.  Append-only:
# database triggers refuse UPDATE and DELETE (migration 0004).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(50), nullable=False),
    Column("activity_id", String()),
    Column("rule", String(200)),
    Column("reason", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Index(None, "activity_id"),
    Index(None, "at"),
)

# The inbox (parvis.workflows.inbox): settings shared by every user of the store (business hours and
# response target, JSON under a key), and the team: which platform identities are a Parvis user's.
settings = Table(
    "settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_by", String(100), nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

team_identities = Table(
    "team_identities",
    metadata,
    Column("identity_id", String(), ForeignKey("identities.id"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("linked_by", String(100), nullable=False),
    Column("linked_at", DateTime, nullable=False),
    Index(None, "user_id"),
)
