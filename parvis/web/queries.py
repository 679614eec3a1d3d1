"""Typed, parametrised reads behind the web pages: members, conversations, filters.

Everything goes through SQLAlchemy Core expressions (bound parameters, no SQL text), on SQLite and
PostgreSQL alike.  Metrics and member segments come from :mod:`parvis.metrics` (see
:mod:`parvis.web.metrics_view`); this module reads what a page shows about one member or one
conversation, and the store's state key used to cache computed metrics.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Generic, TypeVar

from sqlalchemy import and_, func, select

from parvis.store import Store
from parvis.store.schema import (
    activities,
    audit_log,
    channels,
    conversations,
    identities,
    import_runs,
    member_events,
    members,
    sources,
)

# Kinds that carry something a person wrote (votes, badges and edits are signals, not posts).
T = TypeVar("T")

POST_KINDS = ("question", "answer", "comment", "message", "reply", "action", "notice", "wiki")


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class Filters:
    sources: list[Option]
    channels: list[Option]


def filter_options(store: Store, source: str | None = None) -> Filters:
    """Sources, and the channels of ``source`` (or of every source), for the filter menus."""
    with store.engine.connect() as connection:
        source_rows = connection.execute(select(sources.c.id, sources.c.name).order_by(sources.c.id)).all()
        channel_query = select(channels.c.id, channels.c.name, channels.c.source_id).order_by(
            channels.c.source_id, channels.c.name
        )
        if source:
            channel_query = channel_query.where(channels.c.source_id == source)
        channel_rows = connection.execute(channel_query).all()
    return Filters(
        [Option(row.id, row.name) for row in source_rows],
        [Option(row.id, row.name if source else f"{row.source_id}: {row.name}") for row in channel_rows],
    )


def store_state(store: Store) -> tuple[object, ...]:
    """A cheap key that changes whenever community data does (an import run starts or ends, a merge or
    unmerge).

    A live listener's run stays ``running`` for its whole session and moves its ``finished_at`` at every
    batch: those moves are not counted, or a busy chat would empty the cache every few seconds.  What a
    running session adds, and enrichments written without an import run, are picked up by the cache's
    age limit (parvis.web.cache.TTL).
    """
    with store.engine.connect() as connection:
        started = connection.execute(select(func.max(import_runs.c.id))).scalar()
        finished = connection.execute(
            select(func.max(import_runs.c.finished_at)).where(import_runs.c.status != "running")
        ).scalar()
        events = connection.execute(select(func.max(member_events.c.id))).scalar()
    return (started, finished, events)


# -- one member ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityView:
    id: str
    source_id: str
    handle: str
    display_name: str | None
    created_at: datetime | None
    is_bot: bool
    at_home: bool


@dataclass(frozen=True)
class ActivityLine:
    id: str
    kind: str
    created_at: datetime
    title: str | None
    conversation_id: str | None
    conversation_title: str | None
    excerpt: str


@dataclass(frozen=True)
class ConversationLine:
    id: str
    title: str | None
    source_id: str
    created_at: datetime
    contributions: int
    last_contribution: datetime


@dataclass
class MemberView:
    id: str
    display_name: str
    identities: list[IdentityView]
    first_activity: datetime | None
    last_activity: datetime | None
    activity_count: int
    kinds: dict[str, int]
    by_month: list[tuple[date, int]]
    recent: list[ActivityLine]
    conversations: list[ConversationLine]
    merged_into: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def _excerpt(text: str | None, length: int = 160) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1] + "…"


def _title_or_none(title: str | None) -> str | None:
    return title if title else None


def member_view(store: Store, member_id: str, *, recent: int = 20, conversation_limit: int = 50) -> MemberView | None:
    """Everything the member page shows, or None for an unknown member id."""
    with store.engine.connect() as connection:
        member = connection.execute(select(members).where(members.c.id == member_id)).first()
        if member is None:
            return None
        identity_rows = connection.execute(
            select(identities)
            .where(identities.c.member_id == member_id)
            .order_by(identities.c.source_id, identities.c.id)
        ).all()
        identity_ids = [row.id for row in identity_rows]
        by_author = activities.c.identity_id.in_(identity_ids)
        kinds = Counter(
            {
                kind: int(count)
                for kind, count in connection.execute(
                    select(activities.c.kind, func.count()).where(by_author).group_by(activities.c.kind)
                )
            }
        )
        bounds = connection.execute(
            select(func.min(activities.c.created_at), func.max(activities.c.created_at)).where(
                by_author, activities.c.kind.in_(POST_KINDS)
            )
        ).one()
        months: Counter[date] = Counter()
        for (created_at,) in connection.execute(
            select(activities.c.created_at).where(by_author, activities.c.kind.in_(POST_KINDS))
        ):
            months[date(created_at.year, created_at.month, 1)] += 1
        recent_rows = connection.execute(
            select(
                activities.c.id,
                activities.c.kind,
                activities.c.created_at,
                activities.c.title,
                activities.c.text_plain,
                activities.c.conversation_id,
                conversations.c.title.label("conversation_title"),
            )
            .select_from(activities.outerjoin(conversations, conversations.c.id == activities.c.conversation_id))
            .where(by_author, activities.c.kind.in_(POST_KINDS))
            .order_by(activities.c.created_at.desc(), activities.c.id)
            .limit(recent)
        ).all()
        per_conversation = (
            select(
                activities.c.conversation_id,
                func.count().label("contributions"),
                func.max(activities.c.created_at).label("last_contribution"),
            )
            .where(by_author, activities.c.kind.in_(POST_KINDS), activities.c.conversation_id.is_not(None))
            .group_by(activities.c.conversation_id)
            .subquery()
        )
        conversation_rows = connection.execute(
            select(
                conversations.c.id,
                conversations.c.title,
                conversations.c.source_id,
                conversations.c.created_at,
                per_conversation.c.contributions,
                per_conversation.c.last_contribution,
            )
            .select_from(per_conversation.join(conversations, conversations.c.id == per_conversation.c.conversation_id))
            .order_by(per_conversation.c.last_contribution.desc(), conversations.c.id)
            .limit(conversation_limit)
        ).all()
    names = [row.display_name for row in identity_rows if row.display_name] + [row.handle for row in identity_rows]
    by_month = _fill_months(months)
    return MemberView(
        id=member.id,
        display_name=member.display_name or (names[0] if names else member.id),
        identities=[
            IdentityView(
                row.id,
                row.source_id,
                row.handle,
                row.display_name,
                row.created_at,
                bool(row.is_bot),
                row.home_member_id == member_id,
            )
            for row in identity_rows
        ],
        first_activity=bounds[0],
        last_activity=bounds[1],
        activity_count=sum(count for kind, count in kinds.items() if kind in POST_KINDS),
        kinds=dict(sorted(kinds.items())),
        by_month=by_month,
        recent=[
            ActivityLine(
                row.id,
                row.kind,
                row.created_at,
                _title_or_none(row.title),
                row.conversation_id,
                _title_or_none(row.conversation_title),
                _excerpt(row.text_plain),
            )
            for row in recent_rows
        ],
        conversations=[
            ConversationLine(
                row.id, row.title, row.source_id, row.created_at, int(row.contributions), row.last_contribution
            )
            for row in conversation_rows
        ],
        merged_into=member.merged_into,
    )


def _fill_months(months: Counter[date]) -> list[tuple[date, int]]:
    if not months:
        return []
    first, last = min(months), max(months)
    filled: list[tuple[date, int]] = []
    current = first
    while current <= last:
        filled.append((current, months.get(current, 0)))
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return filled


# -- one conversation ------------------------------------------------------------------------------


@dataclass
class Post:
    id: str
    kind: str
    created_at: datetime
    edited_at: datetime | None
    title: str | None
    text: str
    url: str | None
    author_identity: str | None
    author_member: str | None
    author_name: str | None
    score: int | None
    accepted: bool
    depth: int
    parent_id: str | None


@dataclass
class ThreadView:
    id: str
    title: str | None
    source_id: str
    platform: str
    channel_id: str | None
    channel_name: str | None
    created_at: datetime
    posts: list[Post]
    other_kinds: dict[str, int]


MAX_DEPTH = 6


def thread_view(store: Store, conversation_id: str) -> ThreadView | None:
    """A conversation as a thread: each post after its parent, comments before answers, by time."""
    with store.engine.connect() as connection:
        head = connection.execute(
            select(
                conversations.c.id,
                conversations.c.title,
                conversations.c.source_id,
                conversations.c.channel_id,
                conversations.c.created_at,
                conversations.c.root_activity_id,
                sources.c.platform,
                channels.c.name.label("channel_name"),
            )
            .select_from(
                conversations.join(sources, sources.c.id == conversations.c.source_id).outerjoin(
                    channels, channels.c.id == conversations.c.channel_id
                )
            )
            .where(conversations.c.id == conversation_id)
        ).first()
        if head is None:
            return None
        rows = connection.execute(
            select(
                activities.c.id,
                activities.c.kind,
                activities.c.parent_id,
                activities.c.created_at,
                activities.c.edited_at,
                activities.c.title,
                activities.c.text_plain,
                activities.c.url,
                activities.c.extras,
                activities.c.identity_id,
                identities.c.member_id,
                func.coalesce(identities.c.display_name, identities.c.handle).label("author_name"),
            )
            .select_from(activities.outerjoin(identities, identities.c.id == activities.c.identity_id))
            .where(activities.c.conversation_id == conversation_id)
            .order_by(activities.c.created_at, activities.c.id)
        ).all()
    accepted = {row.parent_id for row in rows if row.kind == "accept"}
    others = Counter(row.kind for row in rows if row.kind not in POST_KINDS)
    posts = {
        row.id: Post(
            id=row.id,
            kind=row.kind,
            created_at=row.created_at,
            edited_at=row.edited_at,
            title=_title_or_none(row.title),
            text=row.text_plain or "",
            url=row.url,
            author_identity=row.identity_id,
            author_member=row.member_id,
            author_name=row.author_name,
            score=_score(row.extras),
            accepted=row.id in accepted,
            depth=0,
            parent_id=row.parent_id,
        )
        for row in rows
        if row.kind in POST_KINDS
    }
    children: dict[str | None, list[Post]] = {}
    for post in posts.values():
        parent = post.parent_id if post.parent_id in posts else None
        children.setdefault(parent, []).append(post)
    ordered: list[Post] = []

    def visit(parent: str | None, depth: int) -> None:
        for post in sorted(children.get(parent, []), key=lambda item: (item.kind != "comment", item.created_at)):
            post.depth = min(depth, MAX_DEPTH)
            ordered.append(post)
            visit(post.id, depth + 1)

    roots = sorted(children.get(None, []), key=lambda item: (item.id != head.root_activity_id, item.created_at))
    for root in roots:
        root.depth = 0
        ordered.append(root)
        visit(root.id, 1)
    return ThreadView(
        id=head.id,
        title=head.title,
        source_id=head.source_id,
        platform=head.platform,
        channel_id=head.channel_id,
        channel_name=head.channel_name,
        created_at=head.created_at,
        posts=ordered,
        other_kinds=dict(sorted(others.items())),
    )


def _score(extras: object) -> int | None:
    if isinstance(extras, dict):
        value = extras.get("score")
        if isinstance(value, int):
            return value
    return None


# -- conversation list -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationRow:
    id: str
    title: str | None
    source_id: str
    channel_name: str | None
    created_at: datetime


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def conversation_list(
    store: Store,
    *,
    search: str | None = None,
    source: str | None = None,
    channel: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[ConversationRow]:
    """Conversations, newest first; ``search`` matches the title (case-insensitive substring)."""
    conditions = []
    if source:
        conditions.append(conversations.c.source_id == source)
    if channel:
        conditions.append(conversations.c.channel_id == channel)
    if search:
        conditions.append(func.lower(conversations.c.title).contains(search.lower(), autoescape=True))
    where = and_(True, *conditions)
    query = (
        select(
            conversations.c.id,
            conversations.c.title,
            conversations.c.source_id,
            channels.c.name,
            conversations.c.created_at,
        )
        .select_from(conversations.outerjoin(channels, channels.c.id == conversations.c.channel_id))
        .where(where)
        .order_by(conversations.c.created_at.desc(), conversations.c.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    with store.engine.connect() as connection:
        total = int(connection.execute(select(func.count()).select_from(conversations).where(where)).scalar_one())
        rows = connection.execute(query).all()
    items = [ConversationRow(row[0], row[1], row[2], row[3], row[4]) for row in rows]
    return Page(items, total, page, per_page)


def latest_activity(store: Store, source: str | None = None) -> datetime | None:
    """When the most recent activity (of ``source``) happened: the end of the dashboard's window.

    Archives are often historical, so "today" would show empty charts; the latest activity works
    for a live community and an old dump alike.
    """
    query = select(func.max(activities.c.created_at))
    if source:
        query = query.where(activities.c.source_id == source)
    with store.engine.connect() as connection:
        value = connection.execute(query).scalar()
    return value if isinstance(value, datetime) else None


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    activity_id: str | None
    rule: str | None
    reason: str
    error: str | None
    skipped: str | None


def audit_page(store: Store, *, action: str | None = None, page: int = 1, per_page: int = 50) -> Page[AuditRow]:
    """The moderation audit log, newest first (read-only: the table refuses updates and deletes)."""
    condition = audit_log.c.action == action if action else None
    count = select(func.count()).select_from(audit_log)
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(per_page).offset((page - 1) * per_page)
    if condition is not None:
        count = count.where(condition)
        query = query.where(condition)
    with store.engine.connect() as connection:
        total = int(connection.execute(count).scalar_one())
        rows = connection.execute(query).all()

    def detail(details: object, key: str) -> str | None:
        value = details.get(key) if isinstance(details, dict) else None
        return str(value) if value is not None else None

    items = [
        AuditRow(
            row.id,
            row.at,
            row.actor,
            row.action,
            row.activity_id,
            row.rule,
            row.reason,
            detail(row.details, "error"),
            detail(row.details, "skipped"),
        )
        for row in rows
    ]
    return Page(items, total, page, per_page)


def audit_actions(store: Store) -> list[str]:
    with store.engine.connect() as connection:
        return list(connection.execute(select(audit_log.c.action).distinct().order_by(audit_log.c.action)).scalars())
