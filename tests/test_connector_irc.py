"""IRC connector on a small hand-written irssi log: a log style the real Ubuntu logs lack."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from parvis.connectors.irc import IrcLogConnector
from parvis.records import Activity, Identity, Quarantined

IRSSI_LOG = """\
--- Log opened Mon Jan 04 10:00:00 2021
10:00 -!- alice [~a@host.example] has joined #parvis
10:01 <@alice> hello there
10:02 -bob- a notice
10:03  * alice waves
23:59 < bob> late question?
--- Day changed Tue Jan 05 2021
00:01 <alice> bob: early answer
25:00 <alice> a line from nowhere
--- Log closed Tue Jan 05 00:05:00 2021
"""


def test_irssi_log_events_day_change_and_bookkeeping_lines(tmp_path: Path) -> None:
    path = tmp_path / "parvis.log"
    path.write_text(IRSSI_LOG)
    records = list(IrcLogConnector([path], channel="#parvis").records({}))
    found = [(r.kind, r.author, r.created_at, r.text_plain) for r in records if isinstance(r, Activity)]
    assert found == [
        ("join", "nick:alice", datetime(2021, 1, 4, 10, 0, tzinfo=UTC), "alice [~a@host.example] has joined #parvis"),
        ("message", "nick:alice", datetime(2021, 1, 4, 10, 1, tzinfo=UTC), "hello there"),
        ("notice", "nick:bob", datetime(2021, 1, 4, 10, 2, tzinfo=UTC), "a notice"),
        ("action", "nick:alice", datetime(2021, 1, 4, 10, 3, tzinfo=UTC), "waves"),
        ("message", "nick:bob", datetime(2021, 1, 4, 23, 59, tzinfo=UTC), "late question?"),
        ("message", "nick:alice", datetime(2021, 1, 5, 0, 1, tzinfo=UTC), "bob: early answer"),
    ]
    activities = [r for r in records if isinstance(r, Activity)]
    assert activities[-1].parent == activities[-2].native_id
    assert sorted(r.handle for r in records if isinstance(r, Identity)) == ["alice", "bob"]
    # Only the impossible clock is quarantined, not the logger's own "---" lines.
    assert [(q.reason, q.raw.strip()) for q in records if isinstance(q, Quarantined)] == [
        ("impossible time", b"25:00 <alice> a line from nowhere")
    ]
