"""Ready pages: gzip, ETag/304, the page cache's keys and invalidation, sessions remembered in memory.

Data: quarters of the real r-package-devel archive, imported with ``parvis import``.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from parvis.connectors.mbox import MailArchiveConnector
from parvis.ingest import close_run, ingest, open_run
from parvis.store import Store, open_store
from parvis.web import auth, cache
from parvis.web.app import create_app
from parvis.web.cache import ViewCache, pages, views
from parvis.web.queries import store_state
from parvis.web.ready import accepts_gzip, etag_matches
from tests.cli_run import parvis
from tests.test_web_data import PASSWORD, log_in

SECRET = b"test secret"


def archive(shared_data: Path, quarter: str) -> str:
    return str(shared_data / "mailinglist_r_package_devel" / "archive" / f"{quarter}.txt.gz")


def new_store(root: Path, shared_data: Path) -> Store:
    url = f"sqlite:///{root / 'parvis.db'}"
    done = parvis("import", "mbox", archive(shared_data, "2015q2"), "--source", "rpkg", db=url)
    assert done.returncode == 0, done.stderr
    store = open_store(url)
    auth.add_user(store, "ann", PASSWORD, "analyst")
    auth.add_user(store, "ada", PASSWORD, "admin")
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Store]:
    opened = new_store(tmp_path_factory.mktemp("ready"), shared_data)
    yield opened
    opened.close()


def client_of(store: Store, name: str) -> TestClient:
    client = TestClient(create_app(store, secret=SECRET))
    assert log_in(client, name, next="/healthz").status_code == 200
    return client


def test_gzip_for_clients_that_accept_it(store: Store) -> None:
    client = client_of(store, "ann")
    for path in ("/", "/members", "/members?sort=activities"):
        zipped = client.get(path, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
        plain = client.get(path, headers={"Accept-Encoding": "identity"})
        assert zipped.status_code == plain.status_code == 200
        assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
        assert "Accept-Encoding" in zipped.headers["vary"] and "Cookie" in zipped.headers["vary"]
        # The client decoded the gzip body: the same page as the plain one, much smaller on the wire.
        assert zipped.text == plain.text and "rpkg" in plain.text
        assert int(zipped.headers["content-length"]) < len(plain.content) / 3
        assert gzip.decompress(raw_body(client, path)) == plain.content
        assert zipped.headers["content-security-policy"] == plain.headers["content-security-policy"]
    assert client.get("/", headers={"Accept-Encoding": "gzip;q=0, *"}).headers.get("content-encoding") is None


def raw_body(client: TestClient, path: str) -> bytes:
    with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
        return b"".join(response.iter_raw())


def test_etag_answers_304_for_the_same_page_only(store: Store) -> None:
    ann, ada = client_of(store, "ann"), client_of(store, "ada")
    first = ann.get("/")
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and first.headers["cache-control"] == "private, no-cache"
    again = ann.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert "script-src 'self'" in again.headers["content-security-policy"]
    # Another user's page carries another name and CSRF token: another ETag, and no 304 for ann's.
    other = ada.get("/", headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag and "ada" in other.text
    assert ann.get("/?period=all", headers={"If-None-Match": etag}).status_code == 200
    # Member names are never kept by the browser.
    assert ann.get("/members").headers["cache-control"] == "no-store"


def test_a_cached_page_is_built_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "STATE_TTL", 60.0)
    client = client_of(store, "ann")
    built: list[int] = []
    original = cache.ViewCache.get

    def counting_get(self: ViewCache, *args: object, **kwargs: object) -> object:
        if self is pages:
            built.append(1)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cache.ViewCache, "get", counting_get)
    assert client.get("/members?q=a").status_code == 200
    assert built == [1]
    for _ in range(3):
        assert client.get("/members?q=a").status_code == 200
    # Served by peek from the event loop: the page cache's get was not called again.
    assert built == [1]


def test_logout_and_password_change_end_the_session_at_once(store: Store) -> None:
    client = client_of(store, "ann")
    client.follow_redirects = False
    assert client.get("/").status_code == 200
    session = client.cookies.get("parvis_session")
    assert session is not None
    assert client.post("/logout", data={"csrf_token": auth.csrf_token(SECRET, session)}).status_code == 303
    # The session was remembered as valid a moment ago; logging out forgets it in this process.
    client.cookies.set("parvis_session", session)
    assert client.get("/").status_code == 303

    other = client_of(store, "ada")
    other.follow_redirects = False
    assert other.get("/").status_code == 200
    auth.set_password(store, "ada", PASSWORD)
    assert other.get("/").status_code == 303


def test_a_new_store_state_rebuilds_the_page(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "STATE_TTL", 0.0)
    store = new_store(tmp_path, shared_data)
    try:
        client = client_of(store, "ann")
        before = client.get("/")
        assert 'value="rpkg"' in before.text and 'value="rpkg-later"' not in before.text
        assert client.get("/", headers={"If-None-Match": before.headers["etag"]}).status_code == 304
        done = parvis(
            "import", "mbox", archive(shared_data, "2015q3"), "--source", "rpkg-later", db=str(store.engine.url)
        )
        assert done.returncode == 0, done.stderr
        after = client.get("/", headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
        assert 'value="rpkg-later"' in after.text
    finally:
        store.close()


def test_a_live_session_changes_the_state_when_it_starts_and_ends_only(tmp_path: Path, shared_data: Path) -> None:
    store = new_store(tmp_path, shared_data)
    try:
        before = store_state(store)
        run = open_run(store, "live", "mbox")
        started = store_state(store)
        assert started != before
        # Batches of 100 mails: the run's finished_at moves at each of them, the state does not.
        ingest(store, MailArchiveConnector([archive(shared_data, "2015q3")]), "live", batch_size=100, run=run)
        assert run.totals["added"] > 100
        assert store_state(store) == started
        close_run(store, run)
        assert store_state(store) != started
    finally:
        store.close()


class Clock:
    """Stands for the time module in parvis.web.cache: time moves only when a test moves it."""

    now = 1000.0

    @classmethod
    def monotonic(cls) -> float:
        return cls.now


def wait_for(found: str, read: Callable[[], object]) -> None:
    deadline = time.monotonic() + 10
    while read() != found and time.monotonic() < deadline:
        time.sleep(0.01)


def test_an_aged_value_is_served_while_it_is_refreshed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "time", Clock)
    values = ViewCache()
    assert values.get(store, "key", lambda: "first") == "first"
    started, release = threading.Event(), threading.Event()

    def slow_second() -> str:
        started.set()
        release.wait(10)
        return "second"

    Clock.now += cache.TTL
    # Aged: the old value comes back at once, one refresh runs in the background.
    assert values.get(store, "key", slow_second) == "first"
    assert started.wait(10)
    assert values.get(store, "key", lambda: pytest.fail("a second refresh started")) == "first"
    release.set()
    wait_for("second", lambda: values.peek(store, "key"))
    assert values.get(store, "key", lambda: pytest.fail("computed again")) == "second"


def test_a_refresh_rebuilds_aged_values_it_reads(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "time", Clock)
    values = ViewCache()
    inner = {"value": "old facts"}

    def outer() -> str:
        return "page of " + values.get(store, "inner", lambda: inner["value"])

    assert values.get(store, "outer", outer) == "page of old facts"
    inner["value"] = "new facts"
    Clock.now += cache.TTL
    assert values.get(store, "outer", outer) == "page of old facts"
    wait_for("page of new facts", lambda: values.peek(store, "outer"))
    # The background refresh of "outer" recomputed the aged "inner" instead of reusing it.
    assert values.peek(store, "outer") == "page of new facts"
    assert values.peek(store, "inner") == "new facts"


def test_accept_encoding_and_if_none_match_parsing() -> None:
    assert accepts_gzip("gzip, deflate, br, zstd") and accepts_gzip("br;q=1.0, gzip;q=0.8") and accepts_gzip("*")
    assert not accepts_gzip(None) and not accepts_gzip("") and not accepts_gzip("br, zstd")
    assert not accepts_gzip("gzip;q=0") and not accepts_gzip("*, gzip;q=0") and not accepts_gzip("gzip;q=x")
    assert etag_matches('W/"abc"', 'W/"abc"') and etag_matches('"abc"', 'W/"abc"')
    assert etag_matches('"x", W/"abc"', 'W/"abc"') and etag_matches("*", 'W/"abc"')
    assert not etag_matches(None, 'W/"abc"') and not etag_matches('W/"abd"', 'W/"abc"')


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    views.clear()
    pages.clear()
    yield
