"""The response inbox, its settings and team, the moderation queue and the audit log in the web cockpit.

Data: the real quantumcomputing dump imported with ``parvis import`` (tests/test_web_data.py); the
expected inbox is computed here from Posts.xml and Comments.xml with regular expressions, not
with Parvis code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from parvis.store import Store, open_store
from parvis.store.schema import activities, audit_log, moderation_queue
from parvis.web.cache import views
from parvis.workflows import moderation
from tests.test_web_api import csrf_of, login
from tests.test_web_data import HOSTILE_SUBJECT, USERS, web_store_url

ROW = re.compile(rb"<row [^\n]*/>")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Store]:
    opened = open_store(web_store_url(tmp_path_factory, shared_data))
    views.clear()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def clients(store: Store) -> dict[str, TestClient]:
    return {name: login(store, name) for name in USERS}


@pytest.fixture(scope="module")
def app_client(store: Store) -> TestClient:
    from parvis.web.app import create_app

    return TestClient(create_app(store, secret=b"test secret"))


def _attribute(row: bytes, name: str) -> str | None:
    found = re.search(rb" " + name.encode() + rb'="([^"]*)"', row)
    return found.group(1).decode() if found else None


def _author(row: bytes, id_attribute: str, name_attribute: str) -> str | None:
    """The author's key: the user id, or for a deleted account the display name the dump keeps."""
    user = _attribute(row, id_attribute)
    if user is not None:
        return user
    name = _attribute(row, name_attribute)
    return f"name:{name}" if name else None


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def expected(shared_data: Path) -> dict[str, tuple[datetime, datetime | None, str | None]]:
    """question id → (asked, first response by another non-bot user or None, that user's id), from the XML."""
    folder = shared_data / "se_quantumcomputing_2018"
    posts = ROW.findall((folder / "Posts.xml").read_bytes())
    comments = ROW.findall((folder / "Comments.xml").read_bytes())
    asker: dict[str, str] = {}
    asked: dict[str, datetime] = {}
    question_of: dict[str, str] = {}
    for row in posts:
        post_id, kind = _attribute(row, "Id"), _attribute(row, "PostTypeId")
        owner = _author(row, "OwnerUserId", "OwnerDisplayName")
        assert post_id is not None
        if kind == "1" and owner is not None and owner != "-1":
            asker[post_id] = owner
            asked[post_id] = _when(_attribute(row, "CreationDate") or "")
            question_of[post_id] = post_id
    for row in posts:
        parent = _attribute(row, "ParentId")
        if _attribute(row, "PostTypeId") == "2" and parent is not None:
            question_of[_attribute(row, "Id") or ""] = parent
    responses: list[tuple[str, datetime, str]] = []
    for row in posts:
        if _attribute(row, "PostTypeId") == "2":
            responses.append(
                (
                    _attribute(row, "ParentId") or "",
                    _when(_attribute(row, "CreationDate") or ""),
                    _author(row, "OwnerUserId", "OwnerDisplayName") or "",
                )
            )
    for row in comments:
        target = question_of.get(_attribute(row, "PostId") or "")
        if target is not None:
            at = _when(_attribute(row, "CreationDate") or "")
            responses.append((target, at, _author(row, "UserId", "UserDisplayName") or ""))
    result: dict[str, tuple[datetime, datetime | None, str | None]] = {}
    for question, when in asked.items():
        mine = sorted(
            (at, user)
            for target, at, user in responses
            if target == question and user not in ("", "-1", asker[question]) and at >= when
        )
        result[f"qc:p{question}"] = (when, mine[0][0] if mine else None, mine[0][1] if mine else None)
    return result


def _api(client: TestClient, state: str) -> dict[str, dict[str, object]]:
    answer = client.get(f"/api/inbox?source=qc&state={state}")
    assert answer.status_code == 200, answer.text[:300]
    return {item["activity_id"]: item for item in answer.json()["items"]}


