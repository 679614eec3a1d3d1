"""Member segments (configurable rules, computed as of any date), and the unanswered questions list.

Per-member facts are computed by the engine (ibis, like every metric); the rules that turn them into
segments are plain Python over one row per member, so they are easy to read and to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from parvis.metrics.base import Base, Scope
from parvis.metrics.definitions import _tiers, love_and_reach
from parvis.metrics.engines import MetricsError, backend, serialized
from parvis.store import Store

SEGMENTS: dict[str, str] = {
    "newcomer": "first member activity within the last `newcomer_days` days (default 30)",
    "core": "in the core tier (first 80% of member activity, GrimoireLab onion) over the last `core_days` days "
    "(default 365)",
    "involved": "at least `involved_activities` member activities (default 5) in the last `recent_days` days "
    "(default 90), and not core",
    "silent": "registered on a source that knows its members (Stack Exchange users) with at most `silent_max_posts` "
    "posts (default 0) ever; mailing lists and IRC only know people who wrote, so they have no silent members",
    "veteran": "first member activity at least `veteran_days` days ago (default 365) and active in the last "
    "`recent_days` days",
    "at_risk": "drifting away: at least `regular_activities` member activities (default 5) in the `regular_days` "
    "days (default 180) before the last `silence_days` days (default 45), and none since",
    "returning": "active in the last `returning_days` days (default 30) after a gap of at least `gap_days` days "
    "(default 90) without member activity",
    "champion": "in the last `champion_days` days (default 365): at least `champion_accepted` answer accepted "
    "(default 1) or at least `champion_newcomer_replies` responses (default 3) to conversations opened by "
    "newcomers (within their first `newcomer_days` days)",
}


@dataclass(frozen=True)
class SegmentRules:
    newcomer_days: int = 30
    core_days: int = 365
    recent_days: int = 90
    involved_activities: int = 5
    silent_max_posts: int = 0
    veteran_days: int = 365
    regular_activities: int = 5
    regular_days: int = 180
    silence_days: int = 45
    returning_days: int = 30
    gap_days: int = 90
    champion_days: int = 365
    champion_accepted: int = 1
    champion_newcomer_replies: int = 3


def _instant(day: date, days_before: int = 0) -> ir.TimestampScalar:
    return ibis.literal(datetime.combine(day - timedelta(days=days_before), datetime.min.time()))


def _member_facts(base: Base, rules: SegmentRules) -> ir.Table:
    acts = base.member_acts
    end = base.scope.end.date()
    recent = acts.created_at >= _instant(end, rules.recent_days)
    silence = _instant(end, rules.silence_days)
    regular = (acts.created_at < silence) & (acts.created_at >= _instant(end, rules.silence_days + rules.regular_days))
    back = _instant(end, rules.returning_days)
    posts = acts.kind.isin(("question", "answer", "comment", "message", "reply", "action", "wiki", "post"))
    return acts.group_by("member_id").aggregate(
        first_activity=acts.created_at.min(),
        last_activity=acts.created_at.max(),
        activities=acts.count(),
        posts=posts.cast("int64").sum(),
        recent=recent.cast("int64").sum(),
        regular=regular.cast("int64").sum(),
        after_silence=(acts.created_at >= silence).cast("int64").sum(),
        first_back=acts.created_at.min(where=acts.created_at >= back),
        last_before_back=acts.created_at.max(where=acts.created_at < back),
    )


def _champion_facts(base: Base, rules: SegmentRules) -> ir.Table:
    start = _instant(base.scope.end.date(), rules.champion_days)
    people = base.authored.filter(~base.authored.is_bot)
    accepts = people.filter((people.kind == "accept") & (people.created_at >= start))
    answers = people.filter(people.kind == "answer").select(answer_id=people.id, answerer=people.member_id)
    accepted = accepts.join(answers, accepts.parent_id == answers.answer_id)
    accepted = accepted.filter(accepted.answerer != accepted.member_id)
    accepted = accepted.group_by(champion=accepted.answerer).aggregate(accepted=accepted.count())

    first = base.member_acts.group_by(newcomer=base.member_acts.member_id).aggregate(
        newcomer_first=base.member_acts.created_at.min()
    )
    roots = base.conversation_roots()
    roots = roots.join(first, roots.member_id == first.newcomer)
    roots = roots.filter(
        roots.created_at.epoch_seconds() - roots.newcomer_first.epoch_seconds() <= rules.newcomer_days * 86400
    )
    responses = base.first_responses(roots)
    replies = people.filter(people.kind.isin(("answer", "comment", "reply", "message")) & (people.created_at >= start))
    opened = responses.select(helped_conversation=responses.conversation_id, opener=responses.member_id)
    helped = replies.join(opened, replies.conversation_id == opened.helped_conversation)
    helped = helped.filter(helped.member_id != helped.opener)
    helped = helped.group_by(helper=helped.member_id).aggregate(newcomer_replies=helped.count())
    joined = accepted.outer_join(helped, accepted.champion == helped.helper)
    return joined.select(
        champion_member=ibis.coalesce(joined.champion, joined.helper),
        accepted=joined.accepted.fill_null(0),
        newcomer_replies=joined.newcomer_replies.fill_null(0),
    )


@serialized
def segment_members(
    store: Store,
    segment: str | None = None,
    *,
    as_of: date | None = None,
    source: str | None = None,
    rules: SegmentRules | None = None,
    engine: str = "duckdb",
) -> pd.DataFrame:
    """One row per member (of ``source``, or of any source) as of ``as_of`` (default: today):
    member_id, display_name, segments (list of names), first_activity, last_activity, activities,
    love, reach.  With ``segment``, only that segment's members."""
    if segment is not None and segment not in SEGMENTS:
        raise MetricsError(f"unknown segment {segment!r} (choose from {', '.join(SEGMENTS)})")
    rules = rules or SegmentRules()
    scope = Scope(source=source, until=as_of)
    on = backend(store, engine)
    base = Base(on, scope)
    end = scope.end

    identities = base.identities.filter(~base.identities.is_bot)
    if source is not None:
        identities = identities.filter(identities.source_id == source)
    registered = (identities.created_at.notnull() & (identities.created_at < ibis.literal(end))).cast("int64")
    universe = identities.group_by("member_id").aggregate(registered=registered.max())
    members = base.members.select(member_ref=base.members.id, display_name=base.members.display_name)
    universe = universe.join(members, universe.member_id == members.member_ref).drop("member_ref")
    frame = universe.to_pandas()

    facts = _member_facts(base, rules).to_pandas()
    engagement = love_and_reach(base).to_pandas()
    engagement = engagement.groupby("member_id", as_index=False)[["love", "reach"]].sum()
    core_base = Base(on, Scope(source=source, since=scope.as_of - timedelta(days=rules.core_days), until=as_of))
    tiers = _tiers(core_base)
    core = set(tiers.filter(tiers.tier == "core").select("member_id").to_pandas()["member_id"])
    champions = _champion_facts(base, rules).to_pandas()

    frame = frame.merge(facts, on="member_id", how="left").merge(engagement, on="member_id", how="left")
    frame = frame.merge(champions, left_on="member_id", right_on="champion_member", how="left")
    for column in ("activities", "posts", "recent", "regular", "after_silence", "accepted", "newcomer_replies"):
        frame[column] = frame[column].fillna(0).astype("int64")
    for column in ("love", "reach"):
        frame[column] = frame[column].fillna(0)
    frame["reach"] = frame["reach"].astype("int64")
    end_ts = pd.Timestamp(end)

    def days_ago(column: str) -> pd.Series:
        return (end_ts - pd.to_datetime(frame[column])).dt.total_seconds() / 86400

    first_age = days_ago("first_activity")
    checks: dict[str, pd.Series] = {
        "newcomer": first_age <= rules.newcomer_days,
        "core": frame["member_id"].isin(core),
        "involved": (frame["recent"] >= rules.involved_activities) & ~frame["member_id"].isin(core),
        "silent": (frame["registered"] == 1) & (frame["posts"] <= rules.silent_max_posts),
        "veteran": (first_age >= rules.veteran_days) & (frame["recent"] > 0),
        "at_risk": (frame["regular"] >= rules.regular_activities) & (frame["after_silence"] == 0),
        "returning": frame["first_back"].notna()
        & frame["last_before_back"].notna()
        & (
            (pd.to_datetime(frame["first_back"]) - pd.to_datetime(frame["last_before_back"])).dt.total_seconds()
            >= rules.gap_days * 86400
        ),
        "champion": (frame["accepted"] >= rules.champion_accepted)
        | (frame["newcomer_replies"] >= rules.champion_newcomer_replies),
    }
    flags = pd.DataFrame({name: check.fillna(False).astype(bool) for name, check in checks.items()})
    frame["segments"] = [[name for name in SEGMENTS if row[name]] for row in flags.to_dict("records")]
    if segment is not None:
        frame = frame[flags[segment].to_numpy()]
    for column in ("first_activity", "last_activity"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
    out = frame[
        ["member_id", "display_name", "segments", "first_activity", "last_activity", "activities", "love", "reach"]
    ]
    return out.sort_values(["love", "member_id"], ascending=[False, True], kind="stable").reset_index(drop=True)


@serialized
def segment_counts(
    store: Store,
    *,
    periods: list[date],
    source: str | None = None,
    rules: SegmentRules | None = None,
    engine: str = "duckdb",
) -> pd.DataFrame:
    """Membership over time: for each date (period end), how many members are in each segment."""
    rows: list[dict[str, Any]] = []
    for day in periods:
        members = segment_members(store, as_of=day, source=source, rules=rules, engine=engine)
        for name in SEGMENTS:
            rows.append(
                {"as_of": day, "segment": name, "members": int(sum(name in found for found in members["segments"]))}
            )
    return pd.DataFrame(rows, columns=["as_of", "segment", "members"])


@serialized
def unanswered_questions(
    store: Store,
    *,
    source: str | None = None,
    channel: str | None = None,
    limit: int | None = None,
    as_of: date | None = None,
    engine: str = "duckdb",
) -> pd.DataFrame:
    """Questions with no response by another member (bots and the asker's own replies do not count),
    oldest first: activity_id, conversation_id, title, url, created_at, age, source, channel."""
    scope = Scope(source=source, channel=channel, until=as_of)
    base = Base(backend(store, engine), scope)
    questions = base.first_responses(base.questions())
    questions = questions.filter(questions.first_response_at.isnull())
    acts = base.activities.select(activity_ref=base.activities.id, title=base.activities.title, url=base.activities.url)
    joined = questions.join(acts, questions.item_id == acts.activity_ref)
    joined = joined.order_by(["created_at", "item_id"])
    if limit is not None:
        joined = joined.limit(limit)
    frame = joined.select(
        activity_id=joined.item_id,
        conversation_id=joined.conversation_id,
        title=joined.title,
        url=joined.url,
        created_at=joined.created_at,
        source=joined.source_id,
        channel=joined.channel_id,
    ).to_pandas()
    frame["created_at"] = pd.to_datetime(frame["created_at"]).astype("datetime64[us]")
    frame["url"] = frame["url"].astype(object).where(frame["url"].notna(), None)
    now = pd.Timestamp(scope.end) if as_of is not None else pd.Timestamp(datetime.utcnow())
    frame.insert(5, "age", now - pd.to_datetime(frame["created_at"]))
    return frame.sort_values(["created_at", "activity_id"], kind="stable").reset_index(drop=True)
