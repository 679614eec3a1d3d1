"""Welcoming newcomers and thanking helpers.

**Welcome** (``parvis listen --welcome welcome.yaml``): when a member's first message in the
community arrives, the listener replies to it in its thread with a template, in the member's
language (the ``language`` enrichment of that message, else of the member's other activities) when
a template exists for it, else in the configured default language::

    default_language: en
    messages:
      en: "Welcome {author}! Glad to have you in {channel}."
      fr: "Bienvenue {author} ! Ravis de vous voir dans {channel}."

A member is welcomed once, ever: the welcome is appended to the audit log (action ``welcome``)
*before* it is posted, and a member with such an entry is never welcomed again (a restarted or
replaying listener included; a post that fails is logged as ``welcome-failed`` and not retried).
"First message" means: no earlier message-like activity of the member, on any of their identities.

**Thanks** (``parvis thanks list|done``): suggestions of members to thank over the last N days:
those whose answers were accepted (``accept`` activities: the accepted answer's author, unless they
accepted their own answer) and those who replied to a newcomer's first post (a question, message or
post that was its author's first contribution).  Each suggestion is an activity; once a person
thanked the member (``parvis thanks done``), an audit-log entry ``thank`` per activity removes it.

Like the other workflows, this module never changes community data.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, and_, func, or_, select

from parvis.store import Store
from parvis.store.schema import activities, audit_log, channels, enrichments, identities
from parvis.workflows.moderation import record

WELCOME_FIELDS = frozenset({"author", "channel"})
WELCOME_KINDS = ("message", "question", "post", "reply", "answer", "comment")
"""What counts as a member's message, for "first message" and "newcomer"."""
STARTER_KINDS = ("question", "message", "post")
REPLY_KINDS = ("answer", "reply", "comment")
LANGUAGE_ENRICHER = "language"
_IN_CHUNK = 500


class WelcomeError(Exception):
    """A welcome configuration that cannot be used (one line: file, field, problem)."""


@dataclass(frozen=True)
class WelcomeConfig:
    messages: dict[str, str]
    default_language: str
    filename: str = "<welcome>"

    def text(self, language: str, values: dict[str, str]) -> str:
        template = self.messages.get(language) or self.messages[self.default_language]
        return template.format_map({name: values.get(name, "") for name in WELCOME_FIELDS})


def parse_welcome(data: Any, filename: str = "<welcome>") -> WelcomeConfig:
    if not isinstance(data, dict):
        raise WelcomeError(f"{filename}: expected a mapping with default_language and messages")
    unknown = set(data) - {"default_language", "messages"}
    if unknown:
        raise WelcomeError(f"{filename}: {sorted(unknown)[0]}: unknown field; expected default_language, messages")
    messages = data.get("messages")
    if not isinstance(messages, dict) or not messages:
        raise WelcomeError(f"{filename}: messages: expected a mapping of language code to template, e.g. en: ...")
    checked: dict[str, str] = {}
    for language, template in messages.items():
        if not isinstance(language, str) or not language.strip():
            raise WelcomeError(f"{filename}: messages: {language!r} is not a language code")
        if not isinstance(template, str) or not template.strip():
            raise WelcomeError(f"{filename}: messages.{language}: expected a non-empty text")
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as problem:
            raise WelcomeError(f"{filename}: messages.{language}: {problem}") from None
        wrong = sorted(fields - WELCOME_FIELDS)
        if wrong:
            allowed = ", ".join(f"{{{name}}}" for name in sorted(WELCOME_FIELDS))
            raise WelcomeError(f"{filename}: messages.{language}: unknown field {{{wrong[0]}}}; expected {allowed}")
        checked[language.strip().lower()] = template
    default = data.get("default_language", "en" if "en" in checked else next(iter(checked)))
    if not isinstance(default, str) or default.lower() not in checked:
        raise WelcomeError(f"{filename}: default_language: {default!r} has no message")
    return WelcomeConfig(checked, default.lower(), filename)


def load_welcome(path: str | Path) -> WelcomeConfig:
    name = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as problem:
        raise WelcomeError(f"{name}: cannot be read: {problem.strerror or problem}") from None
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise WelcomeError(f"{name}{where}: not valid YAML: {getattr(problem, 'problem', None) or problem}") from None
    return parse_welcome(data, name)


# -- who is new ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Welcome:
    activity_id: str
    member_id: str
    language: str
    text: str


def _member_identities(connection: Connection, member_id: str) -> list[str]:
    return list(connection.execute(select(identities.c.id).where(identities.c.member_id == member_id)).scalars())


