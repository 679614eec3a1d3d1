"""Metric definitions: each is one function returning an ibis expression, whose docstring is the metric's
user-facing definition (docs/metrics.md is generated from them).

Names are ``measure:dimension:grain``.  A family written for several grains (``{grain}``) is registered once
per grain (``active_members:source:day``, ``…:week``, ``…:month``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

from parvis.metrics.base import Base
from parvis.metrics.vocabulary import GRAINS, POST_KINDS, month_index, period, seconds

Builder = Callable[[Base, str], ir.Table]

# Orbit-style "love": weights of member activities, per kind (kinds not listed weigh 1).
LOVE_WEIGHTS: Mapping[str, float] = {
    "answer": 3.0,
    "question": 2.0,
    "message": 2.0,
    "reply": 2.0,
    "wiki": 2.0,
    "comment": 1.0,
    "accept": 1.0,
    "edit": 1.0,
    "action": 1.0,
    "moderation": 1.0,
    "post": 1.0,
}
LOVE_DECAY = 0.9
TOP_CONTRIBUTORS = 10
CORE_SHARE = 0.8
REGULAR_SHARE = 0.95


@dataclass(frozen=True)
class Metric:
    name: str
    definition: str
    grains: tuple[str, ...]
    build: Builder = field(repr=False)
    # Engine -> reason this metric cannot run there (an explicit, reasoned gap, never a silent skip).
    gaps: Mapping[str, str] = field(default_factory=dict)
    # Shown with every grain asked for (cohorts by month, whole-period figures).
    always: bool = False

    @property
    def grain(self) -> str:
        return self.name.rsplit(":", 1)[1]


_registry: dict[str, Metric] = {}


def metric(name: str, grains: tuple[str, ...] = GRAINS, *, always: bool = False) -> Callable[[Builder], Builder]:
    def register(build: Builder) -> Builder:
        definition = " ".join((build.__doc__ or "").split())
        if not definition:
            raise ValueError(f"metric {name} has no definition (docstring)")
        for grain in grains:
            full = name.format(grain=grain)
            _registry[full] = Metric(full, definition, (grain,), build, always=always)
        return build

    return register


def registry() -> dict[str, Metric]:
    return dict(_registry)


# -- members ----------------------------------------------------------------------------------------------


def _active_periods(base: Base, grain: str) -> ir.Table:
    return base.active_periods(grain)


def _first_activity(base: Base) -> ir.Table:
    return base.first_activity()


@metric("active_members:source:{grain}")
def active_members(base: Base, grain: str) -> ir.Table:
    """Members with at least one member activity (see "Vocabulary") in the period, per source."""
    active = base.shown(_active_periods(base, grain), "period", grain)  # one row per member and period
    return active.group_by(["source_id", "period"]).aggregate(active_members=active.count())


@metric("new_members:source:{grain}")
def new_members(base: Base, grain: str) -> ir.Table:
    """Members whose first member activity on the source (over all its history) falls in the period."""
    first = base.shown(_first_activity(base), "first_at", grain)
    first = first.mutate(period=period(first.first_at, grain))
    return first.group_by(["source_id", "period"]).aggregate(new_members=first.count())


@metric("returning_members:source:{grain}")
def returning_members(base: Base, grain: str) -> ir.Table:
    """Members active in the period whose first member activity on the source was in an earlier period
    (so active members = new members + returning members)."""
    active = base.shown(_active_periods(base, grain), "period", grain)
    first = _first_activity(base)
    first = first.select(
        first_source=first.source_id, first_member=first.member_id, first_period=period(first.first_at, grain)
    )
    joined = active.join(first, [active.source_id == first.first_source, active.member_id == first.first_member])
    joined = joined.filter(joined.period > joined.first_period)
    return joined.group_by(["source_id", "period"]).aggregate(returning_members=joined.member_id.nunique())


def _day_numbers(base: Base) -> ir.Table:
    acts = base.member_acts
    return acts.select("source_id", "member_id", daynum=seconds(acts.created_at) // 86400).distinct()


def _rolling_distinct(member_days: ir.Table, days: ir.Table, width: int, column: str) -> ir.Table:
    """For each active day of each source: distinct members active in the ``width`` days ending that day.

    Each member's active days are merged into runs (gaps shorter than ``width``); a run covers
    [first day, last day + width - 1]; a running sum of +1/-1 events then counts covered members.
    """
    order = ibis.window(group_by=["source_id", "member_id"], order_by="daynum")
    marked = member_days.mutate(previous=member_days.daynum.lag().over(order))
    marked = marked.mutate(
        starts=ibis.ifelse(marked.previous.isnull() | (marked.daynum - marked.previous >= width), 1, 0)
    )
    running = ibis.cumulative_window(group_by=["source_id", "member_id"], order_by="daynum")
    marked = marked.mutate(run=marked.starts.sum().over(running))
    runs = marked.group_by(["source_id", "member_id", "run"]).aggregate(
        first=marked.daynum.min(), last=marked.daynum.max()
    )
    events = (
        runs.select("source_id", daynum=runs.first, delta=ibis.literal(1, "int64"))
        .union(runs.select("source_id", daynum=runs.last + width, delta=ibis.literal(-1, "int64")), distinct=False)
        .union(days.select("source_id", "daynum", delta=ibis.literal(0, "int64")), distinct=False)
    )
    summed = events.group_by(["source_id", "daynum"]).aggregate(delta=events.delta.sum())
    by_day = ibis.cumulative_window(group_by="source_id", order_by="daynum")
    counted = summed.mutate(**{column: summed.delta.sum().over(by_day)})
    return counted.select("source_id", "daynum", column)


def _daily(base: Base) -> ir.Table:
    """Per source and active day: DAU, and distinct members of the 7 and 30 days ending that day."""
    acts = base.member_acts
    member_days = _day_numbers(base)
    days = acts.group_by(["source_id", (seconds(acts.created_at) // 86400).name("daynum")]).aggregate(
        day=acts.created_at.date().min(), dau=acts.member_id.nunique()
    )
    wau = _rolling_distinct(member_days, days, 7, "wau")
    mau = _rolling_distinct(member_days, days, 30, "mau")
    joined = days.join(wau, ["source_id", "daynum"]).join(mau, ["source_id", "daynum"])
    return joined.select("source_id", "daynum", "day", "dau", "wau", "mau")


@metric("dau_wau_mau:source:{grain}", ("day",))
def dau_wau_mau(base: Base, grain: str) -> ir.Table:
    """For each day with member activity: DAU (members active that day), WAU and MAU (distinct members
    active in the 7 and 30 days ending that day, as Discourse counts them), and DAU/MAU."""
    daily = _daily(base)
    return daily.select(
        "source_id", period=daily.day, dau=daily.dau, wau=daily.wau, mau=daily.mau, dau_mau=daily.dau / daily.mau
    )


@metric("stickiness:source:{grain}", ("week", "month"))
def stickiness(base: Base, grain: str) -> ir.Table:
    """DAU/MAU averaged over the days of the period that had member activity (Discourse's
    "DAU/MAU" report): how many of the month's active members come back on a given day."""
    daily = _daily(base)
    daily = daily.mutate(period=period(daily.day, grain), ratio=daily.dau / daily.mau)
    return daily.group_by(["source_id", "period"]).aggregate(stickiness=daily.ratio.mean(), active_days=daily.count())


