"""Matrix rooms: normalise client-server API events into Parvis records (pure: no network, no database).

Native ids are Matrix's own, whose sigils already keep record types apart: a room ``!abc:server``
is a channel, a user ``@alice:server`` an identity, an event ``$xyz`` an activity.

What each event becomes (see docs/live.md):

- ``m.room.message``: a ``message`` (``action`` for ``m.emote``, ``notice`` for ``m.notice``);
  a ``reply`` when it answers another event (``m.relates_to`` / ``m.in_reply_to``: the parent) or
  belongs to a thread (``rel_type: m.thread``: the conversation is the thread root's).
- an edit (``rel_type: m.replace``): an ``edit`` activity parented to the edited message, and the
  edited message again, with the edit's text (``m.new_content``), ``edited_at`` the edit's time,
  ``extras["edit"]`` the edit's event id, and still the original event as its raw bytes.  The edited
  message comes from the same batch or from ``originals`` (what the store holds).  Only its author can
  edit a message, in its room (Matrix's own rules); an edit older than the text already applied
  changes nothing.  An edit that cannot apply (unknown message, another sender) keeps its text itself.
- ``m.reaction``: a ``reaction`` to its parent (the key in ``extras``), outside conversations.
- ``m.room.member``: ``join``; ``part`` when a member leaves; ``moderation`` (``kick``/``ban``/``unban``
  in ``extras["action"]``) when someone else removes them; display name changes only update the identity.
- ``m.room.redaction``: ``moderation`` with ``extras["action"] == "redact"``, parented to the redacted event.

Events that cannot be read (missing fields, wrong types) are quarantined with their raw bytes.
Room events are hostile input: every field is type-checked before use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from parvis.records import Activity, ActivityKind, Channel, Cursor, Identity, ProgressFn, Quarantined, Record

PLATFORM = "matrix"
REACTION = "reaction"

MESSAGE_KINDS = {"m.emote": ActivityKind.ACTION, "m.notice": ActivityKind.NOTICE}
# The quoted fallback that clients put before a reply's text ("> <@alice:x> quoted\n> more\n\nreply").
_REPLY_FALLBACK = re.compile(r"\A(?:>[^\n]*\n)+\n?")
_HTML_REPLY_FALLBACK = re.compile(r"<mx-reply>.*?</mx-reply>", re.S)


class EventError(ValueError):
    """An event that cannot be normalised."""


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """What the client knows of a room: its id, name, alias and members' display names."""

    room_id: str
    name: str | None = None
    alias: str | None = None
    topic: str | None = None
    display_names: Mapping[str, str] = field(default_factory=dict)


def room_channel(room: RoomInfo, homeserver: str | None = None) -> Channel:
    extras: dict[str, Any] = {}
    if room.alias:
        extras["alias"] = room.alias
    if room.topic:
        extras["topic"] = room.topic
    return Channel(
        native_id=room.room_id,
        name=room.name or room.alias or room.room_id,
        kind="room",
        url=f"https://matrix.to/#/{room.alias or room.room_id}",
        extras=extras,
    )


def _text(value: object, name: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise EventError(f"{name} is {type(value).__name__}, expected a string")
    return value


def _matrix_id(value: object, name: str, sigil: str) -> str:
    text = _text(value, name)
    assert text is not None
    if not text.startswith(sigil) or len(text) < 2 or len(text) > 255:
        raise EventError(f"{name} {text[:80]!r} is not a Matrix id starting with {sigil!r}")
    return text


def _timestamp(event: Mapping[str, Any]) -> datetime:
    value = event.get("origin_server_ts")
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError("origin_server_ts is missing or not an integer")
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError) as problem:
        raise EventError(f"origin_server_ts {value} is out of range") from problem


def _content(event: Mapping[str, Any]) -> Mapping[str, Any]:
    content = event.get("content", {})
    if not isinstance(content, Mapping):
        raise EventError("content is not an object")
    return content


def _relation(content: Mapping[str, Any]) -> Mapping[str, Any]:
    relation = content.get("m.relates_to")
    return relation if isinstance(relation, Mapping) else {}


