"""Mail archive connector on small hand-written archives: edge cases the real archive lacks."""

from __future__ import annotations

from pathlib import Path

from parvis.connectors.mbox import MailArchiveConnector
from parvis.records import Activity

ARCHIVE = """\
From alice at example.org  Mon Jan  4 10:00:00 2021
From: alice at example.org (Alice)
Date: Mon, 4 Jan 2021 10:00:00 +0000
Subject: [R-pkg-devel] Build fails on Windows
Message-ID: <a1@example.org>

It fails.

From bob at example.org  Mon Jan  4 11:00:00 2021
From: bob at example.org (Bob)
Date: Mon, 4 Jan 2021 11:00:00 +0000
Subject: [R-pkg-devel] Re:  Build fails on Windows
Message-ID: <b1@example.org>

Add the flag.

From carol at example.org  Mon Jan  4 12:00:00 2021
From: carol at example.org (Carol)
Date: Mon, 4 Jan 2021 12:00:00 +0000
Subject: [R-pkg-devel] Reading the manual
Message-ID: <c1@example.org>

Where is it?
"""


def activities(tmp_path: Path) -> list[Activity]:
    path = tmp_path / "2021-January.txt"
    path.write_text(ARCHIVE)
    return [record for record in MailArchiveConnector([path]).records({}) if isinstance(record, Activity)]


def test_list_tag_before_reply_prefix_is_a_reply_found_by_subject(tmp_path: Path) -> None:
    found = {record.native_id: record for record in activities(tmp_path)}
    assert [(found[key].kind, found[key].reply_by_key) for key in ("a1@example.org", "b1@example.org")] == [
        ("message", False),
        ("reply", True),
    ]
    assert found["a1@example.org"].thread_key == found["b1@example.org"].thread_key == "subject:build fails on windows"
    # "Reading" starts with "re" but is no reply prefix.
    assert found["c1@example.org"].kind == "message"
