"""The pure Matrix normaliser: event types, relations, hostile input."""

from __future__ import annotations

from typing import Any

from parvis.connectors.matrix import RoomInfo, StoredMessage, normalise
from parvis.records import Activity, Channel, Identity, Quarantined

ROOM = "!room:example.org"


def event(event_id: str, event_type: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": event_type,
        "event_id": event_id,
        "sender": "@alice:example.org",
        "origin_server_ts": 1_700_000_000_000,
        "content": content,
        **extra,
    }


def records(*events: dict[str, Any]) -> list[Any]:
    return list(
        normalise(
            [RoomInfo(ROOM, "Room", display_names={"@alice:example.org": "Alice"})], [(ROOM, item) for item in events]
        )
    )


def activities(*events: dict[str, Any]) -> dict[str, Activity]:
    return {r.native_id: r for r in records(*events) if isinstance(r, Activity)}


def test_messages_replies_threads_edits_reactions() -> None:
    found = activities(
        event("$1", "m.room.message", {"msgtype": "m.text", "body": "hi"}),
        event(
            "$2",
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "> <@a:x> hi\n> more\n\nhello",
                "m.relates_to": {"m.in_reply_to": {"event_id": "$1"}},
            },
        ),
        event(
            "$3",
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "in thread",
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": "$1",
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": "$2"},
                },
            },
        ),
        event("$4", "m.room.message", {"msgtype": "m.emote", "body": "waves"}),
        event(
            "$5",
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "* hi!",
                "m.new_content": {"body": "hi!"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$1"},
            },
        ),
        event("$6", "m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$1", "key": "👍"}}),
        event("$7", "m.room.redaction", {"redacts": "$4", "reason": "spam"}),
        event("$8", "m.room.topic", {"topic": "ignored"}),
    )
    assert (found["$1"].kind, found["$1"].text_plain, found["$1"].parent) == ("message", "hi!", None)
    assert found["$1"].edited_at is not None and found["$1"].extras == {"msgtype": "m.text", "edit": "$5"}
    assert b'"body":"hi"' in (found["$1"].raw or b"")  # the original event stays the raw payload
    assert (found["$2"].kind, found["$2"].text_plain, found["$2"].parent) == ("reply", "hello", "$1")
    assert (found["$3"].kind, found["$3"].parent, found["$3"].conversation) == ("reply", "$1", "$1")
    assert found["$4"].kind == "action"
    # The edit is applied to the message it replaces; the edit itself keeps no text.
    assert (found["$5"].kind, found["$5"].text_plain, found["$5"].parent) == ("edit", None, "$1")
    assert (found["$6"].kind, found["$6"].parent, found["$6"].extras) == ("reaction", "$1", {"key": "👍"})
    assert (found["$7"].kind, found["$7"].parent, found["$7"].extras["action"]) == ("moderation", "$4", "redact")
    assert "$8" not in found
    assert found["$1"].created_at.isoformat() == "2023-11-14T22:13:20+00:00"


def edit(event_id: str, target: str, body: str, sender: str = "@alice:example.org", ts: int = 0) -> dict[str, Any]:
    content = {
        "msgtype": "m.text",
        "body": f"* {body}",
        "m.new_content": {"msgtype": "m.text", "body": body},
        "m.relates_to": {"rel_type": "m.replace", "event_id": target},
    }
    return event(event_id, "m.room.message", content, sender=sender, origin_server_ts=1_700_000_000_000 + ts)