def test_inbox_matches_the_dump(
    clients: dict[str, TestClient], expected: dict[str, tuple[datetime, datetime | None, str | None]]
) -> None:
    everything = _api(clients["ann"], "all")
    assert set(everything) == set(expected)
    open_ids = {question for question, (_, first, _user) in expected.items() if first is None}
    assert set(_api(clients["ann"], "open")) == open_ids
    assert len(open_ids) > 0 and len(everything) - len(open_ids) > 500
    for question, (asked, first, _user) in expected.items():
        item = everything[question]
        assert item["created_at"] == asked.isoformat() + "Z"
        if first is None:
            assert (item["state"], item["first_response_at"], item["sla"]) == ("open", None, "breached")
        else:
            assert item["state"] == "answered"
            assert item["first_response_at"] == first.isoformat() + "Z", question
    # Oldest first.
    listed = list(_api(clients["ann"], "open"))
    assert listed == sorted(listed, key=lambda question: (expected[question][0], question))


def test_sla_of_real_questions_by_hand(clients: dict[str, TestClient]) -> None:
    everything = _api(clients["ann"], "all")
    # Question 1: Monday 12 March 2018, 17:00:45 UTC, after closing (default: Mon-Fri 09:00-17:00 UTC, 4 h).
    # Due Tuesday 13:00; first answer 17:18:12.873 the same evening: met, with no business time spent.
    first = everything["qc:p1"]
    assert first["due_at"] == "2018-03-13T13:00:00Z"
    assert first["first_response_at"] == "2018-03-12T17:18:12.873000Z"
    assert (first["sla"], first["response_business_hours"]) == ("met", 0.0)
    missed = [item for item in everything.values() if item["sla"] == "missed"]
    met = [item for item in everything.values() if item["sla"] == "met"]
    assert missed and met
    for item in missed:
        assert str(item["first_response_at"]) > str(item["due_at"])
    for item in met:
        assert str(item["first_response_at"]) <= str(item["due_at"])


def test_first_responses_per_team_member(
    clients: dict[str, TestClient], store: Store, expected: dict[str, tuple[datetime, datetime | None, str | None]]
) -> None:
    counts: dict[str, int] = {}
    for _asked, _first, user in expected.values():
        if user is not None:
            counts[user] = counts.get(user, 0) + 1
    busiest = max(counts, key=lambda user: (counts[user], user))
    token = csrf_of(clients["ada"], "/admin/inbox")
    for name in ("mo", "ann"):
        refused = clients[name].post(
            "/admin/inbox/team",
            data={"name": name, "identity_id": f"qc:u{busiest}", "csrf_token": csrf_of(clients[name])},
        )
        assert refused.status_code == 403
    linked = clients["ada"].post(
        "/admin/inbox/team", data={"name": "mo", "identity_id": f"qc:u{busiest}", "csrf_token": token}
    )
    assert linked.status_code == 200 and f'data-identity="qc:u{busiest}"' in linked.text
    bad = clients["ada"].post("/admin/inbox/team", data={"name": "mo", "identity_id": "qc:nobody", "csrf_token": token})
    assert bad.status_code == 400
    try:
        page = clients["ann"].get("/inbox?source=qc").text
        row = re.search(r'<tr data-user="mo"><td>mo</td><td class="num">(\d+)</td>', page)
        assert row is not None and int(row.group(1)) == counts[busiest]
        answered_by_mo = [item for item in _api(clients["ann"], "answered").values() if item["answered_by"] == "mo"]
        assert len(answered_by_mo) == counts[busiest]
    finally:
        clients["ada"].post(
            "/admin/inbox/team",
            data={"action": "unlink", "identity_id": f"qc:u{busiest}", "csrf_token": token},
        )
    assert 'data-user="mo"' not in clients["ann"].get("/inbox?source=qc").text