def _welcomed(connection: Connection, member_id: str) -> bool:
    """Whether a welcome (tried or done) is in the audit log for one of the member's activities."""
    found = connection.execute(
        select(audit_log.c.id)
        .join(activities, activities.c.id == audit_log.c.activity_id)
        .join(identities, identities.c.id == activities.c.identity_id)
        .where(audit_log.c.action.in_(("welcome", "welcome-failed")), identities.c.member_id == member_id)
        .limit(1)
    ).first()
    return found is not None


def member_language(connection: Connection, activity_id: str, identity_ids: Sequence[str]) -> str | None:
    """The ``language`` enrichment's label of this activity, else the most frequent among the member's."""
    own = connection.execute(
        select(enrichments.c.label).where(
            enrichments.c.activity_id == activity_id, enrichments.c.enricher == LANGUAGE_ENRICHER
        )
    ).scalar_one_or_none()
    if own:
        return str(own).lower()
    labels = Counter(
        str(label).lower()
        for label in connection.execute(
            select(enrichments.c.label)
            .join(activities, activities.c.id == enrichments.c.activity_id)
            .where(enrichments.c.enricher == LANGUAGE_ENRICHER, activities.c.identity_id.in_(identity_ids))
        ).scalars()
        if label
    )
    return max(sorted(labels), key=lambda label: labels[label]) if labels else None


def welcomes_due(
    store: Store, config: WelcomeConfig, activity_ids: Sequence[str], exclude_identities: Sequence[str] = ()
) -> list[Welcome]:
    """The welcomes to post for these (just stored) activities: one per member whose first message this is."""
    rows: list[Any] = []
    due: list[Welcome] = []
    with store.engine.connect() as connection:
        for start in range(0, len(activity_ids), _IN_CHUNK):
            chunk = list(activity_ids[start : start + _IN_CHUNK])
            rows.extend(
                connection.execute(
                    select(
                        activities.c.id,
                        activities.c.created_at,
                        identities.c.member_id,
                        identities.c.is_bot,
                        func.coalesce(identities.c.display_name, identities.c.handle).label("author"),
                        channels.c.name.label("channel"),
                    )
                    .join(identities, identities.c.id == activities.c.identity_id)
                    .outerjoin(channels, channels.c.id == activities.c.channel_id)
                    .where(
                        activities.c.id.in_(chunk),
                        activities.c.kind.in_(WELCOME_KINDS),
                        activities.c.identity_id.not_in(list(exclude_identities)),
                    )
                )
            )
        seen: set[str] = set()
        for row in sorted(rows, key=lambda row: (row.created_at, row.id)):
            if row.member_id in seen or row.is_bot:
                continue
            seen.add(row.member_id)
            identity_ids = _member_identities(connection, row.member_id)
            earlier = connection.execute(
                select(activities.c.id)
                .where(
                    activities.c.identity_id.in_(identity_ids),
                    activities.c.kind.in_(WELCOME_KINDS),
                    or_(
                        activities.c.created_at < row.created_at,
                        and_(activities.c.created_at == row.created_at, activities.c.id < row.id),
                    ),
                )
                .limit(1)
            ).first()
            if earlier is not None or _welcomed(connection, row.member_id):
                continue
            language = member_language(connection, row.id, identity_ids)
            chosen = language if language in config.messages else config.default_language
            values = {"author": row.author or "", "channel": row.channel or ""}
            due.append(Welcome(row.id, row.member_id, chosen, config.text(chosen, values)))
    return due


def claim_welcome(store: Store, welcome: Welcome, actor: str) -> bool:
    """Append the welcome to the audit log before posting it; False when the member was welcomed meanwhile."""
    with store.engine.connect() as connection:
        if _welcomed(connection, welcome.member_id):
            return False
    record(
        store,
        actor,
        "welcome",
        f"first message of {welcome.member_id}",
        activity_id=welcome.activity_id,
        details={"member": welcome.member_id, "language": welcome.language, "text": welcome.text},
    )
    return True


# -- thanks ----------------------------------------------------------------------------------------


@dataclass
class ThanksSuggestion:
    member_id: str
    name: str
    accepted: list[str] = field(default_factory=list)
    """Accepted answers (the ``accept`` activities' ids)."""
    newcomer_replies: list[str] = field(default_factory=list)
    """Replies to newcomers' first posts (the replies' ids)."""

    @property
    def activity_ids(self) -> list[str]:
        return [*self.accepted, *self.newcomer_replies]