def _reply_target(relation: Mapping[str, Any]) -> str | None:
    in_reply_to = relation.get("m.in_reply_to")
    if isinstance(in_reply_to, Mapping):
        target = in_reply_to.get("event_id")
        if isinstance(target, str) and target.startswith("$"):
            return target
    return None


def strip_reply_fallback(body: str) -> str:
    """A reply's own text, without the quoted original that clients put before it."""
    return _REPLY_FALLBACK.sub("", body, count=1) if body.startswith("> ") else body


def raw_bytes(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message an edit may apply to: its original event, its room, and when its text was last edited."""

    event: Mapping[str, Any]
    room_id: str
    edited_at: datetime | None = None


def replaced_event(event: Mapping[str, Any]) -> str | None:
    """The event id an ``m.replace`` edit replaces (None for any other event)."""
    if not isinstance(event, Mapping) or event.get("type") != "m.room.message":
        return None
    content = event.get("content")
    relation = _relation(content) if isinstance(content, Mapping) else {}
    target = relation.get("event_id")
    return target if relation.get("rel_type") == "m.replace" and isinstance(target, str) else None


def _new_content(edit: Mapping[str, Any]) -> Mapping[str, Any] | None:
    new_content = _content(edit).get("m.new_content")
    if isinstance(new_content, Mapping) and isinstance(new_content.get("body"), str):
        return new_content
    return None


def _editable(original: Mapping[str, Any]) -> bool:
    unsigned = original.get("unsigned")
    redacted = isinstance(unsigned, Mapping) and "redacted_because" in unsigned
    return original.get("type") == "m.room.message" and not redacted and replaced_event(original) is None


class MatrixNormaliser:
    """Turns events of one room into records; ``homeserver`` is only used for display URLs."""

    def __init__(self, room: RoomInfo) -> None:
        self.room = room

    def identity(self, user_id: str, display_name: str | None = None) -> Identity:
        localpart = user_id[1:].split(":", 1)[0]
        return Identity(
            native_id=user_id,
            handle=localpart or user_id,
            display_name=display_name or self.room.display_names.get(user_id),
            authoritative=False,
            extras={"server": user_id.split(":", 1)[1] if ":" in user_id else ""},
        )

    def records(self, event: Mapping[str, Any], *, applied_edit: bool = False) -> Iterator[Record]:
        """The records of one event (none for event types Parvis does not keep).

        ``applied_edit``: the event is an edit whose text was applied to the edited message, which
        holds it from now on; the ``edit`` activity then has no text of its own.
        """
        try:
            records = self._records(event)
            if not applied_edit:
                yield from records
                return
            for record in records:
                yield replace(record, text_raw=None, text_plain=None) if isinstance(record, Activity) else record
        except EventError as problem:
            event_id = event.get("event_id")
            position = event_id if isinstance(event_id, str) else "?"
            yield Quarantined(self.room.room_id, str(position)[:255], str(problem), raw_bytes(event))

    def _records(self, event: Mapping[str, Any]) -> Iterator[Record]:
        if not isinstance(event, Mapping):
            raise EventError("event is not an object")
        event_type = _text(event.get("type"), "type")
        if event_type not in ("m.room.message", "m.reaction", "m.room.member", "m.room.redaction"):
            return
        event_id = _matrix_id(event.get("event_id"), "event_id", "$")
        sender = _matrix_id(event.get("sender"), "sender", "@")
        created_at = _timestamp(event)
        content = _content(event)
        base: dict[str, Any] = {
            "native_id": event_id,
            "created_at": created_at,
            "author": sender,
            "channel": self.room.room_id,
            "url": f"https://matrix.to/#/{self.room.room_id}/{event_id}",
            "raw": raw_bytes(event),
        }
        if event_type == "m.room.member":
            yield from self._member(event, content, base)
            return
        yield self.identity(sender)
        if event_type == "m.room.message":
            yield self._message(event, content, base)
        elif event_type == "m.reaction":
            relation = _relation(content)
            target = relation.get("event_id")
            if relation.get("rel_type") != "m.annotation" or not isinstance(target, str):
                raise EventError("m.reaction without an m.annotation relation")
            key = _text(relation.get("key"), "key", required=False)
            yield Activity(kind=REACTION, parent=target, in_conversation=False, extras={"key": key}, **base)
        else:
            redacts = content.get("redacts", event.get("redacts"))
            target = _matrix_id(redacts, "redacts", "$")
            reason = _text(content.get("reason"), "reason", required=False)
            yield Activity(
                kind=ActivityKind.MODERATION,
                parent=target,
                in_conversation=False,
                text_raw=reason,
                text_plain=reason,
                extras={"action": "redact", "reason": reason},
                **base,
            )

    def edited(self, original: Mapping[str, Any], edit: Mapping[str, Any], new_content: Mapping[str, Any]) -> Activity:
        """``original`` as ``edit`` leaves it: the new text, the original's relations and raw bytes."""
        original_content = _content(original)
        relation = original_content.get("m.relates_to")
        content = {"msgtype": original_content.get("msgtype")}
        content.update((key, value) for key, value in new_content.items() if key != "m.relates_to")
        if relation is not None:
            content["m.relates_to"] = relation
        message = next(
            record for record in self._records({**original, "content": content}) if isinstance(record, Activity)
        )
        edit_id = _matrix_id(edit.get("event_id"), "event_id", "$")
        return replace(
            message,
            edited_at=_timestamp(edit),
            extras={**message.extras, "edit": edit_id},
            raw=raw_bytes(original),
        )

    def _message(self, event: Mapping[str, Any], content: Mapping[str, Any], base: dict[str, Any]) -> Activity:
        unsigned = event.get("unsigned")
        redacted = isinstance(unsigned, Mapping) and "redacted_because" in unsigned
        relation = _relation(content)
        rel_type = relation.get("rel_type")
        msgtype = _text(content.get("msgtype"), "msgtype", required=not redacted)
        body = _text(content.get("body"), "body", required=not redacted)
        extras: dict[str, Any] = {"msgtype": msgtype}
        if redacted:
            extras["redacted"] = True
        kind = MESSAGE_KINDS.get(msgtype or "", ActivityKind.MESSAGE)
        parent = _reply_target(relation)
        conversation = None
        if rel_type == "m.replace":
            target = relation.get("event_id")
            if not isinstance(target, str):
                raise EventError("m.replace without an event_id")
            new_content = content.get("m.new_content")
            if isinstance(new_content, Mapping) and isinstance(new_content.get("body"), str):
                body = new_content["body"]
            return Activity(
                kind=ActivityKind.EDIT,
                parent=target,
                in_conversation=False,
                text_raw=body,
                text_plain=body,
                extras=extras,
                **base,
            )
        if rel_type == "m.thread":
            root = relation.get("event_id")
            if not isinstance(root, str) or not root.startswith("$"):
                raise EventError("m.thread without a root event_id")
            extras["thread_root"] = root
            conversation = root
            if parent is None or relation.get("is_falling_back") is True:
                parent = root
        if parent is not None and kind == ActivityKind.MESSAGE:
            kind = ActivityKind.REPLY
        text_format = "text"
        text_raw = body
        if content.get("format") == "org.matrix.custom.html" and isinstance(content.get("formatted_body"), str):
            text_format = "html"
            text_raw = _HTML_REPLY_FALLBACK.sub("", content["formatted_body"])
        text_plain = strip_reply_fallback(body) if body is not None and parent is not None else body
        return Activity(
            kind=kind,
            parent=parent,
            conversation=conversation,
            text_raw=text_raw,
            text_plain=text_plain,
            text_format=text_format,
            extras=extras,
            **base,
        )

    def _member(self, event: Mapping[str, Any], content: Mapping[str, Any], base: dict[str, Any]) -> Iterator[Record]:
        target = _matrix_id(event.get("state_key"), "state_key", "@")
        membership = _text(content.get("membership"), "membership")
        display_name = _text(content.get("displayname"), "displayname", required=False)
        unsigned = event.get("unsigned")
        previous: Mapping[str, Any] = {}
        if isinstance(unsigned, Mapping) and isinstance(unsigned.get("prev_content"), Mapping):
            previous = unsigned["prev_content"]
        was = previous.get("membership")
        sender = base["author"]
        yield self.identity(target, display_name)
        if sender != target:
            yield self.identity(sender)
        reason = _text(content.get("reason"), "reason", required=False)
        if membership == "join":
            if was == "join":
                return  # a display name or avatar change
            yield Activity(kind=ActivityKind.JOIN, in_conversation=False, **{**base, "author": target})
        elif membership == "leave" and sender == target:
            if was in ("join", "invite", "knock"):
                yield Activity(kind=ActivityKind.PART, in_conversation=False, extras={"was": was}, **base)
        elif membership in ("leave", "ban"):
            action = "ban" if membership == "ban" else ("unban" if was == "ban" else "kick")
            if action == "kick" and was not in ("join", "invite", "knock"):
                return
            yield Activity(
                kind=ActivityKind.MODERATION,
                in_conversation=False,
                text_raw=reason,
                text_plain=reason,
                extras={"action": action, "target": target, "reason": reason},
                **base,
            )


class _Edits:
    """The messages edits may apply to, as a batch goes by: the store's, then the batch's own."""

    def __init__(self, originals: Mapping[str, StoredMessage]) -> None:
        self.messages = dict(originals)

    def saw(self, room_id: str, event: Mapping[str, Any]) -> None:
        event_id = event.get("event_id") if isinstance(event, Mapping) else None
        if isinstance(event_id, str) and _editable(event):
            self.messages[event_id] = StoredMessage(event, room_id)

    def target(self, room_id: str, edit: Mapping[str, Any]) -> tuple[StoredMessage, Mapping[str, Any]] | None:
        """The message ``edit`` replaces and its new content, when ``edit`` may replace it."""
        target = replaced_event(edit)
        found = self.messages.get(target) if target is not None else None
        new_content = _new_content(edit) if isinstance(edit.get("content"), Mapping) else None
        if found is None or new_content is None or found.room_id != room_id:
            return None
        if found.event.get("sender") != edit.get("sender"):
            return None
        return found, new_content


def normalise(
    rooms: Sequence[RoomInfo],
    events: Iterable[tuple[str, Mapping[str, Any]]],
    originals: Mapping[str, StoredMessage] | None = None,
    edited: list[str] | None = None,
) -> Iterator[Record]:
    """Channels for ``rooms``, then the records of ``events`` (room id, event), in order.

    ``originals``: stored messages the batch's edits may apply to; ``edited`` receives the event ids
    of the messages whose text an edit changed.
    """
    normalisers = {room.room_id: MatrixNormaliser(room) for room in rooms}
    edits = _Edits(originals or {})
    for room in rooms:
        yield room_channel(room)
    for room_id, event in events:
        normaliser = normalisers.get(room_id)
        if normaliser is None:
            normaliser = normalisers[room_id] = MatrixNormaliser(RoomInfo(room_id))
            yield room_channel(normaliser.room)
        applying = edits.target(room_id, event) if replaced_event(event) is not None else None
        records = list(normaliser.records(event, applied_edit=applying is not None))
        yield from records
        if applying is None or any(isinstance(record, Quarantined) for record in records):
            edits.saw(room_id, event)
            continue
        original, new_content = applying
        try:
            message = normaliser.edited(original.event, event, new_content)
        except EventError as problem:
            yield Quarantined(room_id, str(event.get("event_id"))[:255], f"edit: {problem}", raw_bytes(event))
            continue
        assert message.edited_at is not None
        if original.edited_at is not None and message.edited_at < original.edited_at:
            continue  # a later edit's text is already there
        yield message
        edits.messages[message.native_id] = StoredMessage(original.event, room_id, message.edited_at)
        if edited is not None:
            edited.append(message.native_id)


class MatrixBatch:
    """An in-memory connector over a batch of events already fetched (one sync, one page of history)."""

    platform = PLATFORM

    def __init__(
        self,
        default_source: str,
        rooms: Sequence[RoomInfo],
        events: Sequence[tuple[str, Mapping[str, Any]]],
        originals: Mapping[str, StoredMessage] | None = None,
    ) -> None:
        self.default_source = default_source
        self.rooms = list(rooms)
        self.events = list(events)
        self.originals = dict(originals or {})
        # Event ids of the messages an edit of the batch changed, filled as the records are read.
        self.edited: list[str] = []

    def total_bytes(self) -> int:
        return 0

    def records(self, resume: Mapping[str, Cursor], progress: ProgressFn | None = None) -> Iterator[Record]:
        return normalise(self.rooms, self.events, self.originals, self.edited)
