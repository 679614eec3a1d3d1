"""The scope of a metric query and the tables it starts from, on one engine (vocabulary: parvis.metrics.vocabulary)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from parvis.metrics import facts
from parvis.metrics.vocabulary import THREAD_START_IS_QUESTION, period, period_start


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


class Base:
    """The scope's tables and facts (parvis.metrics.facts) as ibis expressions on one backend.

    On a DuckDB snapshot (``backend.parvis_derived``) the facts are tables over the whole history
    that the scope filters; elsewhere they are computed from the scope's tables.  Both give the
    same rows: a scope's end is midnight, so a fact kept per day or with its first time filters
    exactly.  Channel scopes compute conversation facts from the scope's tables (a response counts
    only in the scope's channel)."""

    def __init__(self, backend: Any, scope: Scope) -> None:
        self.backend = backend
        self.scope = scope
        self.activities: ir.Table = self._scoped(backend.table("activities"), "created_at")
        self.identities: ir.Table = backend.table("identities")
        self.derived = bool(getattr(backend, "parvis_derived", False))
        if self.derived:
            self.authored: ir.Table = self._scoped(backend.table("authored"), "created_at")
        else:
            self.authored = facts.authored(self.activities, self.identities)
        self.member_acts: ir.Table = facts.member_activity(self.authored)
        self.members: ir.Table = backend.table("members")
        self.sources: ir.Table = backend.table("sources")
        self.enrichments: ir.Table = backend.table("enrichments")

    def _scoped(self, table: ir.Table, moment: str) -> ir.Table:
        """Rows of a table within the scope: its source, channel, and before its end (``moment`` is a
        timestamp column, or a date column of a daily fact)."""
        if self.scope.source is not None:
            table = table.filter(table.source_id == self.scope.source)
        if self.scope.channel is not None:
            table = table.filter(table.channel_id == self.scope.channel)
        end = self.scope.end
        limit = ibis.literal(end.date()) if table[moment].type().is_date() else ibis.literal(end)
        return table.filter(table[moment] < limit)

    def _fact(self, name: str, moment: str) -> ir.Table:
        return self._scoped(self.backend.table(name), moment)

    def daily_activities(self) -> ir.Table:
        """All activities of the scope per source, channel, kind and day (``activities``)."""
        if self.derived:
            return self._fact("daily_activities", "day")
        return facts.daily_activities(self.activities)

    def daily_labels(self, enricher: str) -> ir.Table:
        """Activities of the scope the enricher labelled, per source, channel, label and day."""
        labels = (
            self._fact("daily_labels", "day") if self.derived else facts.daily_labels(self.activities, self.enrichments)
        )
        return labels.filter(labels.enricher == enricher)

    def threads(self) -> ir.Table:
        """:meth:`conversation_roots` with ``first_response_at`` (see :meth:`first_responses`)."""
        if not self.derived or self.scope.channel is not None:
            return self.first_responses(self.conversation_roots())
        # The first response over the whole history is the scope's if it came before the scope's end.
        found = self._fact("root_facts", "created_at")
        end = ibis.literal(self.scope.end)
        first = found.first_response_at
        return found.mutate(first_response_at=ibis.ifelse(first < end, first, ibis.null("timestamp")))

    def first_activity(self) -> ir.Table:
        """Per source and member: ``first_at``, the first member activity within the scope."""
        if not self.derived:
            return facts.member_first(self.member_acts)
        if self.scope.channel is None:
            return self._fact("member_first", "first_at")
        days = self._fact("member_days", "first_at")
        return days.group_by(["source_id", "member_id"]).aggregate(first_at=days.first_at.min())

    def active_periods(self, grain: str) -> ir.Table:
        """Distinct (source_id, member_id, period) with member activity within the scope."""
        if not self.derived:
            acts = self.member_acts
            return acts.select("source_id", "member_id", period=period(acts.created_at, grain)).distinct()
        if self.scope.channel is None and grain in facts.PERIOD_TABLES:
            return self._fact(facts.PERIOD_TABLES[grain], "first_at").select("source_id", "member_id", "period")
        days = self._fact("member_days", "first_at")
        return days.select("source_id", "member_id", period=period(days.day, grain)).distinct()

    def shown(self, table: ir.Table, moment: str, grain: str) -> ir.Table:
        """Rows of ``table`` in the periods of ``grain`` a per-period metric shows: from the period holding
        the scope's start date on (the earlier ones are dropped from its result anyway)."""
        if self.scope.since is None:
            return table
        start = period_start(self.scope.since, grain)
        column = table[moment]
        limit = ibis.literal(start) if column.type().is_date() else ibis.literal(datetime.combine(start, time.min))
        return table.filter(column >= limit)

    def conversation_roots(self) -> ir.Table:
        """Started conversations: their opening activity, its author and platform (bots' excluded)."""
        if self.derived:
            return self._fact("root_facts", "created_at").drop("first_response_at")
        return facts.conversation_roots(self.backend.table("conversations"), self.authored, self.sources)

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
        """``items`` with ``first_response_at`` (see :func:`parvis.metrics.facts.first_responses`)."""
        return facts.first_responses(items, self.authored)
