"""The response inbox: questions from every source, their first response, SLA, assignee and state.

An *item* is a question (see :func:`items`): a Stack Exchange question, the first message of a mail
thread on a help list, or a chat message or reply that the ``question`` enricher labelled
``question`` (``enrichments`` rows with enricher ``question`` and label ``question``).  Its state:

- ``answered``: someone other than the asker (another member: merged identities are one person;
  bots excluded) responded in the conversation (an answer, a comment, a reply, a message), or a
  Parvis user answered from the web (recorded in ``inbox_states`` as ``answered`` by that user,
  until the platform's reply arrives through the listener).  Derived: nobody closes it by hand.
- ``handled``: a person took it out of the open list without an answer (``inbox_states``).
- ``open``: everything else.  ``open`` recorded by hand reopens a handled item.

SLA: the first response is due ``target_hours`` business hours after the question (business days,
hours, time zone and holidays in :class:`BusinessHours`, stored in the ``settings`` table under
``inbox`` so every user of the store and the web server see the same rules).  An item is
``on_track`` (open, not due yet), ``breached`` (open, past due), ``met`` or ``missed`` (answered
before or after the due time); a handled item has no SLA status (``none``).

The team is the Parvis users linked to platform identities (``team_identities``); a response by
any identity of the member an identity belongs to counts for that user.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, or_, select

from parvis.store import Store
from parvis.store.schema import (
    activities,
    conversations,
    enrichments,
    identities,
    inbox_states,
    settings,
    sources,
    team_identities,
    users,
)

State = Literal["open", "answered", "handled"]
STATES: tuple[State, ...] = ("open", "answered", "handled")
# What a person may record by hand: ``answered`` comes from the platform or from answering in Parvis.
SETTABLE_STATES = ("open", "handled")
Sla = Literal["on_track", "breached", "met", "missed", "none"]
SLAS: tuple[Sla, ...] = ("on_track", "breached", "met", "missed", "none")

# The same vocabulary as parvis.metrics (docs/metrics.md): what opens a conversation, what responds.
STARTER_KINDS = ("question", "message", "reply")
RESPONSE_KINDS = ("answer", "comment", "reply", "message", "action")
CHAT_QUESTION_KINDS = ("message", "reply")
# Platforms where a thread's first message is a question (help mailing lists).
THREAD_START_IS_QUESTION = ("mbox",)
QUESTION_ENRICHER = "question"
QUESTION_LABEL = "question"
SETTINGS_KEY = "inbox"
ANSWER_MAX_LENGTH = 4000
SNIPPET_LENGTH = 300
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_IN_CHUNK = 500
# Spans longer than this are counted by whole weeks in the middle (see BusinessHours.seconds_between).
_EXACT_DAYS = 14


class InboxError(Exception):
    """An unknown activity, state, user or identity; a bad setting; an answer that cannot be posted."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- business hours -----------------------------------------------------------------------------------


def _minutes(text: str) -> int:
    try:
        hours, minutes = text.strip().split(":")
        value = int(hours) * 60 + int(minutes)
    except ValueError as problem:
        raise InboxError(f"{text!r} is not a time of day (HH:MM)") from problem
    if not 0 <= int(minutes) < 60 or not 0 <= value <= 24 * 60:
        raise InboxError(f"{text!r} is not a time of day (HH:MM, 00:00 to 24:00)")
    return value


def parse_days(text: str) -> tuple[int, ...]:
    """``mon-fri``, ``mon,wed,fri``, ``sun-thu`` → weekday numbers (Monday is 0)."""
    chosen: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise InboxError(f"unknown day in {text!r} (use {', '.join(DAY_NAMES)}, ranges like mon-fri)")
        start = DAY_NAMES.index(first)
        stop = DAY_NAMES.index(last) if last else start
        day = start
        while True:
            chosen.add(day)
            if day == stop:
                break
            day = (day + 1) % 7
    if not chosen:
        raise InboxError("at least one business day is needed")
    return tuple(sorted(chosen))


