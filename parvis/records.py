"""Normalised records: what connectors emit and the ingest path writes.

Connectors are pure: they read raw platform data and yield these records in a
deterministic order.  All references between records use *native ids* (the
platform's own identifiers, as strings); the ingest path turns them into
stable store ids by prefixing the source id.  See docs/model.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeAlias

JSONDict: TypeAlias = dict[str, Any]

THREAD_KEY_WINDOW = timedelta(days=60)


class ActivityKind:
    """The activity kinds Parvis knows.  Connectors may use others; these are documented."""

    QUESTION = "question"
    ANSWER = "answer"
    REPLY = "reply"
    COMMENT = "comment"
    MESSAGE = "message"
    POST = "post"
    VOTE = "vote"
    ACCEPT = "accept"
    BADGE = "badge"
    EDIT = "edit"
    JOIN = "join"
    PART = "part"
    ACTION = "action"
    NOTICE = "notice"
    NICK = "nick"
    MODERATION = "moderation"
    WIKI = "wiki"


@dataclass(frozen=True, slots=True)
class Channel:
    """A space inside a source: a tag, a list, a room."""

    native_id: str
    name: str
    kind: str = "channel"
    url: str | None = None
    extras: JSONDict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Identity:
    """An account of a person on one source.

    ``authoritative`` records come from the platform's own member list
    (e.g. Stack Exchange Users.xml) and replace what is stored.  Non-authoritative
    records are observations (a mail sender, an IRC nick): they only fill fields
    that are still empty, so the first non-empty value seen wins.
    """

    native_id: str
    handle: str
    display_name: str | None = None
    email: str | None = None
    created_at: datetime | None = None
    is_bot: bool = False
    extras: JSONDict = field(default_factory=dict)
    authoritative: bool = True
    raw: bytes | None = None


@dataclass(frozen=True, slots=True)
class Activity:
    """Something a member did: a question, an answer, a message, a vote...

    Conversation resolution, done by the ingest path: the parent's conversation
    if the parent is stored; otherwise ``conversation`` when the connector names
    one (or, when that name is a stored activity's id, that activity's
    conversation); otherwise a conversation named after the missing parent;
    otherwise a conversation already named after this activity (replies to it
    arrived first); otherwise,
    when ``reply_by_key`` is set, the latest conversation with the same
    ``thread_key`` started within ``THREAD_KEY_WINDOW`` before this activity;
    otherwise a new conversation rooted at this activity, registered under its
    ``thread_key`` so later replies by key can find it.

    Activities that belong to no conversation (a badge, a join) set
    ``in_conversation=False``.
    """

    native_id: str
    kind: str
    created_at: datetime
    author: str | None = None
    channel: str | None = None
    conversation: str | None = None
    parent: str | None = None
    title: str | None = None
    text_raw: str | None = None
    text_plain: str | None = None
    text_format: str = "text"
    edited_at: datetime | None = None
    url: str | None = None
    thread_key: str | None = None
    reply_by_key: bool = False
    in_conversation: bool = True
    extras: JSONDict = field(default_factory=dict)
    raw: bytes | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A typed relation between two activities (annotated reply, duplicate, related)."""

    from_activity: str
    to_activity: str
    kind: str


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A record that could not be read.  Nothing is dropped: the raw bytes are kept."""

    stream: str
    position: str
    reason: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Everything in ``stream`` before byte ``offset`` has been emitted.

    ``digest`` is the hex SHA-1 of those bytes, so a resumed or incremental
    import can check the file still starts with what was imported; ``line`` is
    the number of lines those bytes hold.
    """

    stream: str
    offset: int
    digest: str
    line: int


ProgressFn: TypeAlias = Callable[[int], None]
"""Called with the number of bytes just read, for progress bars."""

Record: TypeAlias = Channel | Identity | Activity | Link | Quarantined | Checkpoint


@dataclass(frozen=True, slots=True)
class Cursor:
    offset: int
    digest: str
    line: int = 0


class Connector(Protocol):
    """A platform reader.

    ``platform`` names it (``stackexchange``, ``mbox``, ``irc``); ``default_source``
    is the source name used when the user gives none (e.g. the dump folder's name).
    """

    platform: str
    default_source: str

    def total_bytes(self) -> int:
        """Bytes the connector will read, for progress bars (0 when unknown)."""
        ...

    def records(self, resume: Mapping[str, Cursor], progress: ProgressFn | None = None) -> Iterator[Record]:
        """Yield records in a deterministic order.

        ``resume`` maps stream names to the cursor stored by a previous import;
        the connector may skip the part of a stream that the cursor covers when
        the stream still starts with the same bytes.
        """
        ...
