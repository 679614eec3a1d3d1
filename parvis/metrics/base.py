"""The building blocks every metric starts from: filtered activities resolved to members.

Vocabulary (documented in docs/metrics.md):

- *member activity*: an activity with an identity (anonymous votes have none), whose identity is
  not a bot (``identities.is_bot``), of one of the ``ACTIVE_KINDS``.  Votes, badges and IRC
  presence lines (join, part, quit, nick) are not member activity: Stack Exchange votes are
  anonymous in the dumps (only favourites and bounties name their user), badges are awarded by
  the platform, presence lines say someone's client connected, not that they took part.
- *member*: ``identities.member_id``; merged members' identities already point at the member
  that absorbed them, so a person with identities on several sources counts once per source.
- *post*: an authored contribution (``POST_KINDS``), as opposed to edits, accepts, moderation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

POST_KINDS = ("question", "answer", "comment", "message", "reply", "action", "wiki", "post")
ACTIVE_KINDS = (*POST_KINDS, "edit", "accept", "moderation")
# A conversation's opening activity, when it is one of these, makes the conversation count as started.
STARTER_KINDS = ("question", "message", "reply")
# What counts as a response to a conversation's opening (or to a question inside a chat).
RESPONSE_KINDS = ("answer", "comment", "reply", "message", "action")
# Platforms where every thread start is a question (help mailing lists).
THREAD_START_IS_QUESTION = ("mbox",)

GRAINS = ("day", "week", "month")
TRUNCATE_UNIT = {"day": "D", "week": "W", "month": "M"}


@dataclass(frozen=True)
class Scope:
    source: str | None = None
    channel: str | None = None
    grain: str = "week"
    since: date | None = None
    until: date | None = None

    @property
    def as_of(self) -> date:
        return self.until or datetime.utcnow().date()

    @property
    def end(self) -> datetime:
        """Exclusive end instant: activities at or after it are ignored."""
        return datetime.combine(self.as_of + timedelta(days=1), datetime.min.time())


def period(column: ir.TimestampValue | ir.DateValue, grain: str) -> ir.DateValue:
    return column.truncate(TRUNCATE_UNIT[grain]).cast("date")


def seconds(column: ir.TimestampValue) -> ir.IntegerValue:
    return column.epoch_seconds()


def month_index(column: ir.TimestampValue) -> ir.IntegerValue:
    """Months since year 0: lets metrics do month arithmetic with integers on any engine."""
    return column.year() * 12 + column.month() - 1


class Base:
    """The scope's tables as ibis expressions on one backend."""

    def __init__(self, backend: Any, scope: Scope) -> None:
        self.backend = backend
        self.scope = scope
        activities = backend.table("activities")
        if scope.source is not None:
            activities = activities.filter(activities.source_id == scope.source)
        if scope.channel is not None:
            activities = activities.filter(activities.channel_id == scope.channel)
        activities = activities.filter(activities.created_at < ibis.literal(scope.end))
        self.activities: ir.Table = activities
        identities = backend.table("identities")
        self.identities: ir.Table = identities
        # A DuckDB snapshot holds derived tables (parvis.metrics.engines) with the same rows as the joins below.
        self.derived = bool(getattr(backend, "parvis_derived", False))
        if self.derived:
            self.authored: ir.Table = self._scoped(backend.table("authored"), "created_at")
        else:
            people = identities.select(
                identity_id=identities.id, member_id=identities.member_id, is_bot=identities.is_bot
            )
            authored = activities.join(people, activities.identity_id == people.identity_id)
            self.authored = authored.select(
                "id",
                "source_id",
                "kind",
                "channel_id",
                "conversation_id",
                "parent_id",
                "created_at",
                "member_id",
                "is_bot",
            )
        self.member_acts: ir.Table = self.authored.filter(~self.authored.is_bot & self.authored.kind.isin(ACTIVE_KINDS))
        self.members: ir.Table = backend.table("members")
        self.sources: ir.Table = backend.table("sources")
        self.enrichments: ir.Table = backend.table("enrichments")

    def _scoped(self, table: ir.Table, moment: str) -> ir.Table:
        """Rows of a derived table within the scope: its source, channel, and before its end."""
        if self.scope.source is not None:
            table = table.filter(table.source_id == self.scope.source)
        if self.scope.channel is not None:
            table = table.filter(table.channel_id == self.scope.channel)
        return table.filter(table[moment] < ibis.literal(self.scope.end))

    def threads(self) -> ir.Table:
        """:meth:`conversation_roots` with ``first_response_at`` (see :meth:`first_responses`)."""
        if not self.derived or self.scope.channel is not None:
            return self.first_responses(self.conversation_roots())
        # The first response over the whole history is the scope's if it came before the scope's end
        # (a response is in its conversation's source; a channel scope takes the general path).
        facts = self._scoped(self.backend.table("root_facts"), "created_at")
        end = ibis.literal(self.scope.end)
        first = facts.first_response_at
        return facts.mutate(first_response_at=ibis.ifelse(first < end, first, ibis.null("timestamp")))

    def first_activity(self) -> ir.Table:
        """Per source and member: ``first_at``, the first member activity within the scope."""
        if self.derived and self.scope.channel is None:
            return self._scoped(self.backend.table("member_first"), "first_at")
        acts = self.member_acts
        return acts.group_by(["source_id", "member_id"]).aggregate(first_at=acts.created_at.min())

    def active_periods(self, grain: str) -> ir.Table:
        """Distinct (source_id, member_id, period) with member activity within the scope."""
        if self.derived and self.scope.channel is None:
            found = self._scoped(self.backend.table("member_periods"), "first_at")
            return found.filter(found.grain == grain).select("source_id", "member_id", "period")
        acts = self.member_acts
        return acts.select("source_id", "member_id", period=period(acts.created_at, grain)).distinct()

    def conversation_roots(self) -> ir.Table:
        """Started conversations: their opening activity, its author and platform (bots' excluded)."""
        if self.derived:
            return self._scoped(self.backend.table("root_facts"), "created_at").drop("first_response_at")
        conversations = self.backend.table("conversations")
        roots = conversations.filter(conversations.root_activity_id.notnull()).select(
            root_id=conversations.root_activity_id
        )
        acts = self.authored.filter(~self.authored.is_bot & self.authored.kind.isin(STARTER_KINDS))
        joined = roots.join(acts, roots.root_id == acts.id)
        platforms = self.sources.select(platform_source=self.sources.id, platform=self.sources.platform)
        joined = joined.join(platforms, joined.source_id == platforms.platform_source)
        return joined.select(
            item_id=joined.id,
            source_id=joined.source_id,
            channel_id=joined.channel_id,
            conversation_id=joined.conversation_id,
            member_id=joined.member_id,
            created_at=joined.created_at,
            kind=joined.kind,
            platform=joined.platform,
        )

    def questions(self) -> ir.Table:
        """Questions: Stack Exchange questions, thread starts of help mailing lists, and chat messages the
        ``question`` enricher labelled ``question``."""
        roots = self.conversation_roots()
        asked = roots.filter((roots.kind == "question") | roots.platform.isin(THREAD_START_IS_QUESTION))
        asked = asked.select("item_id", "source_id", "channel_id", "conversation_id", "member_id", "created_at")
        labels = self.enrichments.filter(
            (self.enrichments.enricher == "question") & (self.enrichments.label == "question")
        ).select(labelled_id=self.enrichments.activity_id)
        acts = self.authored.filter(
            ~self.authored.is_bot
            & self.authored.kind.isin(("message", "reply"))
            & self.authored.conversation_id.notnull()
        )
        chat = labels.join(acts, labels.labelled_id == acts.id).select(
            item_id=ibis._.id,
            source_id=ibis._.source_id,
            channel_id=ibis._.channel_id,
            conversation_id=ibis._.conversation_id,
            member_id=ibis._.member_id,
            created_at=ibis._.created_at,
        )
        return asked.union(chat, distinct=True)

    def first_responses(self, items: ir.Table) -> ir.Table:
        """``items`` (item_id, conversation_id, member_id, created_at, ...) with ``first_response_at``: the
        earliest response in the same conversation, at or after the item, by another member, not a bot."""
        responses = self.authored.filter(~self.authored.is_bot & self.authored.kind.isin(RESPONSE_KINDS))
        responses = responses.select(
            response_id=responses.id,
            response_conversation=responses.conversation_id,
            response_member=responses.member_id,
            response_at=responses.created_at,
        )
        pairs = items.select("item_id", "conversation_id", "member_id", "created_at").join(
            responses,
            [
                ibis._.conversation_id == responses.response_conversation,
                ibis._.member_id != responses.response_member,
                responses.response_at >= ibis._.created_at,
                ibis._.item_id != responses.response_id,
            ],
        )
        first = pairs.group_by(responded_id=pairs.item_id).aggregate(first_response_at=pairs.response_at.min())
        joined = items.left_join(first, items.item_id == first.responded_id)
        return joined.drop("responded_id")
