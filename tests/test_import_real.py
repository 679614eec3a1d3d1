"""End to end: the ``parvis`` command imports the real archives in ../shared/data, on SQLite and PostgreSQL.

Expected figures are computed inside each test from the raw files with a few lines of plain
Python (regular expressions over the XML rows, the mbox separator lines), never with Parvis's code.
"""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from parvis.store import open_store
from tests.cli_run import parvis, stats
from tests.dbdump import snapshot

ROW = re.compile(rb"<row [^\n]*/>")


def attribute(row: bytes, name: str) -> bytes | None:
    found = re.search(rb" " + name.encode() + rb'="([^"]*)"', row)
    return found.group(1) if found else None


def se_expected(folder: Path) -> dict[str, int]:
    posts = ROW.findall((folder / "Posts.xml").read_bytes())
    types = [attribute(row, "PostTypeId") for row in posts]
    return {
        "question": types.count(b"1"),
        "answer": types.count(b"2"),
        "accept": sum(1 for row in posts if attribute(row, "AcceptedAnswerId")),
        "comment": len(ROW.findall((folder / "Comments.xml").read_bytes())),
        "users": len(ROW.findall((folder / "Users.xml").read_bytes())),
    }


@pytest.mark.parametrize(
    ("folder", "published"),
    [
        # Figures published with the data set (its README) for quantumcomputing; checked again below.
        ("se_quantumcomputing_2018", {"question": 612, "answer": 1060, "accept": 389, "comment": 3413, "users": 3461}),
        ("se_french_language_meta", None),
    ],
)
def test_stackexchange_dump(folder: str, published: dict[str, int] | None, shared_data: Path, store_url: str) -> None:
    dump = shared_data / folder
    expected = se_expected(dump)
    if published is not None:
        assert expected == published
    result = parvis("import", "stackexchange", str(dump), "--source", "se", db=store_url)
    assert result.returncode == 0, result.stderr
    assert "quarantined" in result.stdout
    figures = stats(store_url)["sources"]["se"]
    kinds = figures["activities_by_kind"]
    assert {kind: kinds.get(kind, 0) for kind in ("question", "answer", "accept", "comment")} == {
        kind: expected[kind] for kind in ("question", "answer", "accept", "comment")
    }
    assert figures["identities"] >= expected["users"]
    assert figures["conversations"] >= expected["question"]
    assert figures["quarantined"] == 0

    before = snapshot(open_store(store_url))
    again = parvis("import", "stackexchange", str(dump), "--source", "se", db=store_url)
    assert again.returncode == 0, again.stderr
    assert " 0 added" in again.stdout
    assert snapshot(open_store(store_url)) == before


def test_stackexchange_users_who_never_posted_are_members(shared_data: Path, sqlite_url: str) -> None:
    dump = shared_data / "se_quantumcomputing_2018"
    owners = {attribute(row, "OwnerUserId") for row in ROW.findall((dump / "Posts.xml").read_bytes())}
    commenters = {attribute(row, "UserId") for row in ROW.findall((dump / "Comments.xml").read_bytes())}
    users = {attribute(row, "Id") for row in ROW.findall((dump / "Users.xml").read_bytes())}
    silent = users - owners - commenters
    assert len(silent) > 2000
    assert parvis("import", "stackexchange", str(dump), db=sqlite_url).returncode == 0
    store = open_store(sqlite_url)
    with store.engine.connect() as connection:
        without_activity = connection.exec_driver_sql(
            "SELECT count(*) FROM identities i WHERE i.native_id LIKE 'u%' "
            "AND NOT EXISTS (SELECT 1 FROM activities a WHERE a.identity_id = i.id "
            "AND a.kind IN ('question', 'answer', 'comment', 'wiki', 'accept'))"
        ).scalar_one()
    # Accepting an answer is done by the question's owner, who posted; badges and votes are not posts.
    assert without_activity == len(silent)


def mail_messages(paths: list[Path]) -> set[bytes]:
    """Distinct Message-IDs, read from the header block after each mbox separator line."""
    separator = re.compile(rb"^From \S.* \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\s*$")
    ids: set[bytes] = set()
    for path in paths:
        with gzip.open(path, "rb") as handle:
            in_headers = False
            for line in handle:
                if separator.match(line):
                    in_headers = True
                elif in_headers and not line.strip():
                    in_headers = False
                elif in_headers and line.lower().startswith(b"message-id:"):
                    ids.add(line.split(b":", 1)[1].strip().strip(b"<>"))
    return ids


