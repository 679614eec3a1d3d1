"""Moderation: rules applied to activities, a moderation queue, and an append-only audit log.

- :class:`Moderator` evaluates a :class:`~parvis.workflows.moderation_rules.RuleSet` on activities
  of the store (``evaluate``, no side effect: what ``parvis moderate test`` prints) and carries out
  the rules' actions (``enforce``): ``flag`` puts the activity in ``moderation_queue``; ``hide``,
  ``reply``, ``warn`` and ``notify`` go through a :class:`Platform` when one can do them.  Every
  action, automatic or human, is written to ``audit_log``: who, what, when, which rule, why.
- The audit log is append-only: this module only inserts, and database triggers refuse any
  UPDATE or DELETE (migration 0004).
- An activity is acted on once per rule: a rule already logged for an activity is not applied
  again (a listener that replays a sync after a crash does not warn twice).

Like the other workflows, this module never changes community data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, and_, func, select, update

from parvis.store import Store
from parvis.store.schema import activities, audit_log, channels, enrichments, identities, moderation_queue, sources
from parvis.workflows.moderation_rules import Rule, RuleSet, Subject

log = logging.getLogger(__name__)

STATES = ("pending", "approved", "removed", "dismissed")
DECISIONS = {"approve": "approved", "remove": "removed", "dismiss": "dismissed"}
NEWCOMER_DAYS = 30
NEWCOMER_ACTIVITIES = 5
TOXICITY_ENRICHER = "toxicity"
_IN_CHUNK = 500


class ModerationError(Exception):
    """A moderation request that cannot be carried out (unknown queue item, wrong state)."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- facts from the store ------------------------------------------------------------------------------


class StoreFacts:
    """Author, toxicity and rate facts read from the store, cached per subject.

    Toxicity is the ``toxicity`` enrichment's score (probability that the text is toxic); when the
    activity has none yet, ``scorer`` (a text → probability function, e.g. from parvis.enrich) is
    asked, if given.  Times are the activity's: a dry run over history sees what a live run saw.
    """

    def __init__(self, connection: Connection, scorer: Callable[[str], float] | None = None) -> None:
        self.connection = connection
        self.scorer = scorer
        self._cache: dict[tuple[str, str], Any] = {}

    def _cached(self, subject: Subject, key: str, compute: Callable[[], Any]) -> Any:
        slot = (subject.activity_id, key)
        if slot not in self._cache:
            self._cache[slot] = compute()
        return self._cache[slot]

    def _first_seen(self, subject: Subject) -> datetime | None:
        if subject.identity_id is None:
            return None
        row = self.connection.execute(
            select(identities.c.created_at).where(identities.c.id == subject.identity_id)
        ).first()
        if row is not None and row.created_at is not None:
            created: datetime = row.created_at
            return created
        first: datetime | None = self.connection.execute(
            select(func.min(activities.c.created_at)).where(activities.c.identity_id == subject.identity_id)
        ).scalar_one_or_none()
        return first

    def account_age_days(self, subject: Subject) -> float | None:
        def compute() -> float | None:
            first = self._first_seen(subject)
            return None if first is None else max(0.0, (subject.created_at - first).total_seconds() / 86400)

        value: float | None = self._cached(subject, "age", compute)
        return value

    def activity_count(self, subject: Subject) -> int:
        """Activities of the author before this one."""

        def compute() -> int:
            if subject.identity_id is None:
                return 0
            return int(
                self.connection.execute(
                    select(func.count()).where(
                        activities.c.identity_id == subject.identity_id,
                        activities.c.created_at < subject.created_at,
                    )
                ).scalar_one()
            )

        value: int = self._cached(subject, "count", compute)
        return value

    def segment(self, subject: Subject) -> str:
        """``newcomer``: fewer than 5 earlier activities, or first seen less than 30 days before; else ``regular``."""
        age = self.account_age_days(subject)
        if self.activity_count(subject) < NEWCOMER_ACTIVITIES or (age is not None and age < NEWCOMER_DAYS):
            return "newcomer"
        return "regular"

    def toxicity(self, subject: Subject) -> float | None:
        def compute() -> float | None:
            score = self.connection.execute(
                select(enrichments.c.score).where(
                    enrichments.c.activity_id == subject.activity_id, enrichments.c.enricher == TOXICITY_ENRICHER
                )
            ).scalar_one_or_none()
            if score is None and self.scorer is not None and subject.text:
                return float(self.scorer(subject.text))
            return None if score is None else float(score)

        value: float | None = self._cached(subject, "toxicity", compute)
        return value

    def messages_in_last_minute(self, subject: Subject) -> int:
        """The author's activities in the minute up to this one, this one included."""

        def compute() -> int:
            if subject.identity_id is None:
                return 1
            return int(
                self.connection.execute(
                    select(func.count()).where(
                        activities.c.identity_id == subject.identity_id,
                        activities.c.created_at > subject.created_at - timedelta(minutes=1),
                        activities.c.created_at <= subject.created_at,
                    )
                ).scalar_one()
            )

        value: int = self._cached(subject, "rate", compute)
        return value

    def repeated_text(self, subject: Subject, within_minutes: float) -> int:
        """How many times the author posted this same text (trimmed, case-folded) in the window, this one included."""

        def compute() -> int:
            if subject.identity_id is None or not subject.text.strip():
                return 1
            wanted = " ".join(subject.text.split()).casefold()
            texts = self.connection.execute(
                select(activities.c.text_plain).where(
                    activities.c.identity_id == subject.identity_id,
                    activities.c.created_at > subject.created_at - timedelta(minutes=within_minutes),
                    activities.c.created_at <= subject.created_at,
                )
            ).scalars()
            return sum(1 for text in texts if text is not None and " ".join(text.split()).casefold() == wanted)

        value: int = self._cached(subject, f"repeat:{within_minutes}", compute)
        return value