def test_edits_apply_to_stored_messages_of_their_author_in_order() -> None:
    reply = event(
        "$r",
        "m.room.message",
        {"msgtype": "m.text", "body": "> <@b:x> q\n\nok", "m.relates_to": {"m.in_reply_to": {"event_id": "$q"}}},
    )
    stored = {
        "$r": StoredMessage(reply, ROOM),
        "$other-room": StoredMessage(
            event("$other-room", "m.room.message", {"msgtype": "m.text", "body": "x"}), "!elsewhere:x"
        ),
    }
    edited: list[str] = []
    produced = list(
        normalise(
            [RoomInfo(ROOM)],
            [
                (ROOM, edit("$e1", "$r", "ok, done", ts=1000)),
                (ROOM, edit("$e2", "$r", "mallory was here", sender="@mallory:x", ts=2000)),
                (ROOM, edit("$e3", "$other-room", "moved")),
                (ROOM, edit("$e4", "$r", "ok, done twice", ts=3000)),
                (ROOM, edit("$e5", "$r", "an older edit arriving late", ts=500)),
                (ROOM, edit("$e6", "$unknown", "of a message never seen")),
                (ROOM, {**edit("$e7", "$r", "no time"), "origin_server_ts": "soon"}),
            ],
            stored,
            edited,
        )
    )
    out = [r for r in produced if isinstance(r, Activity)]
    # An edit that cannot be read is quarantined once, and applies nothing.
    assert [(q.position, q.reason) for q in produced if isinstance(q, Quarantined)] == [
        ("$e7", "origin_server_ts is missing or not an integer")
    ]
    versions = [r for r in out if r.native_id == "$r"]
    # Each applicable edit yields the message again; the last one written wins, the reply relation stays.
    assert [(r.text_plain, r.kind, r.parent, r.extras["edit"]) for r in versions] == [
        ("ok, done", "reply", "$q", "$e1"),
        ("ok, done twice", "reply", "$q", "$e4"),
    ]
    assert versions[-1].edited_at is not None and versions[-1].edited_at.timestamp() == 1_700_000_003
    assert edited == ["$r", "$r"]
    edits = {r.native_id: r for r in out if r.kind == "edit"}
    # An edit older than the applied text changes nothing; those that cannot apply (another sender,
    # another room, a message never seen) keep their text, which nobody else holds.
    assert {key: value.text_plain for key, value in edits.items()} == {
        "$e1": None,
        "$e2": "mallory was here",
        "$e3": "moved",
        "$e4": None,
        "$e5": None,
        "$e6": "of a message never seen",
    }


def test_membership() -> None:
    def member(event_id: str, target: str, membership: str, was: str | None, sender: str = "") -> dict[str, Any]:
        unsigned = {"prev_content": {"membership": was}} if was else {}
        return event(
            event_id,
            "m.room.member",
            {"membership": membership, "displayname": "Bob"},
            state_key=target,
            sender=sender or target,
            unsigned=unsigned,
        )

    found = activities(
        member("$j", "@bob:x", "join", None),
        member("$n", "@bob:x", "join", "join"),  # a name change
        member("$l", "@bob:x", "leave", "join"),
        member("$k", "@carl:x", "leave", "join", sender="@mod:x"),
        member("$b", "@carl:x", "ban", "leave", sender="@mod:x"),
    )
    assert {key: (a.kind, a.author, a.extras.get("action")) for key, a in found.items()} == {
        "$j": ("join", "@bob:x", None),
        "$l": ("part", "@bob:x", None),
        "$k": ("moderation", "@mod:x", "kick"),
        "$b": ("moderation", "@mod:x", "ban"),
    }


def test_hostile_events_are_quarantined_with_their_bytes() -> None:
    out = records(
        event("$1", "m.room.message", {"msgtype": "m.text", "body": 42}),
        event("not-an-id", "m.room.message", {"msgtype": "m.text", "body": "x"}),
        {"type": "m.room.message", "event_id": "$3", "sender": "@a:x", "content": {"body": "no time"}},
        event("$4", "m.room.message", {"msgtype": "m.text", "body": "fine"}),
    )
    assert isinstance(out[0], Channel) and out[0].name == "Room"
    bad = [r for r in out if isinstance(r, Quarantined)]
    assert [(q.position, q.reason) for q in bad] == [
        ("$1", "body is int, expected a string"),
        ("not-an-id", "event_id 'not-an-id' is not a Matrix id starting with '$'"),
        ("$3", "origin_server_ts is missing or not an integer"),
    ]
    assert b'"body":42' in bad[0].raw
    assert [r.native_id for r in out if isinstance(r, Activity)] == ["$4"]
    alice = next(r for r in out if isinstance(r, Identity))
    assert (alice.native_id, alice.handle, alice.display_name) == ("@alice:example.org", "alice", "Alice")
