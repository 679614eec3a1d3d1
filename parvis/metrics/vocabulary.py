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

from datetime import date

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


def period(column: ir.TimestampValue | ir.DateValue, grain: str) -> ir.DateValue:
    return column.truncate(TRUNCATE_UNIT[grain]).cast("date")


def seconds(column: ir.TimestampValue) -> ir.IntegerValue:
    return column.epoch_seconds()


def month_index(column: ir.TimestampValue) -> ir.IntegerValue:
    """Months since year 0: lets metrics do month arithmetic with integers on any engine."""
    return column.year() * 12 + column.month() - 1


def period_start(day: date, grain: str) -> date:
    """The first day of the period of ``grain`` holding ``day`` (weeks start on Monday)."""
    if grain == "week":
        return date.fromordinal(day.toordinal() - day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day
