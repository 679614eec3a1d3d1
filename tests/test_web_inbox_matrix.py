"""Answering and moderating from the web cockpit on a real Synapse (tests/synapse.py).

A member asks a question in a room the community account listens to; it shows in the inbox (API
route), a moderator answers through the web form (CSRF, ASGI test client), another member sees
the threaded reply with matrix-nio, and the item leaves the open list.  Removing a flagged message
from the web queue redacts it on the homeserver.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from parvis.store.schema import activities, audit_log, enrichments
from parvis.web import auth
from parvis.web.app import create_app
from parvis.workflows import moderation
from tests.synapse import Member, Parvis, Synapse, wait_for
from tests.test_web_data import CSRF, PASSWORD, log_in

pytest_plugins = ["tests.synapse"]  # the session's Synapse (fixture ``synapse``)

SOURCE = "m"


def _login(client: TestClient, name: str) -> None:
    assert log_in(client, name).status_code == 200


def _csrf(client: TestClient, path: str) -> str:
    found = CSRF.search(client.get(path).text)
    assert found is not None
    return found.group(1)


def _open_items(client: TestClient) -> dict[str, dict[str, object]]:
    answer = client.get(f"/api/inbox?source={SOURCE}&state=open")
    assert answer.status_code == 200
    return {item["activity_id"]: item for item in answer.json()["items"]}


def test_answer_and_remove_from_the_web(synapse: Synapse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bot_account = synapse.register("inbox-bot")
    alice_account, carol_account = synapse.register("inbox-alice"), synapse.register("inbox-carol")
    bot, alice, carol = (Member(synapse, account) for account in (bot_account, alice_account, carol_account))
    parvis = Parvis(tmp_path, bot_account.access_token)
    # The web app runs in this process: the community account's token is in its environment only.
    monkeypatch.setenv("PARVIS_MATRIX_TOKEN", bot_account.access_token)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    try:
        room = bot.create_room("Help desk", invite=[alice_account.user_id, carol_account.user_id])
        alice.join(room)
        carol.join(room)
        connected = parvis.run(
            "connect", "matrix", "--homeserver", synapse.url, "--user", bot_account.user_id, "--source", SOURCE
        )
        assert connected.returncode == 0, connected.stderr
        text = "How do I get commit access to the docs repository?"
        question = alice.say(room, text)
        chatter = alice.say(room, "buy cheap followers at spam.example")
        assert parvis.run("listen", "--once").returncode == 0
        question_id = f"{SOURCE}:{question}"
        stored = parvis.activity(SOURCE, question)
        assert stored is not None and stored.kind == "message" and stored.conversation_id is not None

        # The listener ran the packaged enrichers on the batch: the question detector found the question.
        with parvis.store.engine.connect() as connection:
            labels = dict(
                connection.execute(
                    select(enrichments.c.activity_id, enrichments.c.label).where(
                        enrichments.c.enricher == "question",
                        enrichments.c.activity_id.in_([question_id, f"{SOURCE}:{chatter}"]),
                    )
                ).all()
            )
        assert labels == {question_id: "question", f"{SOURCE}:{chatter}": "other"}
        auth.add_user(parvis.store, "mo", PASSWORD, "moderator")
        auth.add_user(parvis.store, "ann", PASSWORD, "analyst")
        web = TestClient(create_app(parvis.store, secret=b"test secret"))
        _login(web, "mo")
        analyst = TestClient(create_app(parvis.store, secret=b"test secret"))
        _login(analyst, "ann")

        listed = _open_items(web)
        assert list(listed) == [question_id]  # the chatter is not a question
        assert listed[question_id]["snippet"] == text and listed[question_id]["sla"] in ("on_track", "breached")
        page = web.get(f"/inbox?source={SOURCE}").text
        assert 'action="/inbox/answer"' in page
        token = CSRF.search(page)
        assert token is not None
        # An analyst may not answer; a forged token is refused.
        refused = analyst.post(
            "/inbox/answer",
            data={
                "activity_id": question_id,
                "text": "no",
                "csrf_token": _csrf(analyst, "/inbox"),
            },
        )
        assert refused.status_code == 403
        forged = web.post("/inbox/answer", data={"activity_id": question_id, "text": "no", "csrf_token": "forged"})
        assert forged.status_code == 403

        reply_text = "Open an issue titled 'docs access' and a maintainer will add you."
        sent = web.post(
            "/inbox/answer", data={"activity_id": question_id, "text": reply_text, "csrf_token": token.group(1)}
        )
        assert sent.status_code == 200 and sent.url.params["done"] == "answered"
        assert "Your answer was posted on the platform." in sent.text
        # Recorded at once as answered by mo: out of the open list before the listener even runs.
        assert question_id not in _open_items(web)
        answered = web.get(f"/api/inbox?source={SOURCE}&state=answered").json()["items"]
        assert [(item["activity_id"], item["answered_by"]) for item in answered] == [(question_id, "mo")]

        # Carol, another member, sees the reply in the room as a threaded reply by the community account.
        def reply_seen() -> dict[str, object] | None:
            response = carol.loop.run_until_complete(carol.client.room_messages(room, limit=20))
            for event in getattr(response, "chunk", []):
                if event.sender == bot_account.user_id and event.source.get("content", {}).get("body") == reply_text:
                    return dict(event.source)
            return None

        reply = wait_for(reply_seen, what="the reply in the room")
        relation = reply["content"]["m.relates_to"]  # type: ignore[index]
        assert relation["rel_type"] == "m.thread" and relation["event_id"] == question
        assert relation["m.in_reply_to"] == {"event_id": question}

        # The listener stores the reply: the platform itself now shows the question answered.
        assert parvis.run("listen", "--once").returncode == 0
        with parvis.store.engine.connect() as connection:
            stored_reply = connection.execute(
                select(activities.c.kind, activities.c.parent_id, activities.c.conversation_id).where(
                    activities.c.id == f"{SOURCE}:{reply['event_id']}"
                )
            ).one()
        assert tuple(stored_reply) == ("reply", question_id, stored.conversation_id)
        answered = web.get(f"/api/inbox?source={SOURCE}&state=answered").json()["items"]
        assert answered[0]["responder"] in (bot_account.user_id, "inbox-bot")
        assert answered[0]["answered_by"] == "mo"
        assert _open_items(web) == {}

        # Moderation: the chatter flagged, then removed from the web queue, is redacted on the homeserver.
        assert moderation.flag(parvis.store, f"{SOURCE}:{chatter}", "spam", "looks like spam")
        queue_page = analyst.get("/moderation").text
        assert "buy cheap followers" in queue_page and 'action="/moderation/decide"' not in queue_page
        item = moderation.queue(parvis.store)[0]
        removed = web.post(
            "/moderation/decide",
            data={
                "item_id": item.id,
                "decision": "remove",
                "reason": "spam",
                "csrf_token": _csrf(web, "/moderation"),
            },
        )
        assert removed.status_code == 200 and removed.url.params["done"] == "removed_platform"
        seen = carol.event(room, chatter)
        assert seen["content"] == {} and seen["unsigned"]["redacted_because"]["sender"] == bot_account.user_id
        with parvis.store.engine.connect() as connection:
            actions = connection.execute(
                select(audit_log.c.actor, audit_log.c.action).where(audit_log.c.activity_id == f"{SOURCE}:{chatter}")
            ).all()
        assert sorted(tuple(row) for row in actions) == [("mo", "remove"), (f"mo as {bot_account.user_id}", "hide")]
        assert bot_account.access_token not in analyst.get("/moderation/log").text
    finally:
        parvis.close()
        for member in (bot, alice, carol):
            member.close()