def _thanked(connection: Connection, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        found.update(
            connection.execute(
                select(audit_log.c.activity_id).where(
                    audit_log.c.action == "thank", audit_log.c.activity_id.in_(list(ids[start : start + _IN_CHUNK]))
                )
            ).scalars()
        )
    return found


def thanks_suggestions(
    store: Store, *, until: datetime, days: int, source_id: str | None = None
) -> list[ThanksSuggestion]:
    """Members to thank for activities in ``[until - days, until)``, most reasons first; already thanked left out."""
    since = until - timedelta(days=days)
    accept, answer = activities.alias("accept"), activities.alias("answer")
    answer_author, accepter = identities.alias("answer_author"), identities.alias("accepter")
    reply, post = activities.alias("reply"), activities.alias("post")
    reply_author, post_author = identities.alias("reply_author"), identities.alias("post_author")
    found: dict[str, ThanksSuggestion] = {}

    def suggestion(member_id: str, name: str | None) -> ThanksSuggestion:
        return found.setdefault(member_id, ThanksSuggestion(member_id, name or member_id))

    with store.engine.connect() as connection:
        accepted = (
            select(accept.c.id, answer_author.c.member_id, answer_author.c.display_name, answer_author.c.handle)
            .join(answer, answer.c.id == accept.c.parent_id)
            .join(answer_author, answer_author.c.id == answer.c.identity_id)
            .outerjoin(accepter, accepter.c.id == accept.c.identity_id)
            .where(
                accept.c.kind == "accept",
                accept.c.created_at >= since,
                accept.c.created_at < until,
                or_(accepter.c.member_id.is_(None), accepter.c.member_id != answer_author.c.member_id),
            )
        )
        if source_id is not None:
            accepted = accepted.where(accept.c.source_id == source_id)
        for found_row in connection.execute(accepted):
            suggestion(found_row.member_id, found_row.display_name or found_row.handle).accepted.append(found_row.id)

        replies = (
            select(
                reply.c.id,
                reply_author.c.member_id,
                reply_author.c.display_name,
                reply_author.c.handle,
                post.c.id.label("post_id"),
                post.c.created_at.label("post_at"),
                post_author.c.member_id.label("newcomer"),
            )
            .join(post, post.c.id == reply.c.parent_id)
            .join(reply_author, reply_author.c.id == reply.c.identity_id)
            .join(post_author, post_author.c.id == post.c.identity_id)
            .where(
                reply.c.kind.in_(REPLY_KINDS),
                reply.c.created_at >= since,
                reply.c.created_at < until,
                post.c.kind.in_(STARTER_KINDS),
                reply_author.c.member_id != post_author.c.member_id,
            )
        )
        if source_id is not None:
            replies = replies.where(reply.c.source_id == source_id)
        candidates = list(connection.execute(replies))
        firsts = _first_contributions(connection, {row.newcomer for row in candidates})
        for row in sorted(candidates, key=lambda row: row.id):
            if firsts.get(row.newcomer) == row.post_id:
                suggestion(row.member_id, row.display_name or row.handle).newcomer_replies.append(row.id)

        thanked = _thanked(connection, [activity_id for item in found.values() for activity_id in item.activity_ids])
    kept = []
    for item in found.values():
        item.accepted = sorted(activity_id for activity_id in item.accepted if activity_id not in thanked)
        item.newcomer_replies = sorted(
            activity_id for activity_id in item.newcomer_replies if activity_id not in thanked
        )
        if item.activity_ids:
            kept.append(item)
    return sorted(kept, key=lambda item: (-len(item.activity_ids), item.member_id))


def _first_contributions(connection: Connection, member_ids: set[str]) -> dict[str, str]:
    """Member id → id of their first message-like activity (earliest, then smallest id)."""
    firsts: dict[str, str] = {}
    ordered = sorted(member_ids)
    for start in range(0, len(ordered), _IN_CHUNK):
        rows = connection.execute(
            select(identities.c.member_id, activities.c.id, activities.c.created_at)
            .join(identities, identities.c.id == activities.c.identity_id)
            .where(identities.c.member_id.in_(ordered[start : start + _IN_CHUNK]), activities.c.kind.in_(WELCOME_KINDS))
            .order_by(identities.c.member_id, activities.c.created_at, activities.c.id)
        )
        for row in rows:
            firsts.setdefault(row.member_id, row.id)
    return firsts


def mark_thanked(store: Store, suggestion: ThanksSuggestion, by: str, note: str = "") -> int:
    """Record that ``by`` thanked the member for each of the suggestion's activities; returns how many."""
    for activity_id in suggestion.activity_ids:
        kind = "accepted answer" if activity_id in suggestion.accepted else "reply to a newcomer"
        record(
            store,
            by,
            "thank",
            note or f"thanked {suggestion.name} for a {kind}",
            activity_id=activity_id,
            details={"member": suggestion.member_id, "for": kind},
        )
    return len(suggestion.activity_ids)