# -- platforms ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """An activity a platform acts on, in the platform's own terms."""

    activity_id: str
    native_id: str
    channel_native_id: str | None
    author_native_id: str | None
    thread_root: str | None


class Platform(Protocol):
    """What a live connector can do for moderation (see parvis.live.matrix)."""

    name: str
    actor: str

    async def hide(self, target: Target, reason: str) -> None: ...

    async def reply(self, target: Target, text: str) -> None: ...

    async def notify(self, text: str) -> bool: ...


# -- evaluation and enforcement ------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    rule: Rule
    subject: Subject
    why: tuple[str, ...]

    @property
    def reason(self) -> str:
        return f"{self.rule.reason}: {'; '.join(self.why)}"


@dataclass
class Outcome:
    match: Match
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


_SUBJECT_COLUMNS = (
    activities.c.id,
    activities.c.kind,
    activities.c.text_plain,
    activities.c.text_raw,
    activities.c.created_at,
    activities.c.identity_id,
    activities.c.channel_id,
    activities.c.native_id,
    activities.c.extras,
    sources.c.platform,
    identities.c.native_id.label("author_native_id"),
    identities.c.display_name,
    identities.c.handle,
    channels.c.native_id.label("channel_native_id"),
    channels.c.name.label("channel_name"),
)


def _subject_query() -> Any:
    return (
        select(*_SUBJECT_COLUMNS)
        .join(sources, sources.c.id == activities.c.source_id)
        .outerjoin(identities, identities.c.id == activities.c.identity_id)
        .outerjoin(channels, channels.c.id == activities.c.channel_id)
    )


def _subject(row: Any) -> Subject:
    return Subject(
        activity_id=row.id,
        platform=row.platform,
        kind=row.kind,
        text=row.text_plain or row.text_raw or "",
        created_at=row.created_at,
        identity_id=row.identity_id,
        channel_id=row.channel_id,
        author_name=row.display_name or row.handle,
        channel_name=row.channel_name,
    )


def _target(row: Any) -> Target:
    extras = row.extras if isinstance(row.extras, dict) else {}
    root = extras.get("thread_root")
    return Target(
        row.id, row.native_id, row.channel_native_id, row.author_native_id, root if isinstance(root, str) else None
    )