def mail_threads(paths: list[Path]) -> dict[bytes, bytes]:
    """Message-ID -> thread representative: union-find over Message-ID, In-Reply-To and References."""
    separator = re.compile(rb"^From \S.* \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\s*$")
    angle = re.compile(rb"<([^<>\s]+)>")
    leader: dict[bytes, bytes] = {}

    def find(item: bytes) -> bytes:
        while leader.setdefault(item, item) != item:
            leader[item] = leader[leader[item]]
            item = leader[item]
        return item

    messages: list[dict[bytes, bytes]] = []
    for path in paths:
        with gzip.open(path, "rb") as handle:
            headers: dict[bytes, bytes] | None = None
            last = b""
            for line in handle:
                if separator.match(line):
                    headers = {}
                    messages.append(headers)
                elif headers is not None and not line.strip():
                    headers = None
                elif headers is not None and line[:1] in b" \t":
                    headers[last] = headers.get(last, b"") + b" " + line.strip()
                elif headers is not None:
                    name, _, value = line.partition(b":")
                    last = name.lower()
                    headers.setdefault(last, value.strip())
    ids: list[bytes] = []
    for headers in messages:
        own = angle.findall(headers.get(b"message-id", b""))
        if not own:
            continue
        ids.append(own[0])
        find(own[0])
        for other in angle.findall(headers.get(b"in-reply-to", b"") + b" " + headers.get(b"references", b"")):
            leader[find(own[0])] = find(other)
    return {message_id: find(message_id) for message_id in ids}


def test_mailing_list_archive(shared_data: Path, store_url: str) -> None:
    archive = sorted((shared_data / "mailinglist_r_package_devel" / "archive").glob("*.txt.gz"))
    distinct = mail_messages(archive)
    threads = mail_threads(archive)
    assert (len(distinct), len(set(threads.values()))) == (11111, 2533)
    result = parvis("import", "mbox", *map(str, archive), "--source", "rpkg", db=store_url)
    assert result.returncode == 0, result.stderr
    figures = stats(store_url)["sources"]["rpkg"]
    assert figures["activities"] == len(distinct)
    assert figures["quarantined"] == 0
    store = open_store(store_url)
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT native_id, conversation_id FROM activities").all()
    conversation_of = {native.encode(): conversation for native, conversation in rows}
    # Parvis never puts two union-find threads in one conversation ...
    threads_per_conversation: dict[str, set[bytes]] = {}
    for message_id, thread in threads.items():
        threads_per_conversation.setdefault(conversation_of[message_id], set()).add(thread)
    assert all(len(found) == 1 for found in threads_per_conversation.values())
    # ... nor splits one, even where References starts mid-thread at a message the archive holds.
    assert figures["conversations"] == len(set(threads.values()))


def test_mailing_list_duplicates_across_files_are_stored_once(
    shared_data: Path, sqlite_url: str, tmp_path: Path
) -> None:
    source = shared_data / "mailinglist_r_package_devel" / "archive" / "2016q1.txt.gz"
    copies = tmp_path / "copies"
    copies.mkdir()
    shutil.copy(source, copies / "2016q1.txt.gz")
    with gzip.open(source, "rb") as handle:
        (copies / "2016q1-mirror.txt").write_bytes(handle.read())
    result = parvis("import", "mbox", str(copies), "--source", "rpkg", db=sqlite_url)
    assert result.returncode == 0, result.stderr
    assert stats(sqlite_url)["sources"]["rpkg"]["activities"] == len(mail_messages([source]))


def irc_expected(folder: Path) -> tuple[int, int]:
    lines = 0
    for path in sorted(folder.glob("*.raw.txt")):
        lines += len(path.read_bytes().splitlines())
    links = 0
    for path in sorted(folder.glob("*.annotation.txt")):
        for line in path.read_text().splitlines():
            parent, child, *_ = line.split()
            links += parent != child
    return lines, links


