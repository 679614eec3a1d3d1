"""``parvis connect matrix`` / ``parvis listen`` against a real Synapse on loopback (tests/synapse.py)."""

from __future__ import annotations

import csv
import re
import signal
import time
from pathlib import Path

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
    bot_account = synapse.register("cm-bot2")
    dana_account = synapse.register("dana")
    bot, dana = Member(synapse, bot_account), Member(synapse, dana_account)
    parvis = Parvis(tmp_path, bot_account.access_token)
    source = "live"
    try:
        room = bot.create_room("Catch-up", invite=[dana_account.user_id])
        dana.join(room)
        connected = parvis.run(
            "connect", "matrix", "--homeserver", synapse.url, "--user", bot_account.user_id, "--source", source
        )
        assert connected.returncode == 0, connected.stderr

        def messages() -> dict[str, str]:
            rows = parvis.rows(
                "SELECT native_id, text_plain FROM activities WHERE source_id = :s AND kind = 'message' "
                "AND identity_id = :who",
                s=source,
                who=f"{source}:{dana_account.user_id}",
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
        parvis.stop()
        assert len(posted) == 128
        counts = parvis.rows(
            "SELECT count(*) AS n, count(DISTINCT native_id) AS d FROM activities "
            "WHERE source_id = :s AND kind = 'message'",
            s=source,
        )[0]
        assert (counts.n, counts.d) == (128, 128)
        token = parvis.rows("SELECT next_batch FROM matrix_sync WHERE source_id = :s", s=source)[0].next_batch
        assert token
        assert bot_account.access_token not in str(parvis.rows("SELECT * FROM matrix_sync"))
    finally:
        parvis.close()
        bot.close()
        dana.close()