@metric("retention:cohort:{grain}", ("month",), always=True)
def retention(base: Base, grain: str) -> ir.Table:
    """Members grouped by the month of their first member activity on the source (cohort); for each
    following month (months_since = 0, 1, 2...), how many of the cohort were active and their share."""
    acts = base.member_acts
    monthly = acts.select("source_id", "member_id", month=month_index(acts.created_at)).distinct()
    first = monthly.group_by(["source_id", "member_id"]).aggregate(cohort_month=monthly.month.min())
    joined = monthly.join(first, ["source_id", "member_id"])
    joined = joined.mutate(months_since=joined.month - joined.cohort_month)
    active = joined.group_by(["source_id", "cohort_month", "months_since"]).aggregate(active=joined.member_id.nunique())
    sizes = first.group_by(["source_id", "cohort_month"]).aggregate(cohort_size=first.count())
    out = active.join(sizes, ["source_id", "cohort_month"])
    return out.select(
        "source_id", "cohort_month", "months_since", "cohort_size", "active", share=out.active / out.cohort_size
    )


# -- conversations ------------------------------------------------------------------------------------------


@metric("conversations_started:channel:{grain}")
def conversations_started(base: Base, grain: str) -> ir.Table:
    """Conversations whose opening activity (a question, or a mail or chat message opening a thread) was
    posted in the period by a member (not a bot), per source and channel."""
    roots = base.shown(base.conversation_roots(), "created_at", grain)
    roots = roots.mutate(period=period(roots.created_at, grain))
    return roots.group_by(["source_id", "channel_id", "period"]).aggregate(conversations=roots.count())


