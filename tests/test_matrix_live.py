"""``parvis connect matrix`` / ``parvis listen`` against a real Synapse on loopback (tests/synapse.py)."""

from __future__ import annotations

import csv
import json
import re
import signal
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.synapse import Member, Parvis, Synapse, wait_for

pytest_plugins = ["tests.synapse"]  # the session's Synapse (fixture ``synapse``)


def offensive_tweet(shared_data: Path) -> str:
    """The first tweet of Davidson et al. labelled offensive or hateful that contains the word 'bitch'."""
    with open(shared_data / "toxicity_davidson_tweets_en" / "labeled_data.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["class"] in ("0", "1") and re.search(r"(?i)(?<!\w)bitch(?!\w)", row["tweet"]):
                return row["tweet"]
    raise AssertionError("no such tweet")


RULES = """\
rules:
  - id: no-insults
    reason: Insults are not welcome here
    when:
      text:
        words: [bitch, bitches]
    actions:
      - hide
      - flag
      - warn: "{author}, your message was removed: {reason}."
"""


@contextmanager
def connected_room(
    synapse: Synapse, tmp_path: Path, bot_name: str, member_name: str, room_name: str, source: str
) -> Iterator[tuple[Parvis, Member, Member, str]]:
    """A community account connected to Parvis as ``source``, and one member, in a new room."""
    bot_account, member_account = synapse.register(bot_name), synapse.register(member_name)
    bot, member = Member(synapse, bot_account), Member(synapse, member_account)
    parvis = Parvis(tmp_path, bot_account.access_token)
    try:
        room = bot.create_room(room_name, invite=[member_account.user_id])
        member.join(room)
        connected = parvis.run(
            "connect", "matrix", "--homeserver", synapse.url, "--user", bot_account.user_id, "--source", source
        )
        assert connected.returncode == 0, connected.stderr
        yield parvis, bot, member, room
    finally:
        parvis.close()
        bot.close()
        member.close()


def runs(parvis: Parvis, source: str) -> list[Any]:
    return parvis.rows("SELECT * FROM import_runs WHERE source_id = :s ORDER BY id", s=source)


def rows_of(parvis: Parvis, source: str) -> int:
    """The rows an import of ``source`` added: channels, identities, activities, links."""
    counts = [
        parvis.rows(f"SELECT count(*) AS n FROM {table} WHERE source_id = :s", s=source)[0].n
        for table in ("channels", "identities", "activities", "links")
    ]
    return int(sum(counts))


def batches_logged(parvis: Parvis, source: str) -> int:
    """How many committed sync batches the listeners printed (one line each)."""
    lines = (parvis.logs / "listen.log").read_text(errors="replace").splitlines()
    return sum(1 for line in lines if re.match(rf"{re.escape(source)}: \d+ events, ", line))


def test_listen_flows_messages_and_enforces_rules(synapse: Synapse, tmp_path: Path, shared_data: Path) -> None:
    bot_account = synapse.register("cm-bot")
    alice_account, bob_account, carol_account = (synapse.register(name) for name in ("alice", "bob", "carol"))
    bot, alice, bob, carol = (
        Member(synapse, account) for account in (bot_account, alice_account, bob_account, carol_account)
    )
    parvis = Parvis(tmp_path, bot_account.access_token)
    try:
        room = bot.create_room("Community", invite=[alice_account.user_id, bob_account.user_id, carol_account.user_id])
        alice.join(room)
        bob.join(room)
        before = alice.say(room, "Hello before Parvis was connected")
        (tmp_path / "rules.yaml").write_text(RULES)

        connected = parvis.run("connect", "matrix", "--homeserver", synapse.url, "--user", bot_account.user_id)
        assert connected.returncode == 0, connected.stderr
        assert bot_account.access_token not in connected.stdout + connected.stderr
        source = "matrix-parvis.test"
        parvis.listen("--rules", str(tmp_path / "rules.yaml"))
        # The first sync brings the room's history (moderation does not act on history).
        wait_for(lambda: parvis.activity(source, before), what="the history")

        sent = time.monotonic()
        question = alice.say(room, "How do I join the translation team?")
        answer = bob.reply(
            room, question, "> <@alice:parvis.test> How do I join the translation team?\n\nAsk in #i18n!"
        )
        in_thread = alice.in_thread(room, question, "Thanks, doing that now")
        reaction = bob.react(room, answer, "👍")
        carol.join(room)
        carol.leave(room)
        insult = offensive_tweet(shared_data)
        toxic = bob.say(room, insult)
        stored = wait_for(lambda: parvis.activity(source, toxic), what="the toxic message")
        latency = time.monotonic() - sent
        assert latency < 10

        rows = {row.native_id: row for row in parvis.rows("SELECT * FROM activities WHERE source_id = :s", s=source)}
        assert rows[question].kind == "message" and rows[question].text_plain == "How do I join the translation team?"
        assert (rows[answer].kind, rows[answer].parent_id) == ("reply", f"{source}:{question}")
        assert rows[answer].text_plain == "Ask in #i18n!"
        assert (rows[in_thread].kind, rows[in_thread].parent_id) == ("reply", f"{source}:{question}")
        assert rows[answer].conversation_id == rows[in_thread].conversation_id == rows[question].conversation_id
        assert (rows[reaction].kind, rows[reaction].parent_id) == ("reaction", f"{source}:{answer}")
        carol_kinds = [row.kind for row in rows.values() if row.identity_id == f"{source}:{carol_account.user_id}"]
        assert sorted(carol_kinds) == ["join", "part"]
        assert stored.text_plain == insult
        assert rows[question].channel_id == f"{source}:{room}"
        assert parvis.rows("SELECT name FROM channels WHERE id = :id", id=f"{source}:{room}")[0].name == "Community"

        # The rule redacted the message on the homeserver, flagged it and warned its author in a thread.
        toxic_id = f"{source}:{toxic}"
        audit = wait_for(
            lambda: (
                parvis.rows("SELECT * FROM audit_log WHERE activity_id = :a ORDER BY id", a=toxic_id)
                if len(parvis.rows("SELECT id FROM audit_log WHERE activity_id = :a", a=toxic_id)) == 3
                else None
            ),
            what="the audit log",
        )
        assert [entry.action for entry in audit] == ["hide", "flag", "warn"]
        for entry in audit:
            assert entry.rule == "no-insults"
            assert entry.actor == f"rule:no-insults as {bot_account.user_id}"
            assert entry.reason.startswith("Insults are not welcome here: word ")
            assert "bitch" in entry.reason.lower()
        seen_by_alice = alice.event(room, toxic)
        assert seen_by_alice["content"] == {}
        assert seen_by_alice["unsigned"]["redacted_because"]["sender"] == bot_account.user_id
        queue = parvis.run("moderate", "queue")
        assert queue.returncode == 0 and "no-insults" in queue.stdout and toxic_id in queue.stdout
        # The redaction and the warning come back through sync as activities too.
        redaction = wait_for(
            lambda: parvis.rows("SELECT * FROM activities WHERE kind = 'moderation' AND parent_id = :p", p=toxic_id),
            what="the redaction",
        )
        assert redaction[0].identity_id == f"{source}:{bot_account.user_id}"
        warning = wait_for(
            lambda: parvis.rows("SELECT * FROM activities WHERE kind = 'reply' AND parent_id = :p", p=toxic_id),
            what="the warning",
        )
        assert warning[0].text_plain == "bob, your message was removed: Insults are not welcome here."
        assert parvis.stop() in (0, -signal.SIGTERM)
        # The audit log cannot be rewritten.
        with pytest.raises(Exception, match="append-only"), parvis.store.engine.begin() as connection:
            connection.execute(text("UPDATE audit_log SET reason = 'nothing to see'"))
    finally:
        parvis.close()
        for member in (bot, alice, bob, carol):
            member.close()


def test_catches_up_after_parvis_and_synapse_restart(synapse: Synapse, tmp_path: Path) -> None:
    source = "live"
    with connected_room(synapse, tmp_path, "cm-bot2", "dana", "Catch-up", source) as (parvis, bot, dana, room):
        bot_account = bot.account

        def messages() -> dict[str, str]:
            rows = parvis.rows(
                "SELECT native_id, text_plain FROM activities WHERE source_id = :s AND kind = 'message' "
                "AND identity_id = :who",
                s=source,
                who=f"{source}:{dana.account.user_id}",
            )
            return {row.native_id: row.text_plain for row in rows}

        posted: dict[str, str] = {}

        def post(count: int) -> None:
            for _ in range(count):
                body = f"message {len(posted) + 1}"
                posted[dana.say(room, body)] = body

        parvis.listen()
        post(3)
        wait_for(lambda: messages() == posted or None, what="the first messages")
        parvis.stop(signal.SIGKILL)  # mid-stream, no chance to clean up
        # The killed session's run is still "running", with exactly the counts of what it committed.
        killed = runs(parvis, source)
        assert [run.status for run in killed] == ["running"]
        assert killed[0].added == rows_of(parvis, source) and killed[0].finished_at is not None
        batches_before = batches_logged(parvis, source)
        post(120)  # more than one sync's timeline holds: the listener must page back
        synapse.stop()
        synapse.start()
        post(3)
        parvis.listen()
        wait_for(lambda: messages() == posted or None, timeout=60, what="the missed messages")
        # The homeserver goes away under a running listener and comes back.
        synapse.stop()
        time.sleep(1)
        synapse.start()
        post(2)
        wait_for(lambda: messages() == posted or None, timeout=60, what="messages after the homeserver restart")
        assert parvis.stop() in (0, -signal.SIGTERM)
        assert len(posted) == 128
        # One run per listening session, however many syncs brought events; every row was added once.
        sessions = runs(parvis, source)
        assert [run.status for run in sessions] == ["running", "done"]
        assert sum(run.added for run in sessions) == rows_of(parvis, source)
        assert sessions[1].present > 0  # the replayed events were counted as already there, not added
        # The second session committed the catch-up, then what came after the homeserver's restart.
        assert batches_logged(parvis, source) - batches_before >= 2
        counts = parvis.rows(
            "SELECT count(*) AS n, count(DISTINCT native_id) AS d FROM activities "
            "WHERE source_id = :s AND kind = 'message'",
            s=source,
        )[0]
        assert (counts.n, counts.d) == (128, 128)
        token = parvis.rows("SELECT next_batch FROM matrix_sync WHERE source_id = :s", s=source)[0].next_batch
        assert token
        assert bot_account.access_token not in str(parvis.rows("SELECT * FROM matrix_sync"))


def test_an_edit_changes_the_stored_text_and_meets_the_rules(
    synapse: Synapse, tmp_path: Path, shared_data: Path
) -> None:
    source = "edits"
    with connected_room(synapse, tmp_path, "cm-bot3", "erin", "Edits", source) as (parvis, bot, erin, room):
        bot_account = bot.account
        (tmp_path / "rules.yaml").write_text(RULES)
        parvis.listen("--rules", str(tmp_path / "rules.yaml"))
        wait_for(lambda: runs(parvis, source), what="the first sync")
        # Several syncs, one at a time: each one is a batch of the same import run.
        for number in range(3):
            said = erin.say(room, f"note {number}")
            wait_for(lambda said=said: parvis.activity(source, said), what=f"note {number}")
        original = erin.say(room, "What a lovely meetup yesterday")
        stored = wait_for(lambda: parvis.activity(source, original), what="the original message")
        before_hash = stored.content_hash

        insult = offensive_tweet(shared_data)
        edit = erin.send(
            room,
            {
                "msgtype": "m.text",
                "body": f"* {insult}",
                "m.new_content": {"msgtype": "m.text", "body": insult},
                "m.relates_to": {"rel_type": "m.replace", "event_id": original},
            },
        )
        original_id = f"{source}:{original}"
        edited = wait_for(
            lambda: row if (row := parvis.activity(source, original)) and row.text_plain == insult else None,
            what="the edited text",
        )
        assert edited.kind == "message" and edited.edited_at is not None and edited.content_hash != before_hash
        assert json.loads(edited.extras)["edit"] == edit
        edit_row = parvis.activity(source, edit)
        assert (edit_row.kind, edit_row.parent_id, edit_row.text_plain) == ("edit", original_id, None)
        # Both events stay archived as the homeserver sent them.
        payloads = {
            row.item_id: json.loads(zlib.decompress(row.payload))
            for row in parvis.rows(
                "SELECT item_id, payload FROM raw_payloads WHERE item_id IN (:a, :b)",
                a=f"activity:{original_id}",
                b=f"activity:{source}:{edit}",
            )
        }
        assert payloads[f"activity:{original_id}"]["content"]["body"] == "What a lovely meetup yesterday"
        assert payloads[f"activity:{source}:{edit}"]["content"]["m.new_content"]["body"] == insult
        # The rule sees the edited text: the message is redacted on the homeserver and flagged.
        audit_query = "SELECT * FROM audit_log WHERE activity_id = :a ORDER BY id"
        audit = wait_for(
            lambda: entries if len(entries := parvis.rows(audit_query, a=original_id)) == 3 else None,
            what="the rule on the edited message",
        )
        assert [entry.action for entry in audit] == ["hide", "flag", "warn"]
        assert all(entry.rule == "no-insults" for entry in audit)
        assert erin.event(room, original)["unsigned"]["redacted_because"]["sender"] == bot_account.user_id
        # Enrichment ran again on the new text (its rows carry the edited activity's content hash).
        enriched = wait_for(
            lambda: parvis.rows(
                "SELECT enricher FROM enrichments WHERE activity_id = :a AND content_hash = :h",
                a=original_id,
                h=edited.content_hash,
            ),
            what="the enrichment of the edited text",
        )
        assert {row.enricher for row in enriched} >= {"toxicity", "language"}
        assert parvis.stop() in (0, -signal.SIGTERM)

        session = runs(parvis, source)
        assert len(session) == 1 and session[0].status == "done"
        assert session[0].added == rows_of(parvis, source)
        assert session[0].updated >= 1  # the edited message
        assert batches_logged(parvis, source) >= 5
