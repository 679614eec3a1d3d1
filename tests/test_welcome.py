"""Welcoming newcomers (real Synapse, tests/synapse.py) and thanks suggestions (real Stack Exchange dump)."""

from __future__ import annotations

import json
import signal
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from parvis.connectors.matrix import MatrixBatch, RoomInfo
from parvis.ingest import ingest
from parvis.store import open_store
from parvis.store.schema import enrichments
from parvis.workflows.welcome import WelcomeError, load_welcome, parse_welcome, thanks_suggestions, welcomes_due
from tests.cli_run import parvis
from tests.synapse import Member, Parvis, Synapse, wait_for

pytest_plugins = ["tests.synapse"]  # the session's Synapse (fixture ``synapse``)

WELCOME = """\
default_language: en
messages:
  en: "Welcome {author}! Say hello in {channel} and read the guide."
  fr: "Bienvenue {author} ! Présentez-vous dans {channel}."
"""


def test_first_message_is_welcomed_once_even_after_restart(synapse: Synapse, tmp_path: Path) -> None:
    bot_account, hana_account, ivan_account = (synapse.register(name) for name in ("greeter", "hana", "ivan"))
    bot, hana, ivan = (Member(synapse, account) for account in (bot_account, hana_account, ivan_account))
    parvis_ = Parvis(tmp_path, bot_account.access_token)
    (tmp_path / "welcome.yaml").write_text(WELCOME)
    source = "w"
    bot_identity = f"{source}:{bot_account.user_id}"
    try:
        room = bot.create_room("Newcomers", invite=[hana_account.user_id, ivan_account.user_id])
        hana.join(room)
        ivan.join(room)
        old = hana.say(room, "I have been here since before Parvis")
        connected = parvis_.run(
            "connect", "matrix", "--homeserver", synapse.url, "--user", bot_account.user_id, "--source", source
        )
        assert connected.returncode == 0, connected.stderr
        parvis_.listen("--welcome", str(tmp_path / "welcome.yaml"))
        wait_for(lambda: parvis_.activity(source, old), what="the history")

        def bot_replies() -> list[Any]:
            return parvis_.rows(
                "SELECT * FROM activities WHERE identity_id = :bot AND kind = 'reply' ORDER BY created_at",
                bot=bot_identity,
            )

        def processed(event_id: str) -> None:
            """Wait until a later message of hana's is stored: batches are handled in order."""
            wait_for(lambda: parvis_.activity(source, event_id), what=event_id)
            marker = hana.say(room, f"marker after {event_id}")
            wait_for(lambda: parvis_.activity(source, marker), what="the marker")

        rewind = wait_for(
            lambda: parvis_.rows("SELECT next_batch FROM matrix_sync WHERE source_id = :s", s=source)[0].next_batch,
            what="a sync token",
        )
        hana_again = hana.say(room, "Regulars are not welcomed again")
        processed(hana_again)
        assert bot_replies() == []

        first = ivan.say(room, "Hello everyone, this is my first message here")
        welcome = wait_for(lambda: bot_replies(), what="the welcome")
        assert len(welcome) == 1
        assert welcome[0].text_plain == "Welcome ivan! Say hello in Newcomers and read the guide."
        assert welcome[0].parent_id == f"{source}:{first}"
        on_synapse = ivan.event(room, welcome[0].native_id)
        assert on_synapse["sender"] == bot_account.user_id
        assert on_synapse["content"]["m.relates_to"]["rel_type"] == "m.thread"
        assert on_synapse["content"]["m.relates_to"]["event_id"] == first

        second = ivan.say(room, "And this is my second one")
        processed(second)
        assert len(bot_replies()) == 1

        # Restart from a sync token taken before ivan's first message: the first message comes back.
        assert parvis_.stop() in (0, -signal.SIGTERM)
        with parvis_.store.engine.begin() as connection:
            connection.execute(
                text("UPDATE matrix_sync SET next_batch = :t WHERE source_id = :s"), {"t": rewind, "s": source}
            )
        parvis_.listen("--welcome", str(tmp_path / "welcome.yaml"))
        third = ivan.say(room, "Third message after a restart")
        processed(third)
        assert len(bot_replies()) == 1
        audit = parvis_.rows("SELECT actor, action, activity_id, details FROM audit_log ORDER BY id")
        assert [(entry.actor, entry.action, entry.activity_id) for entry in audit] == [
            (bot_account.user_id, "welcome", f"{source}:{first}")
        ]
        details = json.loads(audit[0].details)
        assert details["member"] == f"member:{source}:{ivan_account.user_id}"
        assert (details["language"], details["text"]) == ("en", welcome[0].text_plain)
        assert f"welcomed member:{source}:{ivan_account.user_id} (en)" in (tmp_path / "listen.log").read_text()
    finally:
        parvis_.close()
        for member in (bot, hana, ivan):
            member.close()


