"""MatrixActions kick/ban, and a person's ``moderate decide ... remove`` redacting, on a real Synapse."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from nio import ErrorResponse, RoomGetStateEventResponse

from parvis.live.matrix import MatrixAccount, MatrixActions, new_client
from parvis.live.secrets import MatrixSecret
from tests.cli_run import PARVIS
from tests.synapse import Member, Parvis, Synapse

pytest_plugins = ["tests.synapse"]  # the session's Synapse (fixture ``synapse``)


def test_kick_and_ban_really_remove_the_member(synapse: Synapse, tmp_path: Path) -> None:
    bot_account = synapse.register("mod-bot")
    eve_account, frank_account = synapse.register("eve"), synapse.register("frank")
    bot, eve, frank = (Member(synapse, account) for account in (bot_account, eve_account, frank_account))
    parvis = Parvis(tmp_path, bot_account.access_token)
    try:
        room = bot.create_room("Kick and ban", invite=[eve_account.user_id, frank_account.user_id])
        eve.join(room)
        frank.join(room)
        connected = parvis.run(
            "connect", "matrix", "--homeserver", synapse.url, "--user", bot_account.user_id, "--source", "m"
        )
        assert connected.returncode == 0, connected.stderr
        assert parvis.run("listen", "--once").returncode == 0  # the history: the next sync brings only news

        async def act() -> tuple[dict[str, object], dict[str, object]]:
            account = MatrixAccount("m", synapse.url, bot_account.user_id)
            client = new_client(account, MatrixSecret(access_token=bot_account.access_token))
            try:
                actions = MatrixActions(client)
                await actions.kick(room, eve_account.user_id, reason="Spam links, second warning")
                await actions.ban(room, frank_account.user_id, reason="Harassment of newcomers")
                states = []
                for user_id in (eve_account.user_id, frank_account.user_id):
                    state = await client.room_get_state_event(room, "m.room.member", user_id)
                    assert isinstance(state, RoomGetStateEventResponse), state
                    states.append(state.content)
                return states[0], states[1]
            finally:
                await client.close()

        kicked, banned = asyncio.run(act())
        assert kicked["membership"] == "leave" and kicked["reason"] == "Spam links, second warning"
        assert banned["membership"] == "ban" and banned["reason"] == "Harassment of newcomers"
        # Really out: eve can no longer post; frank cannot even come back.
        refused = eve.loop.run_until_complete(
            eve.client.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "still here?"})
        )
        assert isinstance(refused, ErrorResponse) and refused.status_code == "M_FORBIDDEN"
        rejoin = frank.loop.run_until_complete(frank.client.join(room))
        assert isinstance(rejoin, ErrorResponse) and "banned" in rejoin.message

        # The listener stores both as moderation activities, with the reason.
        assert parvis.run("listen", "--once").returncode == 0
        rows = parvis.rows(
            "SELECT identity_id, text_plain, extras FROM activities WHERE source_id = 'm' AND kind = 'moderation'"
        )
        extras = [json.loads(row.extras) for row in rows]
        stored = sorted(
            (extra["action"], extra["target"], row.text_plain, row.identity_id)
            for extra, row in zip(extras, rows, strict=True)
        )
        assert stored == [
            ("ban", frank_account.user_id, "Harassment of newcomers", f"m:{bot_account.user_id}"),
            ("kick", eve_account.user_id, "Spam links, second warning", f"m:{bot_account.user_id}"),
        ]
    finally:
        parvis.close()
        for member in (bot, eve, frank):
            member.close()


RULES = """\
rules:
  - id: crypto-spam
    reason: Unsolicited crypto offers
    when:
      text:
        words: [airdrop]
    actions: [flag]
"""


def test_human_remove_redacts_on_matrix(synapse: Synapse, tmp_path: Path) -> None:
    bot_account, gina_account = synapse.register("mod-bot2"), synapse.register("gina")
    bot, gina = Member(synapse, bot_account), Member(synapse, gina_account)
    parvis = Parvis(tmp_path, bot_account.access_token)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    source = "mx"
    try:
        room = bot.create_room("Remove", invite=[gina_account.user_id])
        gina.join(room)
        connected = parvis.run(
            "connect", "matrix", "--homeserver", synapse.url, "--user", bot_account.user_id, "--source", source
        )
        assert connected.returncode == 0, connected.stderr
        assert parvis.run("listen", "--once", "--rules", str(rules)).returncode == 0
        first = gina.say(room, "Free AIRDROP, claim now")
        second = gina.say(room, "airdrop again, last chance")
        kept = gina.say(room, "A normal question about the meetup")
        caught = parvis.run("listen", "--once", "--rules", str(rules))
        assert caught.returncode == 0, caught.stderr
        items = {row.activity_id: row.id for row in parvis.rows("SELECT id, activity_id FROM moderation_queue")}
        assert set(items) == {f"{source}:{first}", f"{source}:{second}"}

        # Without credentials: the decision is kept, the message stays, the user is told in one line.
        bare_env = {k: v for k, v in parvis.env.items() if k != "PARVIS_MATRIX_TOKEN"}
        decide = [*PARVIS, "moderate", "decide", str(items[f"{source}:{second}"]), "remove", "--by", "camille"]
        refused = subprocess.run(decide, capture_output=True, text=True, env=bare_env, timeout=60)
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
        assert "the decision is recorded, but the message is still on" in refused.stderr
        assert gina.event(room, second)["content"]["body"] == "airdrop again, last chance"

        removed = parvis.run(
            "moderate",
            "decide",
            str(items[f"{source}:{first}"]),
            "remove",
            "--by",
            "camille",
            "--reason",
            "crypto spam",
        )
        assert removed.returncode == 0, removed.stderr
        assert "redacted on" in removed.stdout
        assert bot_account.access_token not in removed.stdout + removed.stderr
        seen = gina.event(room, first)
        assert seen["content"] == {}
        assert seen["unsigned"]["redacted_because"]["sender"] == bot_account.user_id
        assert seen["unsigned"]["redacted_because"]["content"]["reason"] == "crypto spam"
        assert gina.event(room, kept)["content"]["body"] == "A normal question about the meetup"

        log = parvis.rows(
            "SELECT actor, action, rule, reason, details FROM audit_log WHERE activity_id = :a ORDER BY id",
            a=f"{source}:{first}",
        )
        assert [(entry.actor, entry.action, entry.rule) for entry in log] == [
            ("rule:crypto-spam as " + bot_account.user_id, "flag", "crypto-spam"),
            ("camille", "remove", "crypto-spam"),
            (f"camille as {bot_account.user_id}", "hide", "crypto-spam"),
        ]
        assert log[2].reason == "crypto spam"
        assert json.loads(log[2].details)["redaction"] == seen["unsigned"]["redacted_because"]["event_id"]
        decided = parvis.rows("SELECT activity_id, state, decided_by FROM moderation_queue ORDER BY id")
        assert [(row.state, row.decided_by) for row in decided] == [("removed", "camille"), ("removed", "camille")]
    finally:
        parvis.close()
        bot.close()
        gina.close()
