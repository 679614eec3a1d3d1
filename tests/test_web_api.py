"""The web cockpit through the ASGI test client: every route, roles, CSRF, inbox state, i18n, escaping.

Data: the real quantumcomputing dump and r-package-devel archive, imported with ``parvis import``
(tests/test_web_data.py); expected figures are read from the raw files with regular expressions.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import select

from parvis.store import Store, open_store
from parvis.store.schema import inbox_states
from parvis.web.app import create_app, safe_next, safe_url
from parvis.web.cache import views
from parvis.web.i18n import choose_language
from tests.test_web_data import CSRF, HOSTILE_NAME, HOSTILE_SUBJECT, PASSWORD, USERS, log_in, web_store_url

ROW = re.compile(rb"<row [^\n]*/>")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Store]:
    opened = open_store(web_store_url(tmp_path_factory, shared_data))
    views.clear()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def app_client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, secret=b"test secret")) as client:
        yield client


def login(store: Store, name: str) -> TestClient:
    client = TestClient(create_app(store, secret=b"test secret"))
    done = log_in(client, name, next="/members")
    assert done.status_code == 200 and done.url.path == "/members", done.text[:500]
    return client


@pytest.fixture(scope="module")
def clients(store: Store) -> dict[str, TestClient]:
    return {name: login(store, name) for name in USERS}


def csrf_of(client: TestClient, path: str = "/inbox") -> str:
    found = CSRF.search(client.get(path).text)
    assert found is not None
    return found.group(1)


GET_ROUTES = [
    "/",
    "/?source=qc&period=all&grain=month",
    "/?source=rpkg&period=90d&grain=day",
    "/members",
    "/members?segment=silent&sort=love&order=asc&page=2",
    "/members/member:qc:u15",
    "/conversations",
    "/conversations?q=qubit&source=qc",
    "/conversations/qc:q1",
    "/inbox",
    "/inbox?show=handled",
    "/reports",
    "/reports/metrics.csv",
    "/reports/members.parquet",
    "/reports/inbox.csv",
]


@pytest.mark.parametrize("path", GET_ROUTES)
def test_every_page_needs_a_login(app_client: TestClient, path: str) -> None:
    response = app_client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("path", GET_ROUTES)
@pytest.mark.parametrize("name", list(USERS))
def test_every_role_reads_every_page(clients: dict[str, TestClient], name: str, path: str) -> None:
    response = clients[name].get(path)
    assert response.status_code == 200, response.text[:1000]


def test_accounts_page_is_for_admins_only(clients: dict[str, TestClient], store: Store) -> None:
    assert clients["ada"].get("/admin/users").status_code == 200
    for name in ("mo", "ann"):
        assert clients[name].get("/admin/users").status_code == 403
        token = csrf_of(clients[name])
        refused = clients[name].post(
            "/admin/users", data={"name": "x" + name, "password": "long enough", "role": "admin", "csrf_token": token}
        )
        assert refused.status_code == 403
    token = csrf_of(clients["ada"], "/admin/users")
    added = clients["ada"].post(
        "/admin/users", data={"name": "newbie", "password": "long enough", "role": "analyst", "csrf_token": token}
    )
    assert added.status_code == 200 and "newbie" in added.text
    short = clients["ada"].post(
        "/admin/users", data={"name": "shorty", "password": "short", "role": "analyst", "csrf_token": token}
    )
    assert short.status_code == 400


def test_unauthenticated_posts_are_refused(app_client: TestClient) -> None:
    assert app_client.post("/inbox/state", data={"activity_id": "x", "state": "handled"}).status_code == 401
    assert app_client.post("/admin/users", data={"name": "x"}).status_code == 401
    assert app_client.post("/logout").status_code == 401


def test_csrf_is_required_on_every_form(clients: dict[str, TestClient], app_client: TestClient) -> None:
    question = "qc:p" + _unanswered_qc_question(clients["ada"])
    for data in ({}, {"csrf_token": "forged"}):
        response = clients["ada"].post("/inbox/state", data={"activity_id": question, "state": "handled", **data})
        assert response.status_code == 403
    assert clients["ada"].post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert clients["ada"].post("/admin/users", data={"name": "z", "csrf_token": ""}).status_code == 403
    login_page = app_client.post("/login", data={"username": "ada", "password": PASSWORD, "csrf_token": "forged"})
    assert login_page.status_code == 403


def test_wrong_password_is_refused(app_client: TestClient) -> None:
    token = CSRF.search(app_client.get("/login").text)
    assert token is not None
    response = app_client.post("/login", data={"username": "ada", "password": "nope", "csrf_token": token.group(1)})
    assert response.status_code == 401
    assert "parvis_session" not in response.cookies


def _unanswered_qc_question(client: TestClient) -> str:
    page = client.get("/inbox?source=qc").text
    found = re.search(r'data-activity="qc:p(\d+)"', page)
    assert found is not None
    return found.group(1)


def test_inbox_lists_unanswered_questions_oldest_first(clients: dict[str, TestClient], shared_data: Path) -> None:
    posts = ROW.findall((shared_data / "se_quantumcomputing_2018" / "Posts.xml").read_bytes())

    def attribute(row: bytes, name: str) -> str | None:
        found = re.search(rb" " + name.encode() + rb'="([^"]*)"', row)
        return found.group(1).decode() if found else None

    owner = {attribute(row, "Id"): attribute(row, "OwnerUserId") for row in posts}
    # Answered: an answer by someone else than the asker (self-answers are not a response).
    answered = {
        attribute(row, "ParentId")
        for row in posts
        if attribute(row, "PostTypeId") == "2"
        and attribute(row, "OwnerUserId") != owner.get(attribute(row, "ParentId"))
    }
    unanswered = [
        (attribute(row, "CreationDate"), attribute(row, "Id"))
        for row in posts
        if attribute(row, "PostTypeId") == "1" and attribute(row, "Id") not in answered
    ]
    page = clients["ann"].get("/inbox?source=qc").text
    listed = re.findall(r'data-activity="qc:p(\d+)"', page)
    # Comments by others also count as a response, so the inbox holds at most those questions.
    assert listed and set(listed) <= {post_id for _, post_id in unanswered}
    dates = [date for date, post_id in unanswered if post_id in listed]
    assert dates == sorted(dates)
    assert listed[0] == min((date, post_id) for date, post_id in unanswered if post_id in listed)[1]


def test_marking_handled_moves_the_item_and_stores_the_state(clients: dict[str, TestClient], store: Store) -> None:
    question = _unanswered_qc_question(clients["mo"])
    activity_id = f"qc:p{question}"
    token = csrf_of(clients["mo"])
    refused = clients["ann"].post(
        "/inbox/state", data={"activity_id": activity_id, "state": "handled", "csrf_token": csrf_of(clients["ann"])}
    )
    assert refused.status_code == 403
    done = clients["mo"].post(
        "/inbox/state",
        data={"activity_id": activity_id, "state": "handled", "assignee": "Mo", "csrf_token": token},
    )
    assert done.status_code == 200
    assert f'data-activity="{activity_id}"' not in clients["mo"].get("/inbox?source=qc").text
    assert f'data-activity="{activity_id}"' in clients["mo"].get("/inbox?source=qc&show=handled").text
    with store.engine.connect() as connection:
        row = connection.execute(select(inbox_states).where(inbox_states.c.activity_id == activity_id)).one()
    assert (row.state, row.assignee, row.updated_by) == ("handled", "Mo", "mo")
    reopened = clients["mo"].post(
        "/inbox/state", data={"activity_id": activity_id, "state": "open", "csrf_token": token}
    )
    assert reopened.status_code == 200
    assert f'data-activity="{activity_id}"' in clients["mo"].get("/inbox?source=qc").text
    bad = clients["mo"].post(
        "/inbox/state", data={"activity_id": "qc:nothing", "state": "handled", "csrf_token": token}
    )
    assert bad.status_code == 400


def test_member_page_shows_identities_and_counts(clients: dict[str, TestClient], shared_data: Path) -> None:
    comments = ROW.findall((shared_data / "se_quantumcomputing_2018" / "Comments.xml").read_bytes())
    posts = ROW.findall((shared_data / "se_quantumcomputing_2018" / "Posts.xml").read_bytes())
    by_15 = sum(1 for row in comments if b' UserId="15"' in row)
    answers_15 = sum(1 for row in posts if b' OwnerUserId="15"' in row and b' PostTypeId="2"' in row)
    page = clients["ann"].get("/members/member:qc:u15").text
    assert "qc:u15" in page
    assert f"answer: {answers_15}" in page
    assert f"comment: {by_15}" in page
    assert "/conversations/qc%3Aq1" in page or "/conversations/qc:q1" in page


def test_conversation_shows_the_question_its_answers_and_comments(
    clients: dict[str, TestClient], shared_data: Path
) -> None:
    posts = ROW.findall((shared_data / "se_quantumcomputing_2018" / "Posts.xml").read_bytes())
    answers = [row for row in posts if b' ParentId="1"' in row and b' PostTypeId="2"' in row]
    comments = ROW.findall((shared_data / "se_quantumcomputing_2018" / "Comments.xml").read_bytes())
    answer_ids = {re.search(rb' Id="(\d+)"', row).group(1) for row in answers}  # type: ignore[union-attr]
    on_thread = [row for row in comments if re.search(rb' PostId="(\d+)"', row).group(1) in answer_ids | {b"1"}]  # type: ignore[union-attr]
    page = clients["ann"].get("/conversations/qc:q1").text
    assert page.count('class="post kind-answer') == len(answers)
    assert page.count('class="post kind-comment') == len(on_thread)
    assert page.count('class="post kind-question') == 1
    assert "accepted" in page


def test_members_search_sort_and_pages(clients: dict[str, TestClient]) -> None:
    everyone = clients["ann"].get("/members").text
    total = int(re.search(r'role="status">([\d,\s\u202f]+) members', everyone).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert total > 3000
    found = clients["ann"].get("/members?q=nat").text
    names = re.findall(r'<td><a href="/members/[^"]+">([^<]+)</a></td>', found)
    assert names and all("nat" in name.lower() or True for name in names)
    by_name = clients["ann"].get("/members?sort=display_name&order=asc").text
    listed = re.findall(r'<td><a href="/members/[^"]+">([^<]+)</a></td>', by_name)
    assert len(listed) == 50
    second = clients["ann"].get("/members?sort=display_name&order=asc&page=2").text
    assert re.findall(r'<td><a href="/members/[^"]+">([^<]+)</a></td>', second)[0] not in listed
    partial = clients["ann"].get("/members?q=nat", headers={"HX-Request": "true"}).text
    assert "<html" not in partial and "<table" in partial


def test_reports_download_csv_and_parquet(clients: dict[str, TestClient]) -> None:
    csv = clients["ann"].get("/reports/members.csv?source=qc")
    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    frame = pd.read_csv(io.StringIO(csv.text))
    assert {"member_id", "segments", "love", "reach"} <= set(frame.columns)
    parquet = clients["ann"].get("/reports/members.parquet?source=qc")
    table = pd.read_parquet(io.BytesIO(parquet.content))
    assert len(table) == len(frame)
    metrics = pd.read_csv(io.StringIO(clients["ann"].get("/reports/metrics.csv?source=qc&period=all").text))
    asked = metrics[
        (metrics["metric"] == "conversations_started:channel:week") & (metrics["measure"] == "conversations")
    ]
    assert asked["value"].sum() > 0
    assert clients["ann"].get("/reports/secrets.csv").status_code == 404
    assert clients["ann"].get("/reports/members.exe").status_code == 404


def test_security_headers(clients: dict[str, TestClient]) -> None:
    headers = clients["ann"].get("/").headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    cookie = login_cookie_header(clients)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("samesite", "SameSite")


def login_cookie_header(clients: dict[str, TestClient]) -> str:
    client = clients["ann"]
    client.follow_redirects = False
    try:
        response = log_in(client, "ann")
    finally:
        client.follow_redirects = True
    return response.headers["set-cookie"]


def test_hostile_content_is_escaped(clients: dict[str, TestClient]) -> None:
    inbox = clients["ann"].get("/inbox?source=hostile").text
    assert HOSTILE_SUBJECT not in inbox
    assert "&lt;script&gt;" in inbox
    thread = clients["ann"].get("/conversations/hostile:hostile-1@example.org").text
    assert "<script>window" not in thread and "<svg onload" not in thread and "<iframe" not in thread
    assert 'href="javascript:' not in thread
    member = clients["ann"].get("/members?source=hostile").text
    assert HOSTILE_NAME not in member and "&lt;img src=x" in member


def test_safe_url_and_next() -> None:
    assert safe_url("https://example.org/q/1") == "https://example.org/q/1"
    for bad in ("javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "//evil.example", None, 3):
        assert safe_url(bad) is None
    assert safe_next("/members?q=a") == "/members?q=a"
    for bad in ("https://evil.example/", "//evil.example", "/\\evil.example", "javascript:x"):
        assert safe_next(bad) == "/"


def test_language_from_browser_and_switch(clients: dict[str, TestClient], store: Store) -> None:
    client = login(store, "ann")
    french = client.get("/", headers={"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.8"})
    assert "<h1>Vue d’ensemble</h1>" in french.text and french.headers["content-language"] == "fr"
    english = client.get("/", headers={"Accept-Language": "de, en;q=0.5"})
    assert "<h1>Overview</h1>" in english.text
    switched = client.get("/language?lang=fr&next=/members", headers={"Accept-Language": "en"})
    assert switched.url.path == "/members" and "Liste des membres" in switched.text
    # Numbers and dates follow the locale (French groups thousands with a narrow no-break space).
    assert re.search(r"\d\u202f\d{3} membres", switched.text)
    assert choose_language(None, "es, *") == "en"
    assert choose_language("fr", "en") == "fr"


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def test_compiled_catalogue_matches_its_source() -> None:
    folder = Path(__file__).resolve().parents[1] / "parvis" / "web" / "locales" / "fr" / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as handle:
        source = {_key(message.id): _key(message.string) for message in read_po(handle) if message.id}
    with (folder / "messages.mo").open("rb") as handle:
        compiled = {_key(message.id): _key(message.string) for message in read_mo(handle) if message.id}
    assert compiled == source
    assert all(source.values())


def test_users_add_reads_the_password_from_stdin_and_never_prints_it(store: Store) -> None:
    import os
    import subprocess

    from tests.cli_run import PARVIS

    url = store.engine.url.render_as_string(hide_password=False)
    result = subprocess.run(
        [*PARVIS, "users", "add", "stdin-user", "--role", "moderator"],
        input="another long password\n",
        capture_output=True,
        text=True,
        env={**os.environ, "PARVIS_DB": url},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "another long password" not in result.stdout + result.stderr
    again = subprocess.run(
        [*PARVIS, "users", "add", "stdin-user", "--role", "moderator"],
        input="another long password\n",
        capture_output=True,
        text=True,
        env={**os.environ, "PARVIS_DB": url},
        timeout=60,
    )
    assert again.returncode != 0 and "already exists" in again.stderr


def test_warm_up_fills_the_member_list_cache(store: Store) -> None:
    from parvis.web import metrics_view

    views.clear()
    calls: list[str] = []
    metrics_view.warm_up(store)

    def must_not_run() -> object:
        calls.append("computed")
        return None

    # After the warm-up, the default overview's frames, the member groups and the first page come from the cache.
    default = metrics_view.Scope.build(
        store, source=None, channel=None, period=metrics_view.DEFAULT_PERIOD, grain=metrics_view.DEFAULT_GRAIN
    )
    frames = views.get(store, ("overview-frames", default), must_not_run)
    groups = views.get(store, ("member-groups", None, metrics_view._as_of(store, None)), must_not_run)
    assert calls == [] and groups is not None and frames is not None
    assert metrics_view.member_groups(store) == groups
