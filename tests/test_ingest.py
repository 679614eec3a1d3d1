"""The ingest path on small hand-built communities, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from parvis.ingest import IngestError, ingest
from parvis.records import Activity, Channel, Checkpoint, Cursor, Identity, Link, ProgressFn, Quarantined, Record
from parvis.stats import store_stats
from parvis.store import Store
from parvis.store.schema import activities, conversations, identities, quarantine, raw_payloads
from tests.dbdump import snapshot

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


class ListConnector:
    """Replays a fixed list of records, honouring resume cursors per stream like a file connector."""

    platform = "test"
    default_source = "demo"

    def __init__(self, records: Sequence[Record]) -> None:
        self._records = list(records)
        self.resumed_from: dict[str, Cursor] = {}

    def total_bytes(self) -> int:
        return 0

    def records(self, resume: Mapping[str, Cursor], progress: ProgressFn | None = None) -> Iterator[Record]:
        self.resumed_from = dict(resume)
        yield from self._records


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def forum() -> list[Record]:
    return [
        Channel("general", "General"),
        Identity("alice", "alice", "Alice", raw=b"<alice/>"),
        Identity("bob", "bob", "Bob"),
        Activity("m1", "question", at(0), author="alice", channel="general", title="How to?", text_plain="How?"),
        Activity("m2", "reply", at(5), author="bob", channel="general", parent="m1", text_plain="Like so."),
        Activity("m3", "reply", at(7), author="alice", channel="general", parent="m2", text_plain="Thanks"),
        # A reply whose parent the archive does not hold: its conversation is named after the parent.
        Activity("m5", "reply", at(20), author="bob", parent="m4", title="Re: lost"),
        Activity("m6", "reply", at(21), author="alice", parent="m4", title="Re: lost"),
        Link("m3", "m1", "related"),
        Checkpoint("forum.txt", 100, "d1", 10),
    ]


def conversation_of(store: Store, native_id: str) -> str:
    with store.engine.connect() as connection:
        found = connection.execute(
            select(activities.c.conversation_id).where(activities.c.id == f"demo:{native_id}")
        ).scalar_one()
        return str(found)


def test_import_counts_and_threads(store: Store) -> None:
    summary = ingest(store, ListConnector(forum()))
    assert (summary.activities.added, summary.identities.added, summary.channels.added) == (5, 2, 1)
    assert summary.links_added == 1
    figures = store_stats(store)["sources"]["demo"]
    assert figures["activities_by_kind"] == {"question": 1, "reply": 4}
    assert figures["conversations"] == 2
    assert figures["members"] == 2
    assert conversation_of(store, "m3") == "demo:m1"
    assert conversation_of(store, "m5") == conversation_of(store, "m6") == "demo:m4"
    with store.engine.connect() as connection:
        lost = connection.execute(select(conversations).where(conversations.c.id == "demo:m4")).one()
        assert lost.root_activity_id is None
        assert lost.title == "Re: lost"
        archived = connection.execute(select(raw_payloads.c.item_id)).scalars().all()
        assert archived == ["identity:demo:alice"]


def test_missing_root_arriving_later_becomes_the_root(store: Store) -> None:
    ingest(store, ListConnector(forum()))
    root = Activity("m4", "question", at(10), author="bob", title="lost")
    summary = ingest(store, ListConnector([root]))
    assert summary.activities.added == 1
    with store.engine.connect() as connection:
        row = connection.execute(select(conversations).where(conversations.c.id == "demo:m4")).one()
    assert (row.root_activity_id, row.title, row.created_at) == ("demo:m4", "lost", at(10).replace(tzinfo=None))
    assert store_stats(store)["sources"]["demo"]["conversations"] == 2


def test_reimport_changes_nothing(store: Store) -> None:
    ingest(store, ListConnector(forum()))
    before = snapshot(store)
    summary = ingest(store, ListConnector(forum()))
    assert snapshot(store) == before
    assert (summary.added, summary.updated) == (0, 0)
    assert summary.activities.present == 5


def test_changed_record_is_updated_not_duplicated(store: Store) -> None:
    records = forum()
    ingest(store, ListConnector(records))
    edited = [
        replace(record, text_plain="Like so, edited.", edited_at=at(30))
        if isinstance(record, Activity) and record.native_id == "m2"
        else record
        for record in records
    ]
    summary = ingest(store, ListConnector(edited))
    assert (summary.activities.updated, summary.activities.added, summary.activities.present) == (1, 0, 4)
    with store.engine.connect() as connection:
        text = connection.execute(select(activities.c.text_plain).where(activities.c.id == "demo:m2")).scalar_one()
    assert text == "Like so, edited."
    assert conversation_of(store, "m2") == "demo:m1"


def test_observed_identity_fills_gaps_first_value_wins(store: Store) -> None:
    records: list[Record] = [
        Identity("addr:x", "x", None, authoritative=False),
        Identity("addr:x", "x", "Xavier", authoritative=False),
        Identity("addr:x", "x", "Xavier Other", "x@example.org", authoritative=False),
    ]
    ingest(store, ListConnector(records[:1]))
    ingest(store, ListConnector(records[1:]))
    with store.engine.connect() as connection:
        row = connection.execute(select(identities).where(identities.c.id == "demo:addr:x")).one()
    assert (row.display_name, row.email) == ("Xavier", "x@example.org")


def test_thread_key_reply_joins_latest_conversation_in_window(store: Store) -> None:
    records: list[Record] = [
        Activity("a", "message", at(0), title="Build fails", thread_key="subject:build fails"),
        Activity("b", "message", at(60 * 24 * 90), title="Build fails", thread_key="subject:build fails"),
        Activity(
            "c", "reply", at(60 * 24 * 91), title="Re: Build fails", thread_key="subject:build fails", reply_by_key=True
        ),
        # Too late for any conversation with that key: it starts its own.
        Activity(
            "d",
            "reply",
            at(60 * 24 * 200),
            title="Re: Build fails",
            thread_key="subject:build fails",
            reply_by_key=True,
        ),
    ]
    ingest(store, ListConnector(records))
    assert conversation_of(store, "a") == "demo:a"
    assert conversation_of(store, "b") == "demo:b"
    assert conversation_of(store, "c") == "demo:b"
    assert conversation_of(store, "d") == "demo:d"


def test_quarantine_keeps_raw_bytes_once(store: Store) -> None:
    bad = Quarantined("dump.xml", "line 3, byte 120", "not well-formed", b'<row Id="\xff')
    first = ingest(store, ListConnector([bad]))
    second = ingest(store, ListConnector([bad]))
    assert (first.quarantined, second.quarantined, second.quarantined_before) == (1, 0, 1)
    with store.engine.connect() as connection:
        rows = connection.execute(select(quarantine.c.stream, quarantine.c.position, quarantine.c.raw)).all()
    assert [tuple(row) for row in rows] == [("dump.xml", "line 3, byte 120", b'<row Id="\xff')]


def test_cursors_are_stored_and_given_back(store: Store) -> None:
    ingest(store, ListConnector(forum()))
    connector = ListConnector([Checkpoint("forum.txt", 100, "d1", 10)])
    summary = ingest(store, connector)
    assert connector.resumed_from == {"forum.txt": Cursor(100, "d1", 10)}
    assert summary.streams_unchanged == 1


def test_source_platform_clash_is_refused(store: Store) -> None:
    ingest(store, ListConnector(forum()))
    other = ListConnector([])
    other.platform = "irc"
    with pytest.raises(IngestError, match="holds test data"):
        ingest(store, other, "demo")


def test_activity_outside_any_conversation(store: Store) -> None:
    badge = Activity("b1", "badge", at(0), author="alice", in_conversation=False, title="Teacher")
    ingest(store, ListConnector([Identity("alice", "alice"), badge]))
    with store.engine.connect() as connection:
        assert connection.execute(select(activities.c.conversation_id)).scalar_one() is None
    assert store_stats(store)["sources"]["demo"]["conversations"] == 0