@metric("activities:kind:{grain}")
def activities_by_kind(base: Base, grain: str) -> ir.Table:
    """All activities of the period per source and kind, anonymous ones (votes) and bots' included."""
    daily = base.shown(base.daily_activities(), "day", grain)
    daily = daily.mutate(period=period(daily.day, grain))
    return daily.group_by(["source_id", "kind", "period"]).aggregate(activities=daily.activities.sum())


@metric("contributor_ratio:source:{grain}", ("all",), always=True)
def contributor_ratio(base: Base, grain: str) -> ir.Table:
    """Registered members who posted at least once (see "post"), over registered members, as of the end
    date. Registered members are identities with an account creation date (Stack Exchange's Users.xml,
    including users who never posted); mailing lists and IRC do not know who reads without writing,
    so they have no row."""
    identities = base.identities.filter(
        base.identities.created_at.notnull()
        & ~base.identities.is_bot
        & (base.identities.created_at < ibis.literal(base.scope.end))
    )
    if base.scope.source is not None:
        identities = identities.filter(identities.source_id == base.scope.source)
    registered = identities.select("source_id", "member_id").distinct()
    posts = base.member_acts.filter(base.member_acts.kind.isin(POST_KINDS))
    posters = posts.select(poster_source=posts.source_id, poster=posts.member_id).distinct()
    joined = registered.left_join(
        posters, [registered.source_id == posters.poster_source, registered.member_id == posters.poster]
    )
    out = joined.group_by("source_id").aggregate(registered=joined.member_id.nunique(), posters=joined.poster.nunique())
    return out.mutate(ratio=out.posters / out.registered)


def _threads(base: Base) -> ir.Table:
    return base.threads()


def _hours(later: ir.TimestampValue, earlier: ir.TimestampValue) -> ir.FloatingValue:
    return (seconds(later) - seconds(earlier)).cast("float64") / 3600.0


@metric("response_rate:source:{grain}")
def response_rate(base: Base, grain: str) -> ir.Table:
    """Share of the conversations started in the period (see conversations_started) that got at least one
    response (an answer, comment, reply or chat message in the conversation) by another member; the
    author's own replies, from any of their identities, and bots' do not count."""
    threads = base.shown(_threads(base), "created_at", grain)
    threads = threads.mutate(period=period(threads.created_at, grain))
    out = threads.group_by(["source_id", "period"]).aggregate(
        conversations=threads.count(), responded=threads.first_response_at.notnull().cast("int64").sum()
    )
    return out.mutate(response_rate=out.responded / out.conversations)


@metric("first_response_time:source:{grain}")
def first_response_time(base: Base, grain: str) -> ir.Table:
    """Time to first response (CHAOSS, Discourse): hours from a conversation's opening to the first
    response by another member (author self-replies and bots excluded), median and 90th percentile
    (linear interpolation), over the conversations started in the period that got a response."""
    threads = base.shown(_threads(base), "created_at", grain)
    threads = threads.filter(threads.first_response_at.notnull())
    threads = threads.mutate(
        period=period(threads.created_at, grain), hours=_hours(threads.first_response_at, threads.created_at)
    )
    return threads.group_by(["source_id", "period"]).aggregate(
        responded=threads.count(), median_hours=threads.hours.quantile(0.5), p90_hours=threads.hours.quantile(0.9)
    )


@metric("unanswered_questions:source:{grain}", ("all",), always=True)
def unanswered_questions(base: Base, grain: str) -> ir.Table:
    """Questions (Stack Exchange questions, thread starts of help mailing lists, chat messages the
    question enricher labelled "question") with no response by another member yet, per source;
    ``parvis.metrics.unanswered_questions`` lists them, oldest first."""
    questions = base.first_responses(base.questions())
    return questions.group_by("source_id").aggregate(
        questions=questions.count(), unanswered=questions.first_response_at.isnull().cast("int64").sum()
    )


@metric("accept_time:source:{grain}")
def accept_time(base: Base, grain: str) -> ir.Table:
    """Where the platform has accepted answers (Stack Exchange): questions asked in the period, how many
    have an accepted answer, and hours from question to accept (median, 90th percentile). Stack
    Exchange dumps date accept votes to the day, so times have day resolution; a vote dated before
    the question's time on the same day counts as 0."""
    roots = base.shown(base.conversation_roots(), "created_at", grain)
    questions = roots.filter(roots.kind == "question")
    accepts = base.authored.filter(base.authored.kind == "accept")
    accepts = accepts.group_by(accepted_conversation=accepts.conversation_id).aggregate(
        accepted_at=accepts.created_at.min()
    )
    joined = questions.left_join(accepts, questions.conversation_id == accepts.accepted_conversation)
    joined = joined.mutate(
        period=period(joined.created_at, grain),
        hours=_hours(joined.accepted_at, joined.created_at),
    )
    joined = joined.mutate(hours=ibis.ifelse(joined.hours < 0.0, 0.0, joined.hours))  # null stays null
    return joined.group_by(["source_id", "period"]).aggregate(
        questions=joined.count(),
        accepted=joined.accepted_at.notnull().cast("int64").sum(),
        median_hours=joined.hours.quantile(0.5),
        p90_hours=joined.hours.quantile(0.9),
    )


