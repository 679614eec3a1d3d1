"""Facts: the summaries of the store that metrics start from, each one ibis expression over its inputs.

The same functions serve every engine.  :class:`parvis.metrics.base.Base` applies them to the
scope's tables when an engine has no snapshot tables for them (Spark, and a few scopes); the DuckDB
snapshot keeps each fact as a table over the whole history (parvis.metrics.engines), which a scope
then only filters, and maintains it as rows are appended: a fact in :data:`SUMMARIES` is a grouping
whose values combine across batches of activities (a sum of counts, a minimum of times), so the
rows of a batch merge into the table; ``root_facts`` is recomputed for the conversations a batch
touches; ``authored`` grows by the batch's rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import ibis
import ibis.expr.types as ir

from parvis.metrics.vocabulary import ACTIVE_KINDS, RESPONSE_KINDS, STARTER_KINDS, period


def authored(activities: ir.Table, identities: ir.Table) -> ir.Table:
    """Activities with an identity, with their member and the identity's bot flag."""
    people = identities.select(identity_ref=identities.id, member_id=identities.member_id, is_bot=identities.is_bot)
    joined = activities.join(people, activities.identity_id == people.identity_ref)
    return joined.select(
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


def member_activity(authored: ir.Table) -> ir.Table:
    """Member activity (see "Vocabulary"): not a bot's, of an active kind."""
    return authored.filter(~authored.is_bot & authored.kind.isin(ACTIVE_KINDS))


def daily_activities(activities: ir.Table) -> ir.Table:
    """All activities per source, channel, kind and day."""
    return activities.group_by(["source_id", "channel_id", "kind", activities.created_at.date().name("day")]).aggregate(
        activities=activities.count()
    )


def member_days(member_acts: ir.Table) -> ir.Table:
    """Per source, channel, member and day with member activity: the first such activity that day."""
    day = member_acts.created_at.date().name("day")
    return member_acts.group_by(["source_id", "channel_id", "member_id", day]).aggregate(
        first_at=member_acts.created_at.min()
    )


def member_periods(member_acts: ir.Table, grain: str) -> ir.Table:
    """Per source, member and period of ``grain`` with member activity: the first such activity in it."""
    return member_acts.group_by(
        ["source_id", "member_id", period(member_acts.created_at, grain).name("period")]
    ).aggregate(first_at=member_acts.created_at.min())


# The member_periods facts kept as tables (a day's are member_days').
PERIOD_TABLES: Mapping[str, str] = MappingProxyType({"week": "member_weeks", "month": "member_months"})


def member_first(member_acts: ir.Table) -> ir.Table:
    """Per source and member: the first member activity."""
    return member_acts.group_by(["source_id", "member_id"]).aggregate(first_at=member_acts.created_at.min())


def daily_labels(activities: ir.Table, enrichments: ir.Table) -> ir.Table:
    """Labelled activities per source, channel, enricher, label and day."""
    labels = enrichments.select(
        labelled_id=enrichments.activity_id, enricher=enrichments.enricher, label=enrichments.label
    )
    joined = activities.join(labels, activities.id == labels.labelled_id)
    day = joined.created_at.date().name("day")
    return joined.group_by(["source_id", "channel_id", "enricher", "label", day]).aggregate(activities=joined.count())


def conversation_roots(conversations: ir.Table, authored: ir.Table, sources: ir.Table) -> ir.Table:
    """Started conversations: their opening activity, its author and platform (bots' excluded)."""
    roots = conversations.filter(conversations.root_activity_id.notnull()).select(
        root_id=conversations.root_activity_id
    )
    acts = authored.filter(~authored.is_bot & authored.kind.isin(STARTER_KINDS))
    joined = roots.join(acts, roots.root_id == acts.id)
    platforms = sources.select(platform_source=sources.id, platform=sources.platform)
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


def first_responses(items: ir.Table, authored: ir.Table) -> ir.Table:
    """``items`` (item_id, conversation_id, member_id, created_at, ...) with ``first_response_at``: the
    earliest response in the same conversation, at or after the item, by another member, not a bot."""
    responses = authored.filter(~authored.is_bot & authored.kind.isin(RESPONSE_KINDS))
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


def root_facts(conversations: ir.Table, authored: ir.Table, sources: ir.Table) -> ir.Table:
    """Each started conversation's opening activity with its first response by another member."""
    return first_responses(conversation_roots(conversations, authored, sources), authored)


@dataclass(frozen=True)
class Summary:
    """How a fact's rows from two batches of activities combine: per key, each value by min or sum."""

    keys: tuple[str, ...]
    combine: Mapping[str, str]


SUMMARIES: Mapping[str, Summary] = MappingProxyType(
    {
        "daily_activities": Summary(("source_id", "channel_id", "kind", "day"), {"activities": "sum"}),
        "member_days": Summary(("source_id", "channel_id", "member_id", "day"), {"first_at": "min"}),
        "member_weeks": Summary(("source_id", "member_id", "period"), {"first_at": "min"}),
        "member_months": Summary(("source_id", "member_id", "period"), {"first_at": "min"}),
        "member_first": Summary(("source_id", "member_id"), {"first_at": "min"}),
        "daily_labels": Summary(("source_id", "channel_id", "enricher", "label", "day"), {"activities": "sum"}),
    }
)
