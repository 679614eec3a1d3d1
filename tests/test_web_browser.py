"""The cockpit in a real browser (headless Chromium from Debian, driven by Playwright).

Logs in, opens every page on the imported real data, filters, switches language, follows a member
to a conversation, marks an inbox item handled, and proves hostile community content does not run.
No console error may appear; screenshots go to test-artifacts/web/.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn

from parvis.store import open_store
from parvis.web.app import create_app
from parvis.web.cache import views
from tests.test_web_data import PASSWORD, web_store_url

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"


def _wait_until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (bash scripts/setup.sh --dev installs it)")
    store = open_store(web_store_url(tmp_path_factory, shared_data))
    views.clear()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(store, secret=b"browser test"), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


def test_a_morning_in_the_cockpit(base_url: str, browser: object) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}") if message.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(base_url + "/")
    assert "/login" in page.url
    page.get_by_label("User name").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base_url + "/")
    # Charts render (SVG from Vega-Lite) under the CSP without eval.
    page.wait_for_selector(".vega svg", timeout=30_000)
    assert page.locator("[data-kpi]").count() == 6
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

    page.select_option("#f-source", "qc")
    page.select_option("#f-period", "all")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**source=qc**")
    page.wait_for_selector(".vega svg")
    assert page.locator("#f-source").input_value() == "qc"

    page.get_by_role("link", name="Members").first.click()
    page.wait_for_url("**/members")
    assert page.locator(".group").count() >= 4
    page.fill("#f-q", "nat")
    page.wait_for_url("**q=nat**")
    # Locator polling, not wait_for_function: its string predicates call eval, which the CSP refuses.
    _wait_until(lambda: page.locator("table.members tbody tr").count() < 50, "the filtered member list")
    page.screenshot(path=str(ARTIFACTS / "members.png"), full_page=True)
    page.locator("table.members tbody a").first.click()
    page.wait_for_url("**/members/member**")
    assert page.locator("h2#identities-title").is_visible()
    page.screenshot(path=str(ARTIFACTS / "member.png"), full_page=True)
    page.locator("table.conversations tbody a").first.click()
    page.wait_for_url("**/conversations/**")
    assert page.locator("ol.thread li.post").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "conversation.png"), full_page=True)

    page.goto(base_url + "/inbox?source=qc")
    rows = page.locator("table.inbox tbody tr")
    before = rows.count()
    first = rows.first.get_attribute("data-activity")
    rows.first.get_by_role("button", name="Mark handled").click()
    page.locator(f'[data-activity="{first}"]').wait_for(state="detached")
    assert rows.count() == before - 1
    page.reload()
    assert page.locator(f'[data-activity="{first}"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "inbox.png"), full_page=True)
    # Reopen it from the handled list, so the shared store is as the other test modules expect.
    page.goto(base_url + "/inbox?source=qc&show=handled")
    page.locator(f'[data-activity="{first}"]').get_by_role("button", name="Reopen").click()
    page.goto(base_url + "/inbox?source=qc")
    assert page.locator(f'[data-activity="{first}"]').count() == 1

    page.get_by_role("link", name="Français").click()
    page.wait_for_selector("h1:has-text('Boîte de réception')")
    page.get_by_role("link", name="Vue d’ensemble").click()
    page.wait_for_selector(".vega svg")
    assert page.locator("h1").inner_text() == "Vue d’ensemble"
    page.screenshot(path=str(ARTIFACTS / "overview-fr.png"), full_page=True)

    # Hostile content: a mail whose subject, author and body carry scripts, handlers and javascript: links.
    for path in ("/inbox?source=hostile", "/conversations/hostile:hostile-1@example.org", "/members?source=hostile"):
        page.goto(base_url + path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned === undefined"), path
        assert page.locator("a[href^='javascript:']").count() == 0
    page.goto(base_url + "/conversations/hostile:hostile-1@example.org")
    # Shown as text, not run: the subject is the page's title, the body keeps its markup as characters.
    assert page.locator("h1").inner_text().startswith("<script>window.__pwned")
    assert "<svg onload=" in page.locator(".post .text").first.inner_text()
    assert page.locator(".thread script, .thread svg, .thread iframe, .thread img").count() == 0
    page.screenshot(path=str(ARTIFACTS / "hostile.png"), full_page=True)
    assert page.evaluate("window.__pwned === undefined")
    assert dialogs == []
    assert problems == []
    context.close()