# -- concentration and engagement ----------------------------------------------------------------------------


def _per_member(base: Base) -> ir.Table:
    acts = base.member_acts
    if base.scope.since is not None:
        acts = acts.filter(acts.created_at >= ibis.literal(base.scope.since).cast("timestamp"))
    return acts.group_by(["source_id", "member_id"]).aggregate(activities=acts.count())


def _tiers(base: Base) -> ir.Table:
    counts = _per_member(base)
    ordered = ibis.cumulative_window(group_by="source_id", order_by=[ibis.desc("activities"), "member_id"])
    totals = ibis.window(group_by="source_id")
    counts = counts.mutate(
        before=counts.activities.sum().over(ordered) - counts.activities, total=counts.activities.sum().over(totals)
    )
    return counts.mutate(
        tier=ibis.cases(
            (counts.before < counts.total * CORE_SHARE, "core"),
            (counts.before < counts.total * REGULAR_SHARE, "regular"),
            else_="casual",
        )
    )


@metric("contributor_tiers:source:{grain}", ("all",), always=True)
def contributor_tiers(base: Base, grain: str) -> ir.Table:
    """GrimoireLab's onion model over the member activity from the start date to the end date: members
    sorted by activity count; core members together make the first 80% of it, regular members the
    next 15% (up to 95%), casual members the rest. Members and activities per tier."""
    tiers = _tiers(base)
    return tiers.group_by(["source_id", "tier"]).aggregate(members=tiers.count(), activities=tiers.activities.sum())


@metric("top_contributors:source:{grain}", ("all",), always=True)
def top_contributors(base: Base, grain: str) -> ir.Table:
    """The 10 members with the most member activity between the start and end dates, per source (ties
    broken by member id)."""
    counts = _per_member(base)
    ranked = counts.mutate(
        rank=ibis.row_number().over(group_by="source_id", order_by=[ibis.desc("activities"), "member_id"]) + 1
    )
    ranked = ranked.filter(ranked.rank <= TOP_CONTRIBUTORS)
    members = base.members.select(member_ref=base.members.id, display_name=base.members.display_name)
    joined = ranked.left_join(members, ranked.member_id == members.member_ref)
    return joined.select("source_id", "rank", "member_id", "display_name", "activities")


def love_and_reach(base: Base) -> ir.Table:
    """Per source and member: love (weighted monthly activity, decayed 0.9 a month up to the end date's
    month) and reach (distinct other members they replied to or who replied to them)."""
    acts = base.member_acts
    weight = ibis.literal(1.0)
    weights = ibis.cases(*((acts.kind == kind, value) for kind, value in LOVE_WEIGHTS.items()), else_=weight)
    end_month = base.scope.as_of.year * 12 + base.scope.as_of.month - 1
    monthly = acts.group_by(["source_id", "member_id", month_index(acts.created_at).name("month")]).aggregate(
        weight=weights.sum(), activities=acts.count()
    )
    monthly = monthly.mutate(
        decayed=monthly.weight * ibis.literal(LOVE_DECAY) ** (end_month - monthly.month).cast("float64")
    )
    love = monthly.group_by(["source_id", "member_id"]).aggregate(
        love=monthly.decayed.sum(), activities=monthly.activities.sum()
    )
    people = base.authored.filter(~base.authored.is_bot)
    child = people.select(child_parent=people.parent_id, child_member=people.member_id, child_source=people.source_id)
    parent = people.select(parent_id_=people.id, parent_member=people.member_id)
    pairs = child.join(parent, child.child_parent == parent.parent_id_)
    pairs = pairs.filter(pairs.child_member != pairs.parent_member)
    both = pairs.select(source_id=pairs.child_source, member_id=pairs.child_member, other=pairs.parent_member).union(
        pairs.select(source_id=pairs.child_source, member_id=pairs.parent_member, other=pairs.child_member),
        distinct=False,
    )
    reach = both.group_by(["source_id", "member_id"]).aggregate(reach=both.other.nunique())
    reach = reach.select(reach_source=reach.source_id, reach_member=reach.member_id, reach=reach.reach)
    joined = love.left_join(reach, [love.source_id == reach.reach_source, love.member_id == reach.reach_member])
    return joined.select("source_id", "member_id", "activities", "love", reach=joined.reach.fill_null(0))