def test_settings_are_for_admins_and_change_the_due_times(clients: dict[str, TestClient]) -> None:
    for name in ("mo", "ann"):
        assert clients[name].get("/admin/inbox").status_code == 403
        refused = clients[name].post(
            "/admin/inbox/settings", data={"timezone": "Asia/Tokyo", "csrf_token": csrf_of(clients[name])}
        )
        assert refused.status_code == 403
    token = csrf_of(clients["ada"], "/admin/inbox")
    assert clients["ada"].post("/admin/inbox/settings", data={"timezone": "Asia/Tokyo"}).status_code == 403
    wrong = clients["ada"].post("/admin/inbox/settings", data={"hours": "18:00-09:00", "csrf_token": token})
    assert wrong.status_code == 400 and "start before they end" in wrong.text
    saved = clients["ada"].post(
        "/admin/inbox/settings",
        data={
            "timezone": "Asia/Tokyo",
            "days": "mon-fri",
            "hours": "09:00-17:00",
            "target_hours": "2",
            "csrf_token": token,
        },
    )
    assert saved.status_code == 200 and "Settings saved." in saved.text
    try:
        # Question 1, Monday 17:00:45 UTC = Tuesday 02:00:45 in Tokyo (UTC+9): Tuesday 09:00 JST + 2 h = 02:00 UTC.
        assert _api(clients["ann"], "all")["qc:p1"]["due_at"] == "2018-03-13T02:00:00Z"
    finally:
        restored = clients["ada"].post(
            "/admin/inbox/settings",
            data={
                "timezone": "UTC",
                "days": "mon-fri",
                "hours": "09:00-17:00",
                "target_hours": "4",
                "csrf_token": token,
            },
        )
        assert restored.status_code == 200
    assert _api(clients["ann"], "all")["qc:p1"]["due_at"] == "2018-03-13T13:00:00Z"


def test_answering_is_for_triagers_and_needs_a_live_source(clients: dict[str, TestClient]) -> None:
    question = next(iter(_api(clients["mo"], "open")))
    refused = clients["ann"].post(
        "/inbox/answer", data={"activity_id": question, "text": "hi", "csrf_token": csrf_of(clients["ann"])}
    )
    assert refused.status_code == 403
    assert clients["mo"].post("/inbox/answer", data={"activity_id": question, "text": "hi"}).status_code == 403
    token = csrf_of(clients["mo"])
    not_live = clients["mo"].post("/inbox/answer", data={"activity_id": question, "text": "hi", "csrf_token": token})
    assert not_live.status_code == 400 and "not a connected Matrix account" in not_live.text
    empty = clients["mo"].post("/inbox/answer", data={"activity_id": question, "text": "  ", "csrf_token": token})
    assert empty.status_code == 400
    assert question in _api(clients["mo"], "open")
    # Stack Exchange questions get no answer form; the state forms are there for triagers only.
    assert 'action="/inbox/answer"' not in clients["mo"].get("/inbox?source=qc").text
    assert 'action="/inbox/state"' not in clients["ann"].get("/inbox?source=qc").text


def test_assigning_keeps_the_item_open(clients: dict[str, TestClient]) -> None:
    question = next(iter(_api(clients["mo"], "open")))
    token = csrf_of(clients["mo"])
    done = clients["mo"].post(
        "/inbox/state", data={"activity_id": question, "state": "open", "assignee": "ada", "csrf_token": token}
    )
    assert done.status_code == 200
    assert _api(clients["mo"], "open")[question]["assignee"] == "ada"
    clients["mo"].post("/inbox/state", data={"activity_id": question, "state": "open", "csrf_token": token})
    assert _api(clients["mo"], "open")[question]["assignee"] is None
    bad = clients["mo"].post("/inbox/state", data={"activity_id": question, "state": "answered", "csrf_token": token})
    assert bad.status_code == 400  # answered comes from the platform, not from a button


def test_api_refuses_unknown_states_and_anonymous_users(clients: dict[str, TestClient], app_client: TestClient) -> None:
    assert clients["ann"].get("/api/inbox?state=lost").status_code == 400
    assert app_client.get("/api/inbox", follow_redirects=False).status_code == 303
    for path in ("/inbox/answer", "/admin/inbox/settings", "/admin/inbox/team", "/moderation/decide"):
        assert (
            app_client.post(path, data={"activity_id": "x", "item_id": "1", "decision": "approve"}).status_code == 401
        )


@pytest.fixture(scope="module")
def flagged(store: Store) -> dict[str, int]:
    """Three activities put in the moderation queue through the workflow's own API."""
    with store.engine.connect() as connection:
        answers = connection.execute(
            select(activities.c.id).where(activities.c.source_id == "qc", activities.c.kind == "answer").limit(2)
        ).scalars()
        first, second = list(answers)
    ids = {"approve": first, "remove": second, "dismiss": "hostile:hostile-1@example.org"}
    for activity_id in ids.values():
        moderation.flag(store, activity_id, "web-test", "flagged by the web test")
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(moderation_queue.c.activity_id, moderation_queue.c.id).where(moderation_queue.c.rule == "web-test")
        ).all()
    by_activity = {row.activity_id: row.id for row in rows}
    return {decision: by_activity[activity_id] for decision, activity_id in ids.items()}