def test_irc_logs_with_annotations(shared_data: Path, store_url: str) -> None:
    dev = shared_data / "chat_ubuntu_irc_disentangle" / "dev"
    lines, links = irc_expected(dev)
    result = parvis("import", "irc", str(dev), "--source", "ubuntu", db=store_url)
    assert result.returncode == 0, result.stderr
    figures = stats(store_url)["sources"]["ubuntu"]
    assert figures["activities"] + figures["quarantined"] == lines
    store = open_store(store_url)
    with store.engine.connect() as connection:
        stored_links = connection.exec_driver_sql(
            "SELECT count(*) FROM links WHERE kind = 'reply_annotation'"
        ).scalar_one()
    assert stored_links == links


CorruptFn = Callable[[bytes], bytes]


def truncate(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def junk(data: bytes) -> bytes:
    middle = data.index(b"\n", len(data) // 2) + 1
    return data[:middle] + bytes(range(256)) * 4 + b"\n" + data[middle:]


def test_corrupted_stackexchange_copy_keeps_good_rows(shared_data: Path, sqlite_url: str, tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(shared_data / "se_french_language_meta", dump)
    (dump / "MANIFEST.tsv").unlink()
    (dump / "README.md").unlink()
    comments = (dump / "Comments.xml").read_bytes()
    (dump / "Comments.xml").write_bytes(junk(comments))
    posts = (dump / "Posts.xml").read_bytes()
    (dump / "Posts.xml").write_bytes(truncate(posts))
    complete_posts = ROW.findall(truncate(posts))
    result = parvis("import", "stackexchange", str(dump), db=sqlite_url)
    assert result.returncode == 3, result.stderr
    assert "Comments.xml" in result.stderr and "Posts.xml" in result.stderr
    assert "Traceback" not in result.stderr
    figures = stats(sqlite_url)["total"]
    kinds = figures["activities_by_kind"]
    assert kinds["comment"] == len(ROW.findall(comments))
    types = [attribute(row, "PostTypeId") for row in complete_posts]
    assert kinds["question"] == types.count(b"1")
    assert kinds["answer"] == types.count(b"2")
    assert figures["quarantined"] >= 2


def test_corrupted_mail_copy_keeps_good_messages(shared_data: Path, sqlite_url: str, tmp_path: Path) -> None:
    source = shared_data / "mailinglist_r_package_devel" / "archive" / "2017q1.txt.gz"
    data = gzip.decompress(source.read_bytes())
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(truncate(gzip.compress(junk(data))))
    result = parvis("import", "mbox", str(broken), db=sqlite_url)
    assert result.returncode in (0, 3), result.stderr
    assert "Traceback" not in result.stderr
    assert "broken.txt.gz" in result.stderr
    figures = stats(sqlite_url)["total"]
    assert figures["activities"] > len(mail_messages([source])) // 3
    assert figures["quarantined"] >= 1


def test_errors_are_one_clear_line(sqlite_url: str, tmp_path: Path) -> None:
    missing = parvis("import", "mbox", str(tmp_path / "nowhere"), db=sqlite_url)
    assert missing.returncode == 1
    assert "nowhere" in missing.stderr and "Traceback" not in missing.stderr
    unreachable = parvis("stats", db="postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert unreachable.returncode == 1
    assert "database error" in unreachable.stderr and "Traceback" not in unreachable.stderr


def test_demo_imports_the_bundled_sample(shared_data: Path, tmp_path: Path) -> None:
    """The README's main command: the bundled sample is the real French Language Meta dump."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = parvis("demo", db=url)
    assert result.returncode == 0, result.stderr
    expected = se_expected(shared_data / "se_french_language_meta")
    kinds = stats(url)["sources"]["french-language-meta"]["activities_by_kind"]
    assert {kind: kinds[kind] for kind in ("question", "answer", "accept", "comment")} == {
        kind: expected[kind] for kind in ("question", "answer", "accept", "comment")
    }
    store = open_store(url)
    with store.engine.connect() as connection:
        url_of_first = connection.exec_driver_sql("SELECT url FROM activities WHERE native_id = 'p1'").scalar_one()
    assert url_of_first == "https://french.meta.stackexchange.com/q/1"
