"""Shared data for the web tests: real archives imported once per test session with the real commands.

Holds no tests itself; ``web_store_url`` is called by the test_web_* modules.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import httpx
import pytest

from tests.cli_run import parvis

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
USERS = {"ada": "admin", "mo": "moderator", "ann": "analyst"}
HOSTILE_SUBJECT = "<script>window.__pwned = 'subject'</script> help!"
HOSTILE_NAME = "<img src=x onerror=\"window.__pwned='name'\">"
HOSTILE_MBOX = f"""From evil@example.org Mon Mar  2 10:00:00 2020
From: "{HOSTILE_NAME}" <evil@example.org>
Subject: {HOSTILE_SUBJECT}
Date: Mon, 2 Mar 2020 10:00:00 +0000
Message-ID: <hostile-1@example.org>

Click <a href="javascript:window.__pwned='link'">here</a> or <svg onload="window.__pwned='svg'"></svg>
<iframe src="javascript:window.__pwned='iframe'"></iframe> javascript:window.__pwned='bare'

"""


def web_store_url(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> str:
    """A SQLite store holding quantumcomputing (Stack Exchange), r-package-devel (mail) and a hostile mail."""
    root = tmp_path_factory.getbasetemp() / "web-store"
    url = f"sqlite:///{root / 'parvis.db'}"
    done = root / "ready"
    if done.exists():
        return url
    root.mkdir(exist_ok=True)
    se = parvis("import", "stackexchange", str(shared_data / "se_quantumcomputing_2018"), "--source", "qc", db=url)
    assert se.returncode == 0, se.stderr
    archive = sorted((shared_data / "mailinglist_r_package_devel" / "archive").glob("*.txt.gz"))
    mail = parvis("import", "mbox", *map(str, archive), "--source", "rpkg", db=url)
    assert mail.returncode == 0, mail.stderr
    hostile = root / "hostile.mbox.gz"
    with gzip.open(hostile, "wt") as handle:
        handle.write(HOSTILE_MBOX)
    evil = parvis("import", "mbox", str(hostile), "--source", "hostile", db=url)
    assert evil.returncode == 0, evil.stderr
    secret = root / "password"
    secret.write_text(PASSWORD + "\n")
    for name, role in USERS.items():
        added = parvis("users", "add", name, "--role", role, "--password-file", str(secret), db=url)
        assert added.returncode == 0, added.stderr
        assert PASSWORD not in added.stdout + added.stderr
    done.write_text("ok")
    return url


def log_in(client: httpx.Client, name: str, password: str = PASSWORD, **fields: str) -> httpx.Response:
    """Log in through the form, as a browser does: the login page's CSRF token, then the POST."""
    token = CSRF.search(client.get("/login").text)
    assert token is not None
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token.group(1), **fields})