def format_days(days: Iterable[int]) -> str:
    return ",".join(DAY_NAMES[day] for day in sorted(days))


@dataclass(frozen=True)
class BusinessHours:
    """When the team works, and how soon a question should get its first response.

    ``start`` and ``end`` are minutes after local midnight (``end`` up to 1440), the same every
    business day; ``days`` are weekday numbers (Monday 0); ``holidays`` are local dates off.
    """

    timezone: str = "UTC"
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    start: int = 9 * 60
    end: int = 17 * 60
    target_hours: float = 4.0
    holidays: tuple[date, ...] = ()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as problem:
            raise InboxError(f"unknown time zone {self.timezone!r} (an IANA name, e.g. Europe/Paris)") from problem
        if not self.days or any(day not in range(7) for day in self.days):
            raise InboxError("business days are weekday numbers 0 (Monday) to 6, at least one")
        if not 0 <= self.start < self.end <= 24 * 60:
            raise InboxError("business hours must start before they end, within one day")
        if not 0 < self.target_hours <= 24 * 365:
            raise InboxError("the response target is a positive number of business hours")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def target(self) -> timedelta:
        return timedelta(hours=self.target_hours)

    @property
    def hours_text(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"

    def to_json(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "days": format_days(self.days),
            "hours": self.hours_text,
            "target_hours": self.target_hours,
            "holidays": [day.isoformat() for day in self.holidays],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> BusinessHours:
        default = cls()
        hours = str(value.get("hours") or default.hours_text)
        start, _, end = hours.partition("-")
        try:
            holidays = tuple(sorted(date.fromisoformat(str(day)) for day in value.get("holidays") or ()))
            target = float(value.get("target_hours", default.target_hours))
        except ValueError as problem:
            raise InboxError(f"bad inbox setting: {problem}") from problem
        return cls(
            timezone=str(value.get("timezone") or default.timezone),
            days=parse_days(str(value.get("days") or format_days(default.days))),
            start=_minutes(start),
            end=_minutes(end),
            target_hours=target,
            holidays=holidays,
        )

    # -- arithmetic (naive datetimes are UTC, as in the store) --

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The business hours of local ``day`` as naive UTC instants, or None on a day off."""
        if day.weekday() not in self.days or day in self.holidays:
            return None
        midnight = datetime.combine(day, time(0), tzinfo=self.zone)
        return _utc(midnight + timedelta(minutes=self.start)), _utc(midnight + timedelta(minutes=self.end))

    def local_date(self, instant: datetime) -> date:
        return instant.replace(tzinfo=UTC).astimezone(self.zone).date()

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Business seconds from ``start`` to ``end`` (0 when ``end`` is not later).

        Exact day by day (DST changes included) for the first and last two weeks of a span; whole
        weeks in between count their wall-clock business hours (a DST change that falls inside
        business hours, unusual for office hours, is off by its hour there).
        """
        if end <= start:
            return 0.0
        first, last = self.local_date(start), self.local_date(end)
        total = 0.0
        if (last - first).days <= 2 * _EXACT_DAYS:
            days: Iterable[date] = (first + timedelta(days=offset) for offset in range((last - first).days + 1))
            return self._exact(days, start, end)
        head_end = first + timedelta(days=_EXACT_DAYS)
        tail_start = last - timedelta(days=_EXACT_DAYS)
        total += self._exact((first + timedelta(days=n) for n in range(_EXACT_DAYS)), start, end)
        total += self._exact((tail_start + timedelta(days=n) for n in range(_EXACT_DAYS + 1)), start, end)
        middle_days = (tail_start - head_end).days
        weeks, rest = divmod(middle_days, 7)
        count = weeks * len(self.days) + sum(
            1 for n in range(rest) if (head_end + timedelta(days=n)).weekday() in self.days
        )
        count -= sum(1 for day in self.holidays if head_end <= day < tail_start and day.weekday() in self.days)
        return total + count * (self.end - self.start) * 60.0

    def _exact(self, days: Iterable[date], start: datetime, end: datetime) -> float:
        total = 0.0
        for day in days:
            found = self.window(day)
            if found is None:
                continue
            opens, closes = max(found[0], start), min(found[1], end)
            if closes > opens:
                total += (closes - opens).total_seconds()
        return total

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when ``duration`` of business time has passed since ``start``."""
        left = duration.total_seconds()
        day = self.local_date(start)
        for _ in range(366 * 20):
            found = self.window(day)
            if found is not None:
                opens = max(found[0], start)
                available = (found[1] - opens).total_seconds()
                if available > 0:
                    if left <= available:
                        return opens + timedelta(seconds=left)
                    left -= available
            day += timedelta(days=1)
        raise InboxError("no business hours in the next twenty years")  # holidays cover every business day

    def due(self, asked: datetime) -> datetime:
        return self.add(asked, self.target)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def load_config(store: Store) -> BusinessHours:
    """The store's business hours and target (defaults: Monday to Friday, 09:00-17:00 UTC, 4 hours)."""
    with store.engine.connect() as connection:
        value = connection.execute(select(settings.c.value).where(settings.c.key == SETTINGS_KEY)).scalar_one_or_none()
    return BusinessHours.from_json(value) if isinstance(value, dict) else BusinessHours()


def save_config(store: Store, config: BusinessHours, *, by: str) -> BusinessHours:
    values = {"value": config.to_json(), "updated_by": by, "updated_at": _now()}
    with store.engine.begin() as connection:
        changed = connection.execute(settings.update().where(settings.c.key == SETTINGS_KEY).values(**values))
        if changed.rowcount == 0:
            connection.execute(settings.insert().values(key=SETTINGS_KEY, **values))
    return config


def configure(
    store: Store,
    *,
    by: str,
    timezone: str | None = None,
    days: str | None = None,
    hours: str | None = None,
    target_hours: float | None = None,
    holidays: Sequence[str] | None = None,
) -> BusinessHours:
    """Change some settings, keep the others; validated before anything is saved."""
    current = load_config(store)
    changes: dict[str, Any] = {}
    if timezone is not None:
        changes["timezone"] = timezone
    if days is not None:
        changes["days"] = parse_days(days)
    if hours is not None:
        start, separator, end = hours.partition("-")
        if not separator:
            raise InboxError(f"{hours!r}: business hours are written 09:00-17:00")
        changes["start"], changes["end"] = _minutes(start), _minutes(end)
    if target_hours is not None:
        changes["target_hours"] = float(target_hours)
    if holidays is not None:
        try:
            changes["holidays"] = tuple(sorted({date.fromisoformat(day.strip()) for day in holidays if day.strip()}))
        except ValueError as problem:
            raise InboxError(f"holidays are dates like 2026-12-25: {problem}") from problem
    return save_config(store, replace(current, **changes), by=by)


# -- triage state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemState:
    activity_id: str
    state: str  # as recorded: open, handled or answered
    assignee: str | None
    updated_by: str | None
    updated_at: datetime | None


def _record(store: Store, activity_id: str, state: str, by: str, assignee: str | None, keep_assignee: bool) -> None:
    at = _now()
    with store.engine.begin() as connection:
        exists = connection.execute(select(activities.c.id).where(activities.c.id == activity_id)).first()
        if exists is None:
            raise InboxError(f"no activity {activity_id!r}")
        values: dict[str, Any] = {"state": state, "updated_by": by, "updated_at": at}
        if not keep_assignee:
            values["assignee"] = assignee or None
        updated = connection.execute(
            inbox_states.update().where(inbox_states.c.activity_id == activity_id).values(**values)
        )
        if updated.rowcount == 0:
            connection.execute(
                inbox_states.insert().values(activity_id=activity_id, **{"assignee": assignee or None, **values})
            )


def set_state(store: Store, activity_id: str, state: str, *, by: str, assignee: str | None = None) -> ItemState:
    """Record ``state`` (open or handled) and the assignee for an item; ``by`` is the user making the change."""
    if state not in SETTABLE_STATES:
        raise InboxError(f"unknown inbox state {state!r} (expected one of {', '.join(SETTABLE_STATES)})")
    _record(store, activity_id, state, by, assignee, keep_assignee=False)
    return states(store, [activity_id])[activity_id]


def record_answer(store: Store, activity_id: str, *, by: str) -> ItemState:
    """Record that ``by`` answered the item from Parvis (it is answered until the platform's reply arrives)."""
    _record(store, activity_id, "answered", by, None, keep_assignee=True)
    return states(store, [activity_id])[activity_id]


def states(store: Store, activity_ids: Iterable[str]) -> dict[str, ItemState]:
    """The recorded state of each of ``activity_ids`` that has one (the others are open)."""
    wanted = list(dict.fromkeys(activity_ids))
    found: dict[str, ItemState] = {}
    with store.engine.connect() as connection:
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            rows = connection.execute(select(inbox_states).where(inbox_states.c.activity_id.in_(chunk)))
            for row in rows:
                found[row.activity_id] = ItemState(
                    row.activity_id, row.state, row.assignee, row.updated_by, row.updated_at
                )
    return found


def handled_ids(store: Store) -> set[str]:
    """Ids of every item marked handled."""
    with store.engine.connect() as connection:
        return set(
            connection.execute(select(inbox_states.c.activity_id).where(inbox_states.c.state == "handled")).scalars()
        )


# -- team ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamLink:
    user: str
    identity_id: str
    member_id: str
    handle: str
    display_name: str | None


def team(store: Store) -> list[TeamLink]:
    query = (
        select(users.c.name, identities.c.id, identities.c.member_id, identities.c.handle, identities.c.display_name)
        .select_from(
            team_identities.join(users, users.c.id == team_identities.c.user_id).join(
                identities, identities.c.id == team_identities.c.identity_id
            )
        )
        .order_by(users.c.name, identities.c.id)
    )
    with store.engine.connect() as connection:
        return [TeamLink(row[0], row[1], row[2], row[3], row[4]) for row in connection.execute(query)]


def link(store: Store, user: str, identity_id: str, *, by: str) -> TeamLink:
    """Link a platform identity to Parvis user ``user`` (an identity belongs to one user at most)."""
    identity_id = identity_id.strip()
    with store.engine.begin() as connection:
        user_id = connection.execute(select(users.c.id).where(users.c.name == user.strip())).scalar_one_or_none()
        if user_id is None:
            raise InboxError(f"no user {user!r}")
        if connection.execute(select(identities.c.id).where(identities.c.id == identity_id)).first() is None:
            raise InboxError(f"no identity {identity_id!r}")
        connection.execute(delete(team_identities).where(team_identities.c.identity_id == identity_id))
        connection.execute(
            team_identities.insert().values(identity_id=identity_id, user_id=user_id, linked_by=by, linked_at=_now())
        )
    return next(found for found in team(store) if found.identity_id == identity_id)


def unlink(store: Store, identity_id: str) -> bool:
    with store.engine.begin() as connection:
        removed = connection.execute(
            delete(team_identities).where(team_identities.c.identity_id == identity_id.strip())
        )
    return bool(removed.rowcount)


# -- items -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    activity_id: str
    conversation_id: str | None
    source: str
    platform: str
    channel: str | None
    kind: str
    title: str | None
    snippet: str | None
    url: str | None
    author: str | None
    created_at: datetime
    state: State
    due_at: datetime
    sla: Sla
    first_response_at: datetime | None = None
    responder: str | None = None  # the display name or handle of the first responder on the platform
    answered_by: str | None = None  # the team user who answered (from Parvis, or through a linked identity)
    assignee: str | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None
    closed_at: datetime | None = None
    response_business_seconds: float | None = None
    age: timedelta = field(default=timedelta(0))

    @property
    def response_time(self) -> timedelta | None:
        return None if self.first_response_at is None else self.first_response_at - self.created_at


@dataclass(frozen=True)
class _Question:
    activity_id: str
    conversation_id: str | None
    member_id: str
    created_at: datetime
    source: str
    platform: str
    channel: str | None
    kind: str
    title: str | None
    text: str | None
    url: str | None
    author: str | None


_QUESTION_COLUMNS = (
    activities.c.id,
    activities.c.conversation_id,
    identities.c.member_id,
    activities.c.created_at,
    activities.c.source_id,
    sources.c.platform,
    activities.c.channel_id,
    activities.c.kind,
    activities.c.title,
    activities.c.text_plain,
    activities.c.url,
    identities.c.display_name,
    identities.c.handle,
)


def _scoped(query: Any, source: str | None, channel: str | None, until: datetime) -> Any:
    query = query.where(~identities.c.is_bot, activities.c.created_at <= until)
    if source is not None:
        query = query.where(activities.c.source_id == source)
    if channel is not None:
        query = query.where(activities.c.channel_id == channel)
    return query


def _questions(store: Store, source: str | None, channel: str | None, until: datetime) -> list[_Question]:
    joined = activities.join(identities, identities.c.id == activities.c.identity_id).join(
        sources, sources.c.id == activities.c.source_id
    )
    roots = _scoped(
        select(*_QUESTION_COLUMNS)
        .select_from(joined.join(conversations, conversations.c.root_activity_id == activities.c.id))
        .where(
            activities.c.kind.in_(STARTER_KINDS),
            or_(activities.c.kind == "question", sources.c.platform.in_(THREAD_START_IS_QUESTION)),
        ),
        source,
        channel,
        until,
    )
    labelled = select(enrichments.c.activity_id).where(
        enrichments.c.enricher == QUESTION_ENRICHER, enrichments.c.label == QUESTION_LABEL
    )
    chat = _scoped(
        select(*_QUESTION_COLUMNS)
        .select_from(joined)
        .where(
            activities.c.id.in_(labelled),
            activities.c.kind.in_(CHAT_QUESTION_KINDS),
            activities.c.conversation_id.is_not(None),
        ),
        source,
        channel,
        until,
    )
    found: dict[str, _Question] = {}
    with store.engine.connect() as connection:
        for query in (roots, chat):
            for row in connection.execute(query):
                text = row.text_plain
                found[row.id] = _Question(
                    row.id,
                    row.conversation_id,
                    row.member_id,
                    row.created_at,
                    row.source_id,
                    row.platform,
                    row.channel_id,
                    row.kind,
                    row.title,
                    text[:SNIPPET_LENGTH] if isinstance(text, str) else None,
                    row.url,
                    row.display_name or row.handle,
                )
    return sorted(found.values(), key=lambda question: (question.created_at, question.activity_id))


@dataclass(frozen=True)
class _Response:
    conversation_id: str
    activity_id: str
    member_id: str
    created_at: datetime
    name: str | None


def _responses(store: Store, conversation_ids: Sequence[str], until: datetime) -> dict[str, list[_Response]]:
    """Responses by people (bots excluded) in each conversation, oldest first."""
    by_conversation: dict[str, list[_Response]] = {}
    wanted = sorted(set(conversation_ids))
    with store.engine.connect() as connection:
        for start in range(0, len(wanted), _IN_CHUNK):
            query = (
                select(
                    activities.c.conversation_id,
                    activities.c.id,
                    identities.c.member_id,
                    activities.c.created_at,
                    identities.c.display_name,
                    identities.c.handle,
                )
                .join(identities, identities.c.id == activities.c.identity_id)
                .where(
                    activities.c.conversation_id.in_(wanted[start : start + _IN_CHUNK]),
                    activities.c.kind.in_(RESPONSE_KINDS),
                    ~identities.c.is_bot,
                    activities.c.created_at <= until,
                )
            )
            for row in connection.execute(query):
                by_conversation.setdefault(row.conversation_id, []).append(
                    _Response(
                        row.conversation_id, row.id, row.member_id, row.created_at, row.display_name or row.handle
                    )
                )
    for found in by_conversation.values():
        found.sort(key=lambda response: (response.created_at, response.activity_id))
    return by_conversation


def _team_by_member(store: Store) -> dict[str, str]:
    return {found.member_id: found.user for found in team(store)}


def items(
    store: Store,
    *,
    source: str | None = None,
    channel: str | None = None,
    state: str | None = None,
    as_of: datetime | None = None,
    config: BusinessHours | None = None,
) -> list[Item]:
    """Every question in scope (``state``: only those in that state), oldest first, as of ``as_of`` (UTC, default now).

    Activities after ``as_of`` are ignored, so an archive can be looked at as it was on a given day.
    """
    if state is not None and state not in STATES:
        raise InboxError(f"unknown inbox state {state!r} (expected one of {', '.join(STATES)})")
    now = as_of or _now()
    config = config or load_config(store)
    questions = _questions(store, source, channel, now)
    responses = _responses(store, [q.conversation_id for q in questions if q.conversation_id], now)
    recorded = states(store, [question.activity_id for question in questions])
    members = _team_by_member(store)
    found = []
    for question in questions:
        first = next(
            (
                response
                for response in responses.get(question.conversation_id or "", ())
                if response.member_id != question.member_id
                and response.created_at >= question.created_at
                and response.activity_id != question.activity_id
            ),
            None,
        )
        item = _item(question, first, recorded.get(question.activity_id), members, config, now)
        if state is None or item.state == state:
            found.append(item)
    return found


def _item(
    question: _Question,
    first: _Response | None,
    recorded: ItemState | None,
    members: dict[str, str],
    config: BusinessHours,
    now: datetime,
) -> Item:
    due = config.due(question.created_at)
    responded_at = first.created_at if first is not None else None
    answered_by = members.get(first.member_id) if first is not None else None
    item_state: State = "open"
    closed_at: datetime | None = None
    if recorded is not None and recorded.state == "answered" and recorded.updated_at is not None:
        # Answered from Parvis by a user: theirs, at the earlier of the recorded time and the reply the
        # listener stored (the community account's reply carries the homeserver's timestamp).
        item_state = "answered"
        answered_by = recorded.updated_by
        if responded_at is None or recorded.updated_at < responded_at:
            responded_at = recorded.updated_at
    elif first is not None:
        item_state = "answered"
    elif recorded is not None and recorded.state == "handled":
        item_state = "handled"
        closed_at = recorded.updated_at
    sla: Sla
    if item_state == "answered":
        assert responded_at is not None
        closed_at = responded_at
        sla = "met" if responded_at <= due else "missed"
    elif item_state == "handled":
        sla = "none"
    else:
        sla = "breached" if now > due else "on_track"
    return Item(
        activity_id=question.activity_id,
        conversation_id=question.conversation_id,
        source=question.source,
        platform=question.platform,
        channel=question.channel,
        kind=question.kind,
        title=question.title,
        snippet=question.text,
        url=question.url,
        author=question.author,
        created_at=question.created_at,
        state=item_state,
        due_at=due,
        sla=sla,
        first_response_at=responded_at,
        responder=first.name if first is not None else None,
        answered_by=answered_by if item_state == "answered" else None,
        assignee=recorded.assignee if recorded is not None else None,
        updated_by=recorded.updated_by if recorded is not None else None,
        updated_at=recorded.updated_at if recorded is not None else None,
        closed_at=closed_at,
        response_business_seconds=(
            config.seconds_between(question.created_at, responded_at) if responded_at is not None else None
        ),
        age=(closed_at or now) - question.created_at,
    )


@dataclass(frozen=True)
class TeamStat:
    """First responses given by one team member: how many, how fast (medians), how many within target."""

    user: str
    answered: int
    median_hours: float | None
    median_business_hours: float | None
    within_target: int
    assigned_open: int


def team_stats(found: Sequence[Item], store: Store | None = None) -> list[TeamStat]:
    """Per team user: the items they gave the first response to (from Parvis or a linked identity)."""
    names = {link.user for link in team(store)} if store is not None else set()
    by_user: dict[str, list[Item]] = {}
    for item in found:
        if item.state == "answered" and item.answered_by:
            by_user.setdefault(item.answered_by, []).append(item)
    assigned: dict[str, int] = {}
    for item in found:
        if item.state == "open" and item.assignee:
            assigned[item.assignee] = assigned.get(item.assignee, 0) + 1
    result = []
    for user in sorted(names | by_user.keys()):
        answered = by_user.get(user, [])
        hours = [item.response_time.total_seconds() / 3600 for item in answered if item.response_time is not None]
        business = [
            item.response_business_seconds / 3600 for item in answered if item.response_business_seconds is not None
        ]
        result.append(
            TeamStat(
                user,
                len(answered),
                statistics.median(hours) if hours else None,
                statistics.median(business) if business else None,
                sum(1 for item in answered if item.sla == "met"),
                assigned.get(user, 0),
            )
        )
    return result


def item_json(item: Item) -> dict[str, Any]:
    """An item as JSON-ready values (``parvis inbox list --json``)."""

    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat() + "Z"

    return {
        "activity_id": item.activity_id,
        "conversation_id": item.conversation_id,
        "source": item.source,
        "platform": item.platform,
        "channel": item.channel,
        "title": item.title,
        "snippet": item.snippet,
        "url": item.url,
        "author": item.author,
        "created_at": when(item.created_at),
        "state": item.state,
        "assignee": item.assignee,
        "due_at": when(item.due_at),
        "sla": item.sla,
        "first_response_at": when(item.first_response_at),
        "responder": item.responder,
        "answered_by": item.answered_by,
        "age_hours": round(item.age.total_seconds() / 3600, 3),
        "response_business_hours": (
            None if item.response_business_seconds is None else round(item.response_business_seconds / 3600, 3)
        ),
    }


# -- answering on the platform ---------------------------------------------------------------------


def answer(store: Store, activity_id: str, text: str, *, by: str) -> str:
    """Post ``text`` as a threaded reply to the question on its Matrix room, as the community account.

    The account's credentials come from the environment or the secrets file (parvis.live.secrets),
    never from the store.  The item is recorded as answered by ``by`` at once; the reply itself
    closes it on the platform side when the listener stores it.  Returns the reply's event id.
    """
    from parvis.live.matrix import MatrixActions, MatrixError, account_for, authenticate, new_client
    from parvis.live.secrets import MatrixSecret, SecretsError, matrix_secret
    from parvis.workflows.moderation import target_of

    text = text.strip()
    if not text:
        raise InboxError("the answer is empty")
    if len(text) > ANSWER_MAX_LENGTH:
        raise InboxError(f"the answer is longer than {ANSWER_MAX_LENGTH} characters")
    found = target_of(store, activity_id)
    if found is None:
        raise InboxError(f"no activity {activity_id!r}")
    source_id, platform, target = found
    account = account_for(store, source_id) if platform == "matrix" else None
    if account is None or target.channel_native_id is None:
        raise InboxError(f"{source_id} is not a connected Matrix account: answer on the platform itself")
    try:
        secret = matrix_secret(account.user_id)
    except SecretsError as problem:
        raise InboxError(str(problem)) from problem

    async def send() -> str:
        token = secret
        if not secret.access_token:
            access, device = await authenticate(account, secret)
            token = MatrixSecret(access_token=access, device_id=device)
        client = new_client(account, token)
        try:
            assert target.channel_native_id is not None
            return await MatrixActions(client).reply(
                target.channel_native_id, target.native_id, text, thread_root=target.thread_root
            )
        finally:
            await client.close()

    try:
        event_id = asyncio.run(send())
    except MatrixError as problem:
        raise InboxError(f"the homeserver refused the answer: {problem}") from problem
    except OSError as problem:
        raise InboxError(f"cannot reach {account.homeserver}: {problem.__class__.__name__}") from problem
    record_answer(store, activity_id, by=by)
    return event_id


def answerable_sources(store: Store) -> set[str]:
    """Sources whose questions Parvis can answer itself: connected Matrix accounts."""
    from parvis.live.matrix import accounts

    return {account.source_id for account in accounts(store)}
