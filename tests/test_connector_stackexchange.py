"""The Stack Exchange data-dump connector, on the real dumps in ../shared/data and on small hand-written ones.

Expected figures are computed inside the tests from the raw XML with a few regular expressions,
never with the connector's own code.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

from parvis.connectors._files import InputError
from parvis.connectors.stackexchange import StackExchangeConnector
from parvis.records import Activity, Channel, Checkpoint, Cursor, Identity, Link, Quarantined, Record

ROW = re.compile(rb"<row [^\n]*/>")
QC = "se_quantumcomputing_2018"
FRENCH = "se_french_language_meta"


@pytest.fixture(scope="module")
def data_root() -> Path:
    configured = os.environ.get("PARVIS_SHARED_DATA")
    root = Path(configured) if configured else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not root.is_dir():
        pytest.fail(f"real test data not found at {root} (set PARVIS_SHARED_DATA)")
    return root


# -- independent readings of the raw XML --------------------------------------------------------


def rows(path: Path) -> list[bytes]:
    return ROW.findall(path.read_bytes()) if path.exists() else []


def attr(row: bytes, name: str) -> str | None:
    found = re.search(rb" " + name.encode() + rb'="([^"]*)"', row)
    return html.unescape(found.group(1).decode()) if found else None


def utc(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


def expected_figures(folder: Path) -> dict[str, int]:
    posts = rows(folder / "Posts.xml")
    post_types = Counter(attr(row, "PostTypeId") for row in posts)
    history_types = [int(attr(row, "PostHistoryTypeId") or 0) for row in rows(folder / "PostHistory.xml")]
    links = Counter(attr(row, "LinkTypeId") for row in rows(folder / "PostLinks.xml"))
    return {
        "question": post_types["1"],
        "answer": post_types["2"],
        "wiki": post_types["4"] + post_types["5"],
        "accept": sum(1 for row in posts if attr(row, "AcceptedAnswerId")),
        "comment": len(rows(folder / "Comments.xml")),
        "vote": len(rows(folder / "Votes.xml")),
        "badge": len(rows(folder / "Badges.xml")),
        "edit": sum(1 for kind in history_types if kind in {4, 5, 6, 7, 8, 9, 24}),
        "moderation": sum(1 for kind in history_types if kind > 3 and kind not in {4, 5, 6, 7, 8, 9, 24}),
        "users": len(rows(folder / "Users.xml")),
        "linked": links["1"],
        "duplicate": links["3"],
    }


def accept_vote_dates(folder: Path) -> dict[str, datetime]:
    dates: dict[str, datetime] = {}
    for row in rows(folder / "Votes.xml"):
        if attr(row, "VoteTypeId") == "1":
            post, moment = attr(row, "PostId") or "", utc(attr(row, "CreationDate") or "")
            dates[post] = max(dates.get(post, moment), moment)
    return dates


# -- what the connector yields ------------------------------------------------------------------


@cache
def read_dump(folder: Path) -> tuple[Record, ...]:
    return tuple(StackExchangeConnector(folder).records({}))


def activities(records: Iterable[Record], kind: str | None = None) -> list[Activity]:
    return [r for r in records if isinstance(r, Activity) and (kind is None or r.kind == kind)]


def kinds_of(records: Iterable[Record]) -> dict[str, int]:
    counts = Counter(activity.kind for activity in activities(records))
    identities = [r for r in records if isinstance(r, Identity) and r.authoritative]
    links = Counter(r.kind for r in records if isinstance(r, Link))
    return {**counts, "users": len(identities), "linked": links["linked"], "duplicate": links["duplicate"]}


# -- the real dumps -----------------------------------------------------------------------------


def test_quantumcomputing_figures(data_root: Path) -> None:
    folder = data_root / QC
    published = {"question": 612, "answer": 1060, "accept": 389, "comment": 3413, "users": 3461}
    expected = expected_figures(folder)
    assert {name: expected[name] for name in published} == published
    found = kinds_of(read_dump(folder))
    assert {name: found.get(name, 0) for name in published} == published
    assert {name: found.get(name, 0) for name in expected} == expected


def test_french_meta_figures(data_root: Path) -> None:
    folder = data_root / FRENCH
    expected = expected_figures(folder)
    assert expected["edit"] > 1000 and expected["moderation"] > 100
    found = kinds_of(read_dump(folder))
    assert {name: found.get(name, 0) for name in expected} == expected


@pytest.mark.parametrize("name", [QC, FRENCH])
def test_real_dump_reads_cleanly_with_whole_file_checkpoints(data_root: Path, name: str) -> None:
    folder = data_root / name
    records = read_dump(folder)
    assert not [r for r in records if isinstance(r, Quarantined)]
    final: dict[str, Checkpoint] = {}
    since_checkpoint = 0
    for record in records:
        if isinstance(record, Checkpoint):
            final[record.stream] = record
            since_checkpoint = 0
        else:
            since_checkpoint += 1
            assert since_checkpoint <= 220
    xml_files = sorted(path.name for path in folder.glob("*.xml"))
    assert sorted(final) == xml_files
    for stream, checkpoint in final.items():
        data = (folder / stream).read_bytes()
        assert (checkpoint.offset, checkpoint.digest) == (len(data), hashlib.sha1(data).hexdigest())
        assert checkpoint.line == data.count(b"\n") + (not data.endswith(b"\n"))


@pytest.mark.parametrize("name", [QC, FRENCH])
def test_accepts_point_at_the_accepted_answer_with_the_vote_date(data_root: Path, name: str) -> None:
    folder = data_root / name
    vote_dates = accept_vote_dates(folder)
    expected = {}
    for row in rows(folder / "Posts.xml"):
        answer = attr(row, "AcceptedAnswerId")
        if answer:
            owner, owner_name = attr(row, "OwnerUserId"), attr(row, "OwnerDisplayName")
            author = f"u{owner}" if owner else (f"name:{owner_name}" if owner_name else None)
            expected[f"accept:{attr(row, 'Id')}"] = (f"p{answer}", author, vote_dates[answer], f"q{attr(row, 'Id')}")
    found = {
        a.native_id: (a.parent, a.author, a.created_at, a.conversation) for a in activities(read_dump(folder), "accept")
    }
    assert found == expected


@pytest.mark.parametrize("name", [QC, FRENCH])
def test_identities_and_references(data_root: Path, name: str) -> None:
    folder = data_root / name
    records = read_dump(folder)
    users = {f"u{attr(row, 'Id')}" for row in rows(folder / "Users.xml")}
    authoritative = {r.native_id: r for r in records if isinstance(r, Identity) and r.authoritative}
    assert set(authoritative) == users
    assert authoritative["u-1"].is_bot and authoritative["u-1"].handle == "Community"
    assert sum(identity.is_bot for identity in authoritative.values()) == 1

    deleted = {attr(row, "OwnerDisplayName") for row in rows(folder / "Posts.xml") if not attr(row, "OwnerUserId")}
    deleted |= {attr(row, "UserDisplayName") for row in rows(folder / "Comments.xml") if not attr(row, "UserId")}
    deleted |= {
        attr(row, "UserDisplayName")
        for row in rows(folder / "PostHistory.xml")
        if not attr(row, "UserId") and int(attr(row, "PostHistoryTypeId") or 0) > 3
    }
    observed = [r.native_id for r in records if isinstance(r, Identity) and not r.authoritative]
    assert len(observed) == len(set(observed))
    assert set(observed) == {f"name:{name}" for name in deleted if name}

    # Every identity and channel is yielded before the first activity that refers to it.
    emitted: set[str] = set()
    channels: set[str] = set()
    for record in records:
        if isinstance(record, Identity):
            emitted.add(record.native_id)
        elif isinstance(record, Channel):
            channels.add(record.native_id)
        elif isinstance(record, Activity):
            if record.author is not None and (record.author in users or record.author.startswith("name:")):
                assert record.author in emitted, record
            if record.channel is not None:
                assert record.channel in channels, record


def test_conversations_and_urls(data_root: Path) -> None:
    folder = data_root / QC
    records = read_dump(folder)
    posts = {attr(row, "Id"): row for row in rows(folder / "Posts.xml")}
    for answer in activities(records, "answer"):
        assert answer.conversation == f"q{attr(posts[answer.native_id[1:]], 'ParentId')}"
    for question in activities(records, "question"):
        row = posts[question.native_id[1:]]
        assert question.conversation == f"q{attr(row, 'Id')}"
        tags = re.findall(r"<([^>]+)>", attr(row, "Tags") or "")
        assert question.extras["tags"] == tags and question.channel == f"tag:{tags[0]}"
        assert question.title == attr(row, "Title")
        assert question.url is None  # the folder's name does not tell the site
    for comment in activities(records, "comment"):
        post = posts.get(comment.parent[1:] if comment.parent else "")
        is_question = post is not None and attr(post, "PostTypeId") == "1"
        assert comment.conversation == (f"q{attr(post, 'Id')}" if is_question and post else None)
    for badge in activities(records, "badge"):
        assert not badge.in_conversation and badge.title
    first = activities(records, "question")[0]
    assert first.native_id == "p1" and first.text_format == "html"
    assert first.text_plain is not None and first.text_plain.startswith("I know that a Turing machine1 can")
    assert "<" not in first.text_plain and "&quot;" not in first.text_plain


def test_resumed_reading_yields_what_an_uninterrupted_one_yields_after_the_cursor(data_root: Path) -> None:
    folder = data_root / FRENCH
    full = read_dump(folder)
    positions = [i for i, record in enumerate(full) if isinstance(record, Checkpoint)]
    streams = [record.stream for record in full if isinstance(record, Checkpoint)]
    # Inside Posts.xml, inside Comments.xml (Posts.xml done), inside PostHistory.xml, and at the very end.
    chosen = [positions[streams.index("Posts.xml") + 2], positions[streams.index("Comments.xml") + 1]]
    chosen += [positions[streams.index("PostHistory.xml") + 3], positions[-1]]

    def without_observations(records: Iterable[Record]) -> list[Record]:
        return [
            r
            for r in records
            if not isinstance(r, Checkpoint) and not (isinstance(r, Identity) and not r.authoritative)
        ]

    for cut in chosen:
        cursors = {r.stream: Cursor(r.offset, r.digest, r.line) for r in full[: cut + 1] if isinstance(r, Checkpoint)}
        resumed = list(StackExchangeConnector(folder).records(cursors))
        assert without_observations(resumed) == without_observations(full[cut + 1 :])
        # A deleted user's identity may be yielded again (harmless), never missing before use.
        known = {r.native_id for r in full[: cut + 1] if isinstance(r, Identity)}
        for record in resumed:
            if isinstance(record, Identity):
                known.add(record.native_id)
            elif isinstance(record, Activity) and record.author and record.author.startswith("name:"):
                assert record.author in known


def test_compressed_dump_reads_like_the_plain_one(data_root: Path, tmp_path: Path) -> None:
    source = data_root / FRENCH
    for path in source.glob("*.xml"):
        (tmp_path / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes(), 1))
    compressed = list(StackExchangeConnector(tmp_path).records({}))
    plain = read_dump(source)
    assert [r for r in compressed if not isinstance(r, Checkpoint)] == [
        r for r in plain if not isinstance(r, Checkpoint)
    ]


# -- a corrupted copy of a real dump ------------------------------------------------------------


def test_corrupted_copy_keeps_good_rows_and_quarantines_bad_lines(data_root: Path, tmp_path: Path) -> None:
    source = data_root / QC
    dump = tmp_path / "quantumcomputing.stackexchange.com"
    dump.mkdir()
    for name in ("Users.xml", "Tags.xml", "Votes.xml", "PostLinks.xml", "Badges.xml"):
        shutil.copy(source / name, dump / name)

    # Posts.xml: cut in the middle of a row.
    posts = (source / "Posts.xml").read_bytes()
    cut = posts.index(b"<row ", len(posts) // 2) + 300
    damaged_posts = posts[:cut]
    (dump / "Posts.xml").write_bytes(damaged_posts)

    # Comments.xml: binary junk between two rows, invalid UTF-8 inside a row, a row with a bad date.
    comment_lines = (source / "Comments.xml").read_bytes().splitlines(keepends=True)
    junk = bytes(byte for byte in range(256) if byte != ord("\n")) + b"\n"
    bad_utf8 = comment_lines[1000].replace(b'Text="', b'Text="\xff\xfe', 1)
    bad_date = comment_lines[2000].replace(b'CreationDate="', b'CreationDate="yesterday', 1)
    damaged_lines = [*comment_lines[:500], junk, *comment_lines[500:1000], bad_utf8, *comment_lines[1001:2000]]
    damaged_lines += [bad_date, *comment_lines[2001:]]
    (dump / "Comments.xml").write_bytes(b"".join(damaged_lines))

    records = list(StackExchangeConnector(dump).records({}))
    quarantined = [r for r in records if isinstance(r, Quarantined)]

    def position(lines: list[bytes], index: int) -> str:
        return f"line {index + 1}, byte {sum(len(line) for line in lines[:index])}"

    last_line_start = damaged_posts.rindex(b"\n") + 1
    last_line_number = damaged_posts.count(b"\n") + 1
    assert [(q.stream, q.position, q.raw) for q in quarantined] == [
        ("Posts.xml", f"line {last_line_number}, byte {last_line_start}", damaged_posts[last_line_start:]),
        ("Comments.xml", position(damaged_lines, 500), junk),
        ("Comments.xml", position(damaged_lines, 1001), bad_utf8),
        ("Comments.xml", position(damaged_lines, 2001), bad_date),
    ]
    reasons = [q.reason for q in quarantined]
    assert reasons[0].startswith("truncated row")
    assert "UTF-8" in reasons[1] and "UTF-8" in reasons[2]
    assert "CreationDate" in reasons[3]

    complete_posts = ROW.findall(damaged_posts)
    found = Counter(a.kind for a in activities(records))
    assert found["question"] == sum(1 for row in complete_posts if attr(row, "PostTypeId") == "1")
    assert found["answer"] == sum(1 for row in complete_posts if attr(row, "PostTypeId") == "2")
    assert found["comment"] == len(rows(source / "Comments.xml")) - 2  # all but the two damaged rows
    assert found["accept"] == sum(1 for row in complete_posts if attr(row, "AcceptedAnswerId"))
    assert found["vote"] == len(rows(source / "Votes.xml"))
    # The folder is named after the site: links can be built.
    assert activities(records, "question")[0].url == "https://quantumcomputing.stackexchange.com/q/1"
    assert StackExchangeConnector(dump).default_source == "quantumcomputing"


def test_damaged_compressed_file_keeps_what_could_be_read(data_root: Path, tmp_path: Path) -> None:
    source = data_root / QC
    shutil.copy(source / "Posts.xml", tmp_path / "Posts.xml")
    votes = gzip.compress((source / "Votes.xml").read_bytes())
    (tmp_path / "Votes.xml.gz").write_bytes(votes[: len(votes) // 2])
    records = list(StackExchangeConnector(tmp_path).records({}))
    damage = [r for r in records if isinstance(r, Quarantined)]
    # The damage itself, and the row cut in half where the readable data stops.
    assert [(item.stream, item.reason.split(" (")[0]) for item in damage] == [
        ("Votes.xml.gz", "truncated row"),
        ("Votes.xml.gz", "unreadable compressed data after this point"),
    ]
    vote_ids = [a.native_id for a in activities(records, "vote")]
    all_ids = [f"v{attr(row, 'Id')}" for row in rows(source / "Votes.xml")]
    assert 0 < len(vote_ids) < len(all_ids) and vote_ids == all_ids[: len(vote_ids)]


# -- small hand-written dumps -------------------------------------------------------------------


def write_dump(folder: Path, **tables: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for table, table_rows in tables.items():
        body = "".join(f"  {row}\n" for row in table_rows)
        text = f'\ufeff<?xml version="1.0" encoding="utf-8"?>\n<{table.lower()}>\n{body}</{table.lower()}>\n'
        (folder / f"{table}.xml").write_text(text, encoding="utf-8")
    return folder


def q(post_id: int, date: str, extra: str = "") -> str:
    return f'<row Id="{post_id}" PostTypeId="1" CreationDate="{date}" Body="&lt;p&gt;Q{post_id}&lt;/p&gt;" {extra}/>'


def a(post_id: int, parent: int, date: str, extra: str = "") -> str:
    return f'<row Id="{post_id}" PostTypeId="2" ParentId="{parent}" CreationDate="{date}" Body="A" {extra}/>'


def test_accept_dates_fall_back_to_the_answer_then_the_question(tmp_path: Path) -> None:
    folder = write_dump(
        tmp_path / "site",
        Posts=[
            q(1, "2020-01-01T10:00:00.000", 'AcceptedAnswerId="2" OwnerUserId="7" Tags="&lt;x&gt;&lt;y&gt;"'),
            a(2, 1, "2020-01-02T10:00:00.000"),
            q(3, "2020-01-03T10:00:00.000", 'AcceptedAnswerId="4" OwnerDisplayName="gone" Tags="|y|z|"'),
            a(4, 3, "2020-01-04T10:00:00.000"),
            # Merged question: its accepted answer (id 5) comes before it; answer 9 is missing altogether.
            a(5, 6, "2020-01-05T10:00:00.000"),
            q(6, "2020-01-06T10:00:00.000", 'AcceptedAnswerId="5" OwnerUserId="8"'),
            q(8, "2020-01-08T10:00:00.000", 'AcceptedAnswerId="9" OwnerUserId="8"'),
        ],
        Votes=['<row Id="1" PostId="4" VoteTypeId="1" CreationDate="2020-02-01T00:00:00.000" />'],
    )
    records = list(StackExchangeConnector(folder).records({}))
    accepts = {
        r.native_id: (r.parent, r.author, r.created_at, r.extras["date_from"]) for r in activities(records, "accept")
    }
    assert accepts == {
        "accept:1": ("p2", "u7", datetime(2020, 1, 2, 10, tzinfo=UTC), "answer"),
        "accept:3": ("p4", "name:gone", datetime(2020, 2, 1, tzinfo=UTC), "vote"),
        "accept:6": ("p5", "u8", datetime(2020, 1, 6, 10, tzinfo=UTC), "question"),
        "accept:8": ("p9", "u8", datetime(2020, 1, 8, 10, tzinfo=UTC), "question"),
    }
    # No Tags.xml: the channels come from the questions' tags, each before its first use.
    channels = [r.native_id for r in records if isinstance(r, Channel)]
    assert channels == ["tag:x", "tag:y", "tag:z"]
    questions = {r.native_id: r for r in activities(records, "question")}
    assert questions["p3"].channel == "tag:y" and questions["p3"].extras["tags"] == ["y", "z"]
    assert questions["p1"].text_plain == "Q1"
    # Each accept comes right after its answer (or after all posts when the answer came first or is missing).
    order = [r.native_id for r in activities(records)]
    assert order.index("accept:1") == order.index("p2") + 1
    assert order[-3:] == ["accept:6", "accept:8", "v1"]
    # Votes.xml is read after the posts: the accept vote is also an ordinary vote.
    assert activities(records, "vote")[0].extras["vote_type"] == "accepted_by_originator"


def test_history_links_wikis_and_unusual_rows(tmp_path: Path) -> None:
    folder = write_dump(
        tmp_path / "french.meta.stackexchange.com",
        Tags=[
            '<row Id="1" TagName="bug" Count="2" ExcerptPostId="3" WikiPostId="4" />',
            '<row Id="2" TagName="c#" Count="0" />',
        ],
        Posts=[
            q(1, "2020-01-01T10:00:00.000", 'Tags="&lt;bug&gt;" Title="Broken"'),
            a(2, 1, "2020-01-02T10:00:00.000"),
            '<row Id="3" PostTypeId="4" CreationDate="2020-01-03T10:00:00.000" Body="Excerpt" />',
            '<row Id="4" PostTypeId="5" CreationDate="2020-01-03T10:00:00.000" Body="Wiki" />',
            '<row Id="5" PostTypeId="6" CreationDate="2020-01-05T10:00:00.000" Body="Nomination" />',
        ],
        PostHistory=[
            '<row Id="1" PostHistoryTypeId="2" PostId="1" CreationDate="2020-01-01T10:00:00.000" UserId="3" />',
            '<row Id="2" PostHistoryTypeId="5" PostId="1" CreationDate="2020-01-01T11:00:00.000" UserId="3" '
            'Text="new  body" Comment="typo" />',
            '<row Id="3" PostHistoryTypeId="10" PostId="2" CreationDate="2020-01-01T12:00:00.000" '
            'UserDisplayName="old mod" />',
        ],
        PostLinks=[
            '<row Id="1" PostId="2" RelatedPostId="1" LinkTypeId="3" />',
            '<row Id="2" PostId="1" RelatedPostId="5" LinkTypeId="1" />',
        ],
        Comments=['<row Id="9" PostId="2" Text="  so&#xA;clear  " CreationDate="2020-01-02T11:00:00.000" />'],
    )
    connector = StackExchangeConnector(folder)
    assert connector.default_source == "french-meta"
    records = list(connector.records({}))
    by_id = {r.native_id: r for r in activities(records)}
    assert set(by_id) == {"p1", "p2", "p3", "p4", "p5", "h2", "h3", "c9"}
    assert by_id["h2"].kind == "edit" and by_id["h2"].conversation == "q1" and by_id["h2"].text_plain == "new body"
    assert by_id["h2"].extras["comment"] == "typo"
    assert (
        by_id["h3"].kind == "moderation" and by_id["h3"].author == "name:old mod" and by_id["h3"].conversation is None
    )
    assert by_id["h3"].extras["history_type"] == "post_closed"
    assert by_id["p3"].kind == by_id["p4"].kind == "wiki"
    assert by_id["p3"].conversation == by_id["p4"].conversation == "wiki:bug" and by_id["p4"].channel == "tag:bug"
    assert by_id["p4"].url == "https://french.meta.stackexchange.com/tags/bug/info"
    assert by_id["p5"].kind == "post" and by_id["p5"].extras["post_type_id"] == 6
    assert by_id["p1"].url == "https://french.meta.stackexchange.com/q/1"
    channels = {r.native_id: r for r in records if isinstance(r, Channel)}
    assert channels["tag:c#"].url == "https://french.meta.stackexchange.com/questions/tagged/c%23"
    assert channels["tag:bug"].extras == {"tag_id": 1, "count": 2, "excerpt_post": "p3", "wiki_post": "p4"}
    assert by_id["p2"].url == "https://french.meta.stackexchange.com/a/2"
    assert by_id["c9"].parent == "p2" and by_id["c9"].conversation is None and by_id["c9"].text_plain == "so\nclear"
    assert by_id["c9"].author is None
    assert [(r.from_activity, r.to_activity, r.kind) for r in records if isinstance(r, Link)] == [
        ("p2", "p1", "duplicate"),
        ("p1", "p5", "linked"),
    ]


def test_missing_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        StackExchangeConnector(tmp_path / "nowhere")
    write_dump(tmp_path / "empty", Users=['<row Id="1" DisplayName="x" />'])
    with pytest.raises(InputError, match=r"no Posts\.xml"):
        StackExchangeConnector(tmp_path / "empty")


def test_source_names(tmp_path: Path) -> None:
    cases = {
        "se_quantumcomputing_2018": ("se-quantumcomputing-2018", None),
        "stackoverflow.com": ("stackoverflow", "stackoverflow.com"),
        "Math.StackExchange.com": ("math", "math.stackexchange.com"),
        "mathoverflow.net": ("mathoverflow", "mathoverflow.net"),
    }
    for name, (slug, site) in cases.items():
        connector = StackExchangeConnector(write_dump(tmp_path / name, Posts=[]))
        assert (connector.default_source, connector.site) == (slug, site)
    explicit = StackExchangeConnector(tmp_path / "se_quantumcomputing_2018", site="quantumcomputing.stackexchange.com")
    assert explicit.site == "quantumcomputing.stackexchange.com"