class Moderator:
    def __init__(self, store: Store, rules: RuleSet, *, scorer: Callable[[str], float] | None = None) -> None:
        self.store = store
        self.rules = rules
        self.scorer = scorer

    def evaluate_rows(self, connection: Connection, rows: Iterable[Any]) -> list[Match]:
        facts = StoreFacts(connection, self.scorer)
        found = []
        for row in rows:
            subject = _subject(row)
            for rule in self.rules.rules:
                why = rule.explain(subject, facts)
                if why is not None:
                    found.append(Match(rule, subject, tuple(why)))
        return found

    def evaluate(self, activity_ids: Sequence[str]) -> list[Match]:
        """The rules each activity matches, in the given order (no side effect)."""
        order = {activity_id: index for index, activity_id in enumerate(activity_ids)}
        rows: list[Any] = []
        with self.store.engine.connect() as connection:
            for start in range(0, len(activity_ids), _IN_CHUNK):
                chunk = list(activity_ids[start : start + _IN_CHUNK])
                rows.extend(connection.execute(_subject_query().where(activities.c.id.in_(chunk))))
            rows.sort(key=lambda row: order[row.id])
            return self.evaluate_rows(connection, rows)

    def dry_run(self, source_id: str | None = None, limit: int | None = None) -> Iterable[Match]:
        """What the rules would have matched over the stored history, oldest first."""
        query = _subject_query().order_by(activities.c.created_at, activities.c.id)
        if source_id is not None:
            query = query.where(activities.c.source_id == source_id)
        with self.store.engine.connect() as connection:
            found = 0
            for rows in connection.execute(query).partitions(1000):
                for match in self.evaluate_rows(connection, rows):
                    yield match
                    found += 1
                    if limit is not None and found >= limit:
                        return

    def _already_applied(self, connection: Connection, matches: Sequence[Match]) -> set[tuple[str, str]]:
        ids = sorted({match.subject.activity_id for match in matches})
        done: set[tuple[str, str]] = set()
        for start in range(0, len(ids), _IN_CHUNK):
            rows = connection.execute(
                select(audit_log.c.activity_id, audit_log.c.rule).where(
                    audit_log.c.activity_id.in_(ids[start : start + _IN_CHUNK]), audit_log.c.rule.is_not(None)
                )
            )
            done.update((row.activity_id, row.rule) for row in rows)
        return done

    async def enforce(
        self, matches: Sequence[Match], platform: Platform | None, actor: str = "parvis"
    ) -> list[Outcome]:
        """Carry out the matched rules' actions (once per activity and rule), logging each in the audit log."""
        with self.store.engine.connect() as connection:
            done = self._already_applied(connection, matches)
            rows = {}
            ids = sorted({match.subject.activity_id for match in matches})
            for start in range(0, len(ids), _IN_CHUNK):
                query = _subject_query().where(activities.c.id.in_(ids[start : start + _IN_CHUNK]))
                rows.update({row.id: row for row in connection.execute(query)})
        outcomes = []
        for match in matches:
            if (match.subject.activity_id, match.rule.id) in done:
                continue
            done.add((match.subject.activity_id, match.rule.id))
            outcomes.append(await self._apply(match, _target(rows[match.subject.activity_id]), platform, actor))
        return outcomes

    async def _apply(self, match: Match, target: Target, platform: Platform | None, actor: str) -> Outcome:
        outcome = Outcome(match)
        rule = match.rule
        values = {
            "author": match.subject.author_name or target.author_native_id or "",
            "rule": rule.id,
            "reason": rule.reason,
            "channel": match.subject.channel_name or "",
            "text": match.subject.text[:200],
        }
        who = f"rule:{rule.id}" if platform is None else f"rule:{rule.id} as {platform.actor}"
        for action in rule.actions:
            details: dict[str, Any] = {"why": list(match.why), "actor": actor}
            text = action.template.render(values) if action.template is not None else None
            if text is not None:
                details["text"] = text
            try:
                if action.kind == "flag":
                    flag(self.store, match.subject.activity_id, rule.id, match.reason)
                elif platform is None:
                    details["skipped"] = "no platform connection"
                elif action.kind == "hide":
                    await platform.hide(target, match.reason)
                elif action.kind in ("reply", "warn"):
                    await platform.reply(target, text or "")
                elif action.kind == "notify" and not await platform.notify(text or ""):
                    details["skipped"] = "no notification room configured"
            except Exception as problem:  # a refused action is logged, and the next one is still tried
                log.warning("rule %s: %s failed on %s: %s", rule.id, action.kind, target.activity_id, problem)
                details["error"] = f"{problem.__class__.__name__}: {problem}"
            if "error" in details or "skipped" in details:
                outcome.failed.append(action.kind)
            else:
                outcome.done.append(action.kind)
            record(
                self.store,
                who,
                action.kind,
                match.reason,
                activity_id=match.subject.activity_id,
                rule=rule.id,
                details=details,
            )
        return outcome


# -- queue and audit log -------------------------------------------------------------------------------