def _event(event_id: str, sender: str, body: str, at: int) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "event_id": event_id,
        "sender": sender,
        "origin_server_ts": at,
        "content": {"msgtype": "m.text", "body": body},
    }


def test_welcome_language_from_enrichment(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'parvis.db'}")
    room = "!r:example.org"
    events = [
        (room, _event("$a1", "@amelie:example.org", "Bonjour à tous", 1_700_000_000_000)),
        (room, _event("$a2", "@amelie:example.org", "Merci !", 1_700_000_060_000)),
        (room, _event("$k1", "@klaus:example.org", "Guten Tag", 1_700_000_120_000)),
        (room, _event("$n1", "@noor:example.org", "Hi", 1_700_000_180_000)),
    ]
    ingest(store, MatrixBatch("m", [RoomInfo(room, "Lobby")], events), "m")
    with store.engine.begin() as connection:
        for activity_id, label in (("m:$a1", "fr"), ("m:$k1", "de")):
            connection.execute(
                enrichments.insert().values(
                    activity_id=activity_id,
                    enricher="language",
                    version="1",
                    label=label,
                    score=0.9,
                    extras={},
                    content_hash="x",
                )
            )
    config = load_welcome(_write(tmp_path / "welcome.yaml", WELCOME))
    due = welcomes_due(store, config, ["m:$a1", "m:$a2", "m:$k1", "m:$n1"], ["m:@noor:example.org"])
    assert [(w.activity_id, w.language, w.text) for w in due] == [
        ("m:$a1", "fr", "Bienvenue amelie ! Présentez-vous dans Lobby."),
        ("m:$k1", "en", "Welcome klaus! Say hello in Lobby and read the guide."),  # no German template
    ]
    # A member's later message is not a first message.
    assert welcomes_due(store, config, ["m:$a2"]) == []
    store.close()