def test_moderation_queue_roles_decisions_and_audit(
    clients: dict[str, TestClient], store: Store, flagged: dict[str, int]
) -> None:
    for name in USERS:
        page = clients[name].get("/moderation")
        assert page.status_code == 200
        assert all(f'data-item="{item}"' in page.text for item in flagged.values())
        assert ('action="/moderation/decide"' in page.text) == (name != "ann")
        assert clients[name].get("/moderation/log").status_code == 200
    # Community text is shown as text.
    assert HOSTILE_SUBJECT not in clients["ann"].get("/moderation").text
    refused = clients["ann"].post(
        "/moderation/decide",
        data={
            "item_id": flagged["approve"],
            "decision": "approve",
            "csrf_token": csrf_of(clients["ann"], "/moderation"),
        },
    )
    assert refused.status_code == 403
    forged = clients["mo"].post(
        "/moderation/decide", data={"item_id": flagged["approve"], "decision": "approve", "csrf_token": "forged"}
    )
    assert forged.status_code == 403
    token = csrf_of(clients["mo"], "/moderation")
    notices = {}
    for decision, item_id in flagged.items():
        done = clients["mo"].post(
            "/moderation/decide",
            data={"item_id": item_id, "decision": decision, "reason": f"web {decision}", "csrf_token": token},
        )
        assert done.status_code == 200
        notices[decision] = done.url.params["done"]
    assert notices == {"approve": "approved", "remove": "removed_here", "dismiss": "dismissed"}
    unknown = clients["mo"].post(
        "/moderation/decide", data={"item_id": 999999, "decision": "approve", "csrf_token": token}
    )
    assert unknown.status_code == 400
    with store.engine.connect() as connection:
        entries = connection.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.reason, audit_log.c.rule).where(
                audit_log.c.rule == "web-test"
            )
        ).all()
        states = dict(
            connection.execute(
                select(moderation_queue.c.id, moderation_queue.c.state).where(moderation_queue.c.rule == "web-test")
            ).all()
        )
    assert sorted(entries) == sorted(("mo", decision, f"web {decision}", "web-test") for decision in flagged)
    assert states == {flagged["approve"]: "approved", flagged["remove"]: "removed", flagged["dismiss"]: "dismissed"}
    log = clients["ann"].get("/moderation/log?action=remove").text
    assert "web remove" in log and "web approve" not in log
    assert "web approve" in clients["ann"].get("/moderation/log").text
    pending = clients["ann"].get("/moderation").text
    assert not any(f'data-item="{item}"' in pending for item in flagged.values())
    assert all(f'data-item="{item}"' in clients["ann"].get("/moderation?state=all").text for item in flagged.values())


def test_new_pages_in_french(clients: dict[str, TestClient]) -> None:
    french = {"Accept-Language": "fr"}
    assert "<h1>File de modération</h1>" in clients["ann"].get("/moderation", headers=french).text
    assert "<h1>Journal d’audit</h1>" in clients["ann"].get("/moderation/log", headers=french).text
    inbox_page = clients["ann"].get("/inbox?source=qc&show=all", headers=french).text
    assert "Premières réponses par membre de l’équipe" in inbox_page or "Aucun membre" in inbox_page
    assert "objectif atteint" in inbox_page
    assert (
        "<h1>Réglages de la boîte de réception et équipe</h1>"
        in clients["ada"].get("/admin/inbox", headers=french).text
    )


def test_cli_lists_the_same_items_as_the_api(clients: dict[str, TestClient], store: Store) -> None:
    import json

    from click.testing import CliRunner

    from parvis.cli import main

    url = store.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    listed = runner.invoke(main, ["--db", url, "inbox", "list", "--json", "--state", "open", "--source", "qc"])
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.stdout)
    assert [item["activity_id"] for item in document["items"]] == list(_api(clients["ann"], "open"))
    assert document["total"] == len(document["items"])
    bad = runner.invoke(main, ["--db", url, "inbox", "config", "--timezone", "Nowhere/Land"])
    assert bad.exit_code != 0 and "unknown time zone" in bad.output