def record(
    store: Store,
    actor: str,
    action: str,
    reason: str,
    *,
    activity_id: str | None = None,
    rule: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit log (the only write this table ever gets)."""
    with store.engine.begin() as connection:
        connection.execute(
            audit_log.insert().values(
                at=_now(),
                actor=actor,
                action=action,
                activity_id=activity_id,
                rule=rule,
                reason=reason,
                details=details or {},
            )
        )


def flag(store: Store, activity_id: str, rule: str, reason: str) -> bool:
    """Put an activity in the queue for ``rule`` (pending); False when it is already there."""
    with store.engine.begin() as connection:
        present = connection.execute(
            select(moderation_queue.c.id).where(
                and_(moderation_queue.c.activity_id == activity_id, moderation_queue.c.rule == rule)
            )
        ).first()
        if present is not None:
            return False
        connection.execute(
            moderation_queue.insert().values(
                activity_id=activity_id, rule=rule, state="pending", reason=reason, created_at=_now()
            )
        )
    return True


@dataclass(frozen=True)
class QueueItem:
    id: int
    activity_id: str
    rule: str
    state: str
    reason: str
    created_at: datetime
    decided_by: str | None
    text: str | None
    author: str | None


def queue(store: Store, state: str | None = "pending", limit: int = 100) -> list[QueueItem]:
    query = (
        select(
            moderation_queue,
            activities.c.text_plain,
            func.coalesce(identities.c.display_name, identities.c.handle).label("author"),
        )
        .join(activities, activities.c.id == moderation_queue.c.activity_id)
        .outerjoin(identities, identities.c.id == activities.c.identity_id)
        .order_by(moderation_queue.c.created_at, moderation_queue.c.id)
        .limit(limit)
    )
    if state is not None:
        query = query.where(moderation_queue.c.state == state)
    with store.engine.connect() as connection:
        return [
            QueueItem(
                row.id,
                row.activity_id,
                row.rule,
                row.state,
                row.reason,
                row.created_at,
                row.decided_by,
                row.text_plain,
                row.author,
            )
            for row in connection.execute(query)
        ]


@dataclass(frozen=True)
class Decided:
    """A queue item after a person's decision."""

    item_id: int
    activity_id: str
    rule: str
    state: str
    was: str


def decide(store: Store, item_id: int, decision: str, moderator: str, reason: str) -> Decided:
    """A person's decision on a queue item (approve, remove, dismiss), logged in the audit log.

    Only the store changes here; carrying a ``remove`` out on the platform is the caller's
    (``parvis moderate decide`` redacts a Matrix message, see parvis.live.matrix.remove_on_platform).
    """
    if decision not in DECISIONS:
        raise ModerationError(f"unknown decision {decision!r}; expected one of: {', '.join(DECISIONS)}")
    with store.engine.begin() as connection:
        row = connection.execute(select(moderation_queue).where(moderation_queue.c.id == item_id)).first()
        if row is None:
            raise ModerationError(f"no queue item {item_id}")
        connection.execute(
            update(moderation_queue)
            .where(moderation_queue.c.id == item_id)
            .values(state=DECISIONS[decision], decided_at=_now(), decided_by=moderator)
        )
        connection.execute(
            audit_log.insert().values(
                at=_now(),
                actor=moderator,
                action=decision,
                activity_id=row.activity_id,
                rule=row.rule,
                reason=reason,
                details={"queue_item": item_id, "was": row.state},
            )
        )
    return Decided(item_id, row.activity_id, row.rule, DECISIONS[decision], row.state)


def target_of(store: Store, activity_id: str) -> tuple[str, str, Target] | None:
    """(source id, platform, target) of a stored activity, or None when it is not in the store."""
    query = _subject_query().add_columns(activities.c.source_id).where(activities.c.id == activity_id)
    with store.engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else (row.source_id, row.platform, _target(row))


def hidden_on_platform(store: Store, activity_id: str) -> bool:
    """Whether a ``hide`` of this activity succeeded already (by a rule or a person)."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(audit_log.c.details).where(audit_log.c.activity_id == activity_id, audit_log.c.action == "hide")
        ).scalars()
        return any(isinstance(details, dict) and not ({"error", "skipped"} & details.keys()) for details in rows)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    activity_id: str | None
    rule: str | None
    reason: str
    details: dict[str, Any]


def audit_entries(store: Store, activity_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
    query = select(audit_log).order_by(audit_log.c.id).limit(limit)
    if activity_id is not None:
        query = query.where(audit_log.c.activity_id == activity_id)
    with store.engine.connect() as connection:
        return [
            AuditEntry(row.id, row.at, row.actor, row.action, row.activity_id, row.rule, row.reason, row.details)
            for row in connection.execute(query)
        ]