def _write(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("messages: {en: 'Hi {author.__class__}'}", "messages.en: unknown field {author.__class__}"),
        ("messages: {en: 'Hi'}\ngreeting: x", "greeting: unknown field"),
        ("default_language: fr\nmessages: {en: 'Hi'}", "default_language: 'fr' has no message"),
        ("messages: [a, b]", "messages: expected a mapping"),
        ("messages: {en: 'Hi {'}", "messages.en: "),
    ],
)
def test_welcome_file_errors(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(WelcomeError) as problem:
        load_welcome(_write(tmp_path / "w.yaml", content))
    assert message in str(problem.value) and str(problem.value).startswith(str(tmp_path / "w.yaml"))
    assert "\n" not in str(problem.value)
    assert parse_welcome({"messages": {"EN": "Hi {author}"}}).default_language == "en"


# -- thanks on the real Stack Exchange dump ------------------------------------------------------------

SOURCE = "qc"
UNTIL = datetime(2018, 6, 1)
DAYS = 30


def _rows(path: Path) -> list[dict[str, str]]:
    return [dict(row.attrib) for row in ET.parse(path).getroot().iter("row")]


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _expected_thanks(dump: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Member id → (accept ids, newcomer reply ids), computed from the XML alone."""
    posts = {int(row["Id"]): row for row in _rows(dump / "Posts.xml")}
    comments = _rows(dump / "Comments.xml")
    accept_votes: dict[int, datetime] = {}
    for vote in _rows(dump / "Votes.xml"):
        if vote["VoteTypeId"] == "1":
            post_id = int(vote["PostId"])
            accept_votes[post_id] = max(accept_votes.get(post_id, datetime.min), _when(vote["CreationDate"]))

    def author(row: dict[str, str], id_key: str, name_key: str) -> str | None:
        if row.get(id_key):
            return f"member:{SOURCE}:u{row[id_key]}"
        return f"member:{SOURCE}:name:{row[name_key]}" if row.get(name_key) else None

    since = UNTIL - timedelta(days=DAYS)
    expected: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for question_id, question in posts.items():
        if question["PostTypeId"] != "1" or "AcceptedAnswerId" not in question:
            continue
        answer_id = int(question["AcceptedAnswerId"])
        if answer_id not in posts:
            continue
        if answer_id in accept_votes:
            accepted_at = accept_votes[answer_id]
        elif answer_id > question_id:  # the answer is read after its question
            accepted_at = _when(posts[answer_id]["CreationDate"])
        else:
            accepted_at = _when(question["CreationDate"])
        answerer = author(posts[answer_id], "OwnerUserId", "OwnerDisplayName")
        asker = author(question, "OwnerUserId", "OwnerDisplayName")
        if since <= accepted_at < UNTIL and answerer is not None and answerer != asker:
            expected[answerer][0].append(f"{SOURCE}:accept:{question_id}")

    # Each member's first contribution (question, answer or comment), by date then id.
    contributions: list[tuple[str, datetime, str]] = []
    for post_id, post in posts.items():
        who = author(post, "OwnerUserId", "OwnerDisplayName")
        if post["PostTypeId"] in ("1", "2") and who is not None:
            contributions.append((who, _when(post["CreationDate"]), f"{SOURCE}:p{post_id}"))
    for comment in comments:
        who = author(comment, "UserId", "UserDisplayName")
        if who is not None:
            contributions.append((who, _when(comment["CreationDate"]), f"{SOURCE}:c{comment['Id']}"))
    first: dict[str, tuple[datetime, str]] = {}
    for who, at, activity_id in contributions:
        if who not in first or (at, activity_id) < first[who]:
            first[who] = (at, activity_id)

    replies = [
        (post["ParentId"], _when(post["CreationDate"]), f"{SOURCE}:p{post_id}", post, "OwnerUserId", "OwnerDisplayName")
        for post_id, post in posts.items()
        if post["PostTypeId"] == "2" and "ParentId" in post
    ] + [
        (
            comment["PostId"],
            _when(comment["CreationDate"]),
            f"{SOURCE}:c{comment['Id']}",
            comment,
            "UserId",
            "UserDisplayName",
        )
        for comment in comments
    ]
    for parent_id, at, reply_id, row, id_key, name_key in replies:
        parent = posts.get(int(parent_id))
        if parent is None or parent["PostTypeId"] != "1" or not since <= at < UNTIL:
            continue
        replier, newcomer = author(row, id_key, name_key), author(parent, "OwnerUserId", "OwnerDisplayName")
        if replier is None or newcomer is None or replier == newcomer:
            continue
        if first[newcomer][1] == f"{SOURCE}:p{parent_id}":
            expected[replier][1].append(reply_id)
    return {member: (sorted(a), sorted(r)) for member, (a, r) in expected.items()}


def test_thanks_on_the_quantum_computing_dump(shared_data: Path, tmp_path: Path) -> None:
    dump = shared_data / "se_quantumcomputing_2018"
    db = f"sqlite:///{tmp_path / 'parvis.db'}"
    imported = parvis("import", "stackexchange", str(dump), "--source", SOURCE, db=db)
    assert imported.returncode == 0, imported.stderr
    expected = _expected_thanks(dump)
    assert sum(len(a) for a, _ in expected.values()) > 20 and sum(len(r) for _, r in expected.values()) > 20

    store = open_store(db)
    try:
        found = thanks_suggestions(store, until=UNTIL, days=DAYS, source_id=SOURCE)
        assert {item.member_id: (item.accepted, item.newcomer_replies) for item in found} == expected
        top = found[0]
        assert len(top.activity_ids) == max(len(a) + len(r) for a, r in expected.values())
    finally:
        store.close()

    until = ["--until", UNTIL.strftime("%Y-%m-%d"), "--days", str(DAYS), "--source", SOURCE]
    listed = parvis("thanks", "list", "--limit", "1000", *until, db=db)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == len(expected)
    assert lines[0].startswith(f"{top.member_id} {top.name}: ")
    done = parvis("thanks", "done", top.member_id, "--by", "camille", *until, db=db)
    assert done.returncode == 0, done.stderr
    after = parvis("thanks", "list", "--limit", "1000", *until, db=db).stdout.splitlines()
    assert after == lines[1:]
    assert not any(line.startswith(f"{top.member_id} ") for line in after)
    unknown = parvis("thanks", "done", top.member_id, "--by", "camille", *until, db=db)
    assert unknown.returncode == 1 and "is not among the suggestions" in unknown.stderr