@metric("engagement:member:{grain}", ("all",), always=True)
def engagement(base: Base, grain: str) -> ir.Table:
    """Orbit-style engagement per member and source, as of the end date. Love: the sum over months of the
    member's weighted activity (answer 3; question, message, reply, wiki 2; comment, accept, edit,
    action, moderation 1) times 0.9 per month between that month and the end date's month. Reach: the
    distinct other members they replied to or who replied to them (direct replies: answers to
    questions, comments on posts, mail and chat replies)."""
    return love_and_reach(base)


@metric("onboarding_funnel:cohort:{grain}", ("month",), always=True)
def onboarding_funnel(base: Base, grain: str) -> ir.Table:
    """Newcomer funnel per month of first post: newcomers (first post), first post answered by someone
    else (and median hours until then), second member activity within 30 days of the first post, and
    still active at 90 days (a member activity 90 days or more after the first post)."""
    posts = base.member_acts.filter(base.member_acts.kind.isin(POST_KINDS))
    order = ibis.window(group_by=["source_id", "member_id"], order_by=["created_at", "id"])
    posts = posts.mutate(position=ibis.row_number().over(order))
    firsts = posts.filter(posts.position == 0).select(
        item_id=posts.id,
        source_id=posts.source_id,
        member_id=posts.member_id,
        conversation_id=posts.conversation_id,
        created_at=posts.created_at,
    )
    answered = base.first_responses(firsts)
    acts = base.member_acts
    later = acts.select(
        later_source=acts.source_id, later_member=acts.member_id, later_at=seconds(acts.created_at), later_id=acts.id
    )
    joined = answered.left_join(
        later,
        [
            answered.source_id == later.later_source,
            answered.member_id == later.later_member,
            later.later_id != answered.item_id,
            later.later_at >= seconds(answered.created_at),
        ],
    )
    start = seconds(joined.created_at)
    flags = joined.group_by(["source_id", "member_id", "item_id", "created_at", "first_response_at"]).aggregate(
        second=(joined.later_at.notnull() & (joined.later_at <= start + 30 * 86400)).cast("int64").max(),
        retained=(joined.later_at.notnull() & (joined.later_at >= start + 90 * 86400)).cast("int64").max(),
    )
    flags = flags.mutate(
        cohort_month=month_index(flags.created_at), hours=_hours(flags.first_response_at, flags.created_at)
    )
    return flags.group_by(["source_id", "cohort_month"]).aggregate(
        newcomers=flags.count(),
        first_post_answered=flags.first_response_at.notnull().cast("int64").sum(),
        median_hours_to_answer=flags.hours.quantile(0.5),
        second_activity_30d=flags.second.sum(),
        active_at_90d=flags.retained.sum(),
    )


# -- enrichments ---------------------------------------------------------------------------------------------


def _labelled(base: Base, enricher: str, grain: str) -> ir.Table:
    labels = base.shown(base.daily_labels(enricher), "day", grain)
    return labels.mutate(period=period(labels.day, grain))


@metric("sentiment:channel:{grain}")
def sentiment(base: Base, grain: str) -> ir.Table:
    """Activities the sentiment enricher labelled, per source, channel, period and label
    (negative, neutral, positive), with the label's share of the channel's labelled activities."""
    rows = _labelled(base, "sentiment", grain)
    out = rows.group_by(["source_id", "channel_id", "period", "label"]).aggregate(activities=rows.activities.sum())
    totals = ibis.window(group_by=["source_id", "channel_id", "period"])
    return out.mutate(share=out.activities / out.activities.sum().over(totals))


@metric("toxicity_rate:channel:{grain}")
def toxicity_rate(base: Base, grain: str) -> ir.Table:
    """Share of the activities the toxicity enricher scored that it labelled "toxic", per source,
    channel and period."""
    rows = _labelled(base, "toxicity", grain)
    out = rows.group_by(["source_id", "channel_id", "period"]).aggregate(
        scored=rows.activities.sum(), toxic=rows.activities.sum(where=rows.label == "toxic").fill_null(0)
    )
    return out.mutate(toxicity_rate=out.toxic / out.scored)
