"""Stack Exchange data dumps: a site's folder of Posts.xml, Users.xml, Comments.xml...

Each file holds one ``<row .../>`` element per line.  Lines are read one at a
time (any of them may be broken without losing the others) and parsed with the
C XML parser (expat).  See docs/connectors/stackexchange.md for the mapping.

No post text is kept in memory.  Kept while reading:

* the dates of the accept votes (VoteTypeId 1 rows only: one entry per accepted
  answer), read from Votes.xml when the first accepted answer is met in Posts.xml;
* which post ids are questions, as a bitmap (one bit per post id);
* the questions whose accepted answer has not been read yet (usually a handful);
* the tag names, the tag wiki post ids, and the display names of deleted users
  already emitted.

A resumed import reads the part of Posts.xml and Tags.xml that the cursor covers
again, but only to rebuild that state (for a Posts.xml imported completely, only
once a later file needs it), so a resumed import emits exactly what an
uninterrupted one emits after the same point.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import quote
from xml.parsers import expat

from parvis.connectors._files import InputError, LineReader, open_binary
from parvis.records import (
    Activity,
    ActivityKind,
    Channel,
    Checkpoint,
    Cursor,
    Identity,
    Link,
    ProgressFn,
    Quarantined,
    Record,
)

# Read in this order so that every record exists before another one refers to it.
TABLES: Final = ("Users", "Tags", "Posts", "Comments", "Votes", "Badges", "PostHistory", "PostLinks")

CHECKPOINT_EVERY: Final = 200

QUESTION_TYPE: Final = 1
ANSWER_TYPE: Final = 2
WIKI_POST_TYPES: Final = {
    3: "orphaned_tag_wiki",
    4: "tag_wiki_excerpt",
    5: "tag_wiki",
    7: "wiki_placeholder",
    8: "privilege_wiki",
}
ACCEPT_VOTE_TYPE: Final = 1

VOTE_TYPES: Final = {
    1: "accepted_by_originator",
    2: "up",
    3: "down",
    4: "offensive",
    5: "favorite",
    6: "close",
    7: "reopen",
    8: "bounty_start",
    9: "bounty_close",
    10: "deletion",
    11: "undeletion",
    12: "spam",
    15: "moderator_review",
    16: "approve_edit_suggestion",
}

INITIAL_REVISION_TYPES: Final = frozenset({1, 2, 3})
EDIT_HISTORY_TYPES: Final = frozenset({4, 5, 6, 7, 8, 9, 24})
HISTORY_TYPES: Final = {
    4: "edit_title",
    5: "edit_body",
    6: "edit_tags",
    7: "rollback_title",
    8: "rollback_body",
    9: "rollback_tags",
    10: "post_closed",
    11: "post_reopened",
    12: "post_deleted",
    13: "post_undeleted",
    14: "post_locked",
    15: "post_unlocked",
    16: "community_owned",
    17: "post_migrated",
    18: "question_merged",
    19: "question_protected",
    20: "question_unprotected",
    21: "post_disassociated",
    22: "question_unmerged",
    24: "suggested_edit_applied",
    25: "post_tweeted",
    31: "comment_discussion_moved_to_chat",
    33: "post_notice_added",
    34: "post_notice_removed",
    35: "post_migrated_away",
    36: "post_migrated_here",
    37: "post_merge_source",
    38: "post_merge_destination",
    50: "bumped_by_community_user",
    52: "question_became_hot_network_question",
    53: "question_removed_from_hot_network_questions",
    66: "created_from_ask_wizard",
}

LINK_TYPES: Final = {1: "linked", 3: "duplicate"}
BADGE_CLASSES: Final = {1: "gold", 2: "silver", 3: "bronze"}
COMMUNITY_USER_ID: Final = -1

_BOM: Final = b"\xef\xbb\xbf"
_ROOT_TAG = re.compile(rb"</?[A-Za-z]+\s*>")
_CONTROL_CHARACTER = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SITE_HOST = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.(com|net)")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_BLOCK_TAG = re.compile(
    r"<\s*/?\s*(?:p|br|div|li|ul|ol|h[1-6]|pre|blockquote|tr|table|hr|dd|dt)\b[^<>]*>", re.IGNORECASE
)
_ANY_TAG = re.compile(r"<[^<>]*>")
_BLANK_LINES = re.compile(r"\n{3,}")

# What reading a file can raise besides an ordinary end: a truncated or corrupt gzip stream, a failing disk.
_READ_ERRORS: Final = (OSError, EOFError, zlib.error)


class _BadRow(Exception):
    """A line that holds no usable row; the message is the reason given in quarantine."""


RowHandler = Callable[[dict[str, str], bytes, bool], list[Record]]


# -- text and value helpers -----------------------------------------------------------------------


def html_to_text(markup: str) -> str:
    """A plain-text rendering of a post body: tags removed, entities decoded, blank runs collapsed."""
    text = _ANY_TAG.sub("", _BLOCK_TAG.sub("\n", markup))
    if "&" in text:
        text = html.unescape(text)
    return normalise_whitespace(text)


def normalise_whitespace(text: str) -> str:
    """Spaces collapsed inside each line, at most one blank line in a row, no blank ends."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _time(row: Mapping[str, str], name: str) -> datetime | None:
    value = row.get(name)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise _BadRow(f"{name} is not a date: {value[:40]!r}") from None


def _required_time(row: Mapping[str, str], name: str) -> datetime:
    moment = _time(row, name)
    if moment is None:
        raise _BadRow(f"no {name}")
    return moment


def _int(row: Mapping[str, str], name: str) -> int | None:
    value = row.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise _BadRow(f"{name} is not a number: {value[:40]!r}") from None


def _required_int(row: Mapping[str, str], name: str) -> int:
    number = _int(row, name)
    if number is None:
        raise _BadRow(f"no {name}")
    return number


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _without_none(values: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in values.items() if value is not None}


def split_tags(value: str | None) -> list[str]:
    """``<a><b>`` (classic dumps) or ``|a|b|`` (dumps since 2024) as a list of tag names."""
    if not value:
        return []
    if value.startswith("<"):
        return [tag for tag in value[1:-1].split("><") if tag]
    return [tag for tag in value.split("|") if tag]


def parse_row(line: bytes) -> dict[str, str] | None:
    """The attributes of a ``<row .../>`` line; None for the XML declaration, the root tags and blank lines."""
    text = line.strip()
    if text.startswith(_BOM):
        text = text[len(_BOM) :].lstrip()
    if not text:
        return None
    if text.startswith(b"<row"):
        elements: list[tuple[str, dict[str, str]]] = []
        parser = expat.ParserCreate()
        parser.StartElementHandler = lambda name, attributes: elements.append((name, attributes))
        try:
            parser.Parse(text, True)
        except (expat.ExpatError, ValueError) as error:
            raise _BadRow(_diagnose(text, error)) from None
        name, attributes = elements[0]
        if name != "row":
            raise _BadRow(f"<{name}> element where a <row> was expected")
        return attributes
    if text.startswith(b"<?xml") or _ROOT_TAG.fullmatch(text):
        return None
    raise _BadRow(_undecodable(text) or "not a <row .../> element")


def _undecodable(text: bytes) -> str | None:
    """Why bytes cannot be XML text at all, if they cannot."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as problem:
        return f"invalid UTF-8 at column {problem.start + 1}"
    control = _CONTROL_CHARACTER.search(text)
    if control is not None:
        return f"control character {control.group()!r} at column {control.start() + 1}"
    return None


def _diagnose(text: bytes, error: Exception) -> str:
    undecodable = _undecodable(text)
    if undecodable is not None:
        return undecodable
    if not text.endswith(b"/>"):
        return "truncated row (no closing '/>')"
    return f"malformed XML: {error}"


def site_from_folder_name(name: str) -> str | None:
    """The site's host when the folder is named after it, as the official dumps are."""
    host = name.lower()
    for suffix in (".7z", ".zip"):
        host = host.removesuffix(suffix)
    return host if _SITE_HOST.fullmatch(host) else None


def source_slug(name: str, site: str | None) -> str:
    """``quantumcomputing.stackexchange.com`` -> ``quantumcomputing``; ``se_dump_2018`` -> ``se-dump-2018``."""
    if site is not None:
        base = site.removesuffix(".stackexchange.com").removesuffix(".com").removesuffix(".net")
    else:
        base = name.lower()
    return _NOT_SLUG.sub("-", base.lower()).strip("-") or "stackexchange"


class PostIdSet:
    """A set of post ids: one bit each up to ``BITMAP_LIMIT`` (32 MiB at most), a plain set beyond (bad data)."""

    BITMAP_LIMIT: Final = 1 << 28

    def __init__(self) -> None:
        self._bits = bytearray()
        self._others: set[int] = set()

    def add(self, number: int) -> None:
        if not 0 <= number < self.BITMAP_LIMIT:
            self._others.add(number)
            return
        index = number >> 3
        if index >= len(self._bits):
            self._bits.extend(bytes(max(index + 1, 2 * len(self._bits)) - len(self._bits)))
        self._bits[index] |= 1 << (number & 7)

    def __contains__(self, number: int) -> bool:
        if not 0 <= number < self.BITMAP_LIMIT:
            return number in self._others
        index = number >> 3
        return index < len(self._bits) and bool(self._bits[index] & (1 << (number & 7)))


@dataclass(frozen=True, slots=True)
class _PendingAccept:
    question_id: int
    question_created_at: datetime
    owner: str | None
    channel: str | None


def _prefix_matches(path: Path, cursor: Cursor) -> tuple[bool, bool]:
    """Whether the file still starts with the bytes ``cursor`` covers, and whether they are the whole file."""
    if cursor.offset <= 0:
        return False, False
    digest = hashlib.sha1()
    remaining = cursor.offset
    try:
        with open_binary(path) as handle:
            while remaining > 0:
                chunk = handle.read(min(remaining, 1 << 20))
                if not chunk:
                    return False, False
                digest.update(chunk)
                remaining -= len(chunk)
            whole = not handle.read(1)
    except _READ_ERRORS:
        return False, False
    return digest.hexdigest() == cursor.digest, whole


def _data_lines(path: Path) -> Iterator[bytes]:
    """The lines of a file, ending quietly where it cannot be read further (state scans only)."""
    try:
        with open_binary(path) as handle:
            yield from handle
    except _READ_ERRORS:
        return


def _accept_vote_dates(path: Path) -> dict[int, datetime]:
    """Answer id -> date of its (latest) accept vote."""
    dates: dict[int, datetime] = {}
    marker = b'VoteTypeId="1"'
    for line in _data_lines(path):
        if marker not in line:
            continue
        try:
            row = parse_row(line)
            if row is None:
                continue
            post_id = _required_int(row, "PostId")
            voted_at = _required_time(row, "CreationDate")
        except _BadRow:
            continue
        if post_id not in dates or dates[post_id] < voted_at:
            dates[post_id] = voted_at
    return dates


# -- the connector --------------------------------------------------------------------------------


class StackExchangeConnector:
    """Reads one site's data dump folder.

    ``site`` is the site's host (``quantumcomputing.stackexchange.com``), used to
    build links; by default it is taken from the folder's name when the folder is
    named after the site, as the official dumps are.
    """

    platform = "stackexchange"

    def __init__(self, folder: Path, site: str | None = None) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder")
        self.folder = folder
        self.files = self._find_files(folder)
        if "Posts" not in self.files:
            raise InputError(f"{folder}: no Posts.xml (or Posts.xml.gz) in this folder")
        for path in self.files.values():
            if not os.access(path, os.R_OK):
                raise InputError(f"{path}: not readable")
        name = folder.resolve().name
        self.site = site.lower().removeprefix("https://").removeprefix("http://").strip("/") if site else None
        self.site = self.site or site_from_folder_name(name)
        self.default_source = source_slug(name, self.site)

    @staticmethod
    def _find_files(folder: Path) -> dict[str, Path]:
        try:
            present = {entry.name.lower(): entry for entry in folder.iterdir() if entry.is_file()}
        except OSError as problem:
            raise InputError(f"{folder}: cannot list the folder ({problem.strerror})") from None
        found: dict[str, Path] = {}
        for table in TABLES:
            for candidate in (f"{table}.xml".lower(), f"{table}.xml.gz".lower()):
                if candidate in present:
                    found[table] = present[candidate]
                    break
        return found

    def total_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files.values())

    def records(self, resume: Mapping[str, Cursor], progress: ProgressFn | None = None) -> Iterator[Record]:
        reading = _DumpReading(self.site, self.files.get("Votes"))
        # Tags.xml and Posts.xml feed the state later files use: see _read_with_state.
        handlers: dict[str, RowHandler] = {
            "Users": reading.user,
            "Comments": reading.comment,
            "Votes": reading.vote,
            "Badges": reading.badge,
            "PostHistory": reading.history,
            "PostLinks": reading.post_link,
        }
        for table in TABLES:
            path = self.files.get(table)
            if path is None:
                continue
            stream = path.name
            cursor = resume.get(stream)
            try:
                if table in ("Posts", "Tags"):
                    yield from _read_with_state(stream, path, cursor, progress, reading, is_posts=table == "Posts")
                else:
                    reader = LineReader(stream, path, cursor, progress)
                    yield from _read_table(reader, handlers[table])
                    yield reader.checkpoint()
            except OSError as problem:
                raise InputError(f"{path}: cannot read ({problem})") from None


def _read_with_state(
    stream: str,
    path: Path,
    cursor: Cursor | None,
    progress: ProgressFn | None,
    reading: _DumpReading,
    *,
    is_posts: bool,
) -> Iterator[Record]:
    """Read a file whose rows later files depend on, rebuilding that state from the part already imported."""
    covered, whole = _prefix_matches(path, cursor) if cursor is not None else (False, False)
    if cursor is not None and covered and whole and is_posts:
        # Nothing new: read it again only if a later file needs to know which posts are questions.
        reading.defer_post_scan(path)
        if progress is not None:
            progress(path.stat().st_size)
        yield Checkpoint(stream, cursor.offset, cursor.digest, cursor.line)
        return
    skip_until = cursor.offset if cursor is not None and covered else 0
    reader = LineReader(stream, path, None, progress)
    yield from _read_table(reader, reading.post if is_posts else reading.tag, skip_until)
    if is_posts:
        yield from reading.unresolved_accepts()
    yield reader.checkpoint()


def _read_table(reader: LineReader, handler: RowHandler, skip_until: int = 0) -> Iterator[Record]:
    """Rows of one file as records, with checkpoints (not the final one).

    Lines before byte ``skip_until`` (already imported) only update the state the handler keeps.
    """
    since_checkpoint = 0
    for line in reader:
        emit = reader.line_start >= skip_until
        if emit and since_checkpoint >= CHECKPOINT_EVERY:
            yield reader.checkpoint()
            since_checkpoint = 0
        try:
            row = parse_row(line)
            if row is None:
                continue
            records = handler(row, line, emit)
        except _BadRow as problem:
            if emit:
                yield Quarantined(reader.stream, reader.position(), str(problem), line)
                since_checkpoint += 1
            continue
        if emit:
            yield from records
            since_checkpoint += len(records)
    damage = reader.quarantine_damage()
    if damage is not None:
        yield damage


class _DumpReading:
    """The state of one pass over a dump, and the conversion of each kind of row."""

    def __init__(self, site: str | None, votes: Path | None) -> None:
        self.site = site
        self._votes = votes
        self._accept_dates: dict[int, datetime] | None = None
        self.questions = PostIdSet()
        self.known_tags: set[str] = set()
        self.wiki_tags: dict[int, str] = {}
        self.pending_accepts: dict[int, list[_PendingAccept]] = {}
        self.named_authors: set[str] = set()
        self._deferred_posts: Path | None = None

    # -- shared pieces ---------------------------------------------------------------------------

    @property
    def accept_dates(self) -> dict[int, datetime]:
        """Answer id -> date of its accept vote, read from Votes.xml when the first accept is built."""
        if self._accept_dates is None:
            self._accept_dates = _accept_vote_dates(self._votes) if self._votes is not None else {}
        return self._accept_dates

    def defer_post_scan(self, path: Path) -> None:
        self._deferred_posts = path

    def is_question(self, post_id: int) -> bool:
        if self._deferred_posts is not None:
            path, self._deferred_posts = self._deferred_posts, None
            for line in _data_lines(path):
                try:
                    row = parse_row(line)
                    if row is not None:
                        self.post(row, line, False)
                except _BadRow:
                    continue
            self.pending_accepts.clear()
        return post_id in self.questions

    def _conversation_of_post(self, post_id: int) -> str | None:
        return f"q{post_id}" if self.is_question(post_id) else None

    def _author(self, row: Mapping[str, str], id_name: str, name_name: str, out: list[Record]) -> str | None:
        """The author's native id; a deleted user's identity (known by name only) is added to ``out``."""
        user_id = _int(row, id_name)
        if user_id is not None:
            return f"u{user_id}"
        display_name = row.get(name_name)
        if not display_name:
            return None
        native_id = f"name:{display_name}"
        if native_id not in self.named_authors:
            self.named_authors.add(native_id)
            out.append(Identity(native_id, display_name, display_name=display_name, authoritative=False))
        return native_id

    def _url(self, path: str) -> str | None:
        return f"https://{self.site}/{path}" if self.site else None

    def _tag_url(self, name: str) -> str | None:
        return self._url(f"questions/tagged/{quote(name, safe='')}")

    def _tag_channel(self, name: str, out: list[Record]) -> str:
        native_id = f"tag:{name}"
        if name not in self.known_tags:
            self.known_tags.add(name)
            out.append(Channel(native_id, name, kind="tag", url=self._tag_url(name)))
        return native_id

    # -- one handler per file ----------------------------------------------------------------------

    def user(self, row: dict[str, str], line: bytes, emit: bool) -> list[Record]:
        user_id = _required_int(row, "Id")
        display_name = row.get("DisplayName") or None
        extras = _without_none(
            {
                "reputation": _int(row, "Reputation"),
                "account_id": _int(row, "AccountId"),
                "location": row.get("Location"),
                "website_url": row.get("WebsiteUrl"),
                "profile_image_url": row.get("ProfileImageUrl"),
                "profile_url": self._url(f"users/{user_id}"),
                "last_access_at": _iso(_time(row, "LastAccessDate")),
                "views": _int(row, "Views"),
                "up_votes": _int(row, "UpVotes"),
                "down_votes": _int(row, "DownVotes"),
            }
        )
        identity = Identity(
            native_id=f"u{user_id}",
            handle=display_name or f"user{user_id}",
            display_name=display_name,
            created_at=_time(row, "CreationDate"),
            is_bot=user_id == COMMUNITY_USER_ID,
            extras=extras,
            authoritative=True,
            raw=line.strip(),
        )
        return [identity]

    def tag(self, row: dict[str, str], line: bytes, emit: bool) -> list[Record]:
        name = row.get("TagName")
        if not name:
            raise _BadRow("no TagName")
        excerpt_id = _int(row, "ExcerptPostId")
        wiki_id = _int(row, "WikiPostId")
        self.known_tags.add(name)
        for post_id in (excerpt_id, wiki_id):
            if post_id is not None:
                self.wiki_tags[post_id] = name
        if not emit:
            return []
        extras = _without_none(
            {
                "tag_id": _int(row, "Id"),
                "count": _int(row, "Count"),
                "excerpt_post": f"p{excerpt_id}" if excerpt_id is not None else None,
                "wiki_post": f"p{wiki_id}" if wiki_id is not None else None,
                "is_required": row.get("IsRequired") == "True" or None,
                "is_moderator_only": row.get("IsModeratorOnly") == "True" or None,
            }
        )
        return [
            Channel(
                f"tag:{name}",
                name,
                kind="tag",
                url=self._tag_url(name),
                extras=extras,
            )
        ]

    def post(self, row: dict[str, str], line: bytes, emit: bool) -> list[Record]:
        post_id = _required_int(row, "Id")
        post_type = _required_int(row, "PostTypeId")
        created_at = _required_time(row, "CreationDate")
        out: list[Record] = []
        author = self._author(row, "OwnerUserId", "OwnerDisplayName", out)
        if post_type == QUESTION_TYPE:
            return self._question(row, line, emit, post_id, created_at, author, out)
        if post_type == ANSWER_TYPE:
            return self._answer(row, line, emit, post_id, created_at, author, out)
        if not emit:
            return out
        body = row.get("Body")
        common_extras = {
            "score": _int(row, "Score"),
            "comment_count": _int(row, "CommentCount"),
            "content_license": row.get("ContentLicense"),
        }
        tag = self.wiki_tags.get(post_id)
        if post_type in WIKI_POST_TYPES:
            kind = ActivityKind.WIKI
            extras = _without_none({"post_type": WIKI_POST_TYPES[post_type], "tag": tag, **common_extras})
        else:
            kind = ActivityKind.POST
            extras = _without_none({"post_type_id": post_type, **common_extras})
        channel = self._tag_channel(tag, out) if tag is not None else None
        out.append(
            Activity(
                native_id=f"p{post_id}",
                kind=kind,
                created_at=created_at,
                author=author,
                channel=channel,
                conversation=f"wiki:{tag}" if tag is not None else None,
                title=row.get("Title"),
                text_raw=body,
                text_plain=html_to_text(body) if body is not None else None,
                text_format="html",
                edited_at=_time(row, "LastEditDate"),
                url=self._url(f"tags/{quote(tag, safe='')}/info") if tag is not None else None,
                extras=extras,
                raw=line.strip(),
            )
        )
        return out

    def _question(
        self,
        row: dict[str, str],
        line: bytes,
        emit: bool,
        post_id: int,
        created_at: datetime,
        author: str | None,
        out: list[Record],
    ) -> list[Record]:
        self.questions.add(post_id)
        tags = split_tags(row.get("Tags"))
        channels = [self._tag_channel(tag, out) for tag in tags]
        channel = channels[0] if channels else None
        accepted_id = _int(row, "AcceptedAnswerId")
        if accepted_id is not None:
            pending = _PendingAccept(post_id, created_at, author, channel)
            self.pending_accepts.setdefault(accepted_id, []).append(pending)
        if not emit:
            return out
        body = row.get("Body")
        extras = _without_none(
            {
                "score": _int(row, "Score"),
                "view_count": _int(row, "ViewCount"),
                "answer_count": _int(row, "AnswerCount"),
                "comment_count": _int(row, "CommentCount"),
                "favorite_count": _int(row, "FavoriteCount"),
                "tags": tags,
                "accepted_answer": f"p{accepted_id}" if accepted_id is not None else None,
                "closed_at": _iso(_time(row, "ClosedDate")),
                "community_owned_at": _iso(_time(row, "CommunityOwnedDate")),
                "last_activity_at": _iso(_time(row, "LastActivityDate")),
                "last_editor": f"u{row['LastEditorUserId']}" if "LastEditorUserId" in row else None,
                "content_license": row.get("ContentLicense"),
            }
        )
        out.append(
            Activity(
                native_id=f"p{post_id}",
                kind=ActivityKind.QUESTION,
                created_at=created_at,
                author=author,
                channel=channel,
                conversation=f"q{post_id}",
                title=row.get("Title"),
                text_raw=body,
                text_plain=html_to_text(body) if body is not None else None,
                text_format="html",
                edited_at=_time(row, "LastEditDate"),
                url=self._url(f"q/{post_id}"),
                extras=extras,
                raw=line.strip(),
            )
        )
        return out

    def _answer(
        self,
        row: dict[str, str],
        line: bytes,
        emit: bool,
        post_id: int,
        created_at: datetime,
        author: str | None,
        out: list[Record],
    ) -> list[Record]:
        accepting = self.pending_accepts.pop(post_id, [])
        if not emit:
            return out
        question_id = _int(row, "ParentId")
        body = row.get("Body")
        extras = _without_none(
            {
                "score": _int(row, "Score"),
                "comment_count": _int(row, "CommentCount"),
                "last_activity_at": _iso(_time(row, "LastActivityDate")),
                "last_editor": f"u{row['LastEditorUserId']}" if "LastEditorUserId" in row else None,
                "community_owned_at": _iso(_time(row, "CommunityOwnedDate")),
                "content_license": row.get("ContentLicense"),
            }
        )
        out.append(
            Activity(
                native_id=f"p{post_id}",
                kind=ActivityKind.ANSWER,
                created_at=created_at,
                author=author,
                conversation=f"q{question_id}" if question_id is not None else None,
                parent=f"p{question_id}" if question_id is not None else None,
                text_raw=body,
                text_plain=html_to_text(body) if body is not None else None,
                text_format="html",
                edited_at=_time(row, "LastEditDate"),
                url=self._url(f"a/{post_id}"),
                extras=extras,
                raw=line.strip(),
            )
        )
        for pending in accepting:
            voted_at = self.accept_dates.get(post_id)
            out.append(self._accept(pending, post_id, voted_at or created_at, "vote" if voted_at else "answer"))
        return out

    def _accept(self, pending: _PendingAccept, answer_id: int, accepted_at: datetime, date_from: str) -> Activity:
        return Activity(
            native_id=f"accept:{pending.question_id}",
            kind=ActivityKind.ACCEPT,
            created_at=accepted_at,
            author=pending.owner,
            channel=pending.channel,
            conversation=f"q{pending.question_id}",
            parent=f"p{answer_id}",
            extras={"question": f"p{pending.question_id}", "date_from": date_from},
        )

    def unresolved_accepts(self) -> Iterator[Record]:
        """Accepts of answers that Posts.xml lacks (or holds before their question), once the posts are read."""
        waiting = sorted(
            (pending.question_id, answer_id, pending)
            for answer_id, pendings in self.pending_accepts.items()
            for pending in pendings
        )
        self.pending_accepts.clear()
        for _question_id, answer_id, pending in waiting:
            voted_at = self.accept_dates.get(answer_id)
            if voted_at is not None:
                yield self._accept(pending, answer_id, voted_at, "vote")
            else:
                yield self._accept(pending, answer_id, pending.question_created_at, "question")

    def comment(self, row: dict[str, str], line: bytes, emit: bool) -> list[Record]:
        comment_id = _required_int(row, "Id")
        post_id = _required_int(row, "PostId")
        created_at = _required_time(row, "CreationDate")
        conversation = self._conversation_of_post(post_id)
        out: list[Record] = []
        author = self._author(row, "UserId", "UserDisplayName", out)
        text = row.get("Text")
        out.append(
            Activity(
                native_id=f"c{comment_id}",
                kind=ActivityKind.COMMENT,
                created_at=created_at,
                author=author,
                conversation=conversation,
                parent=f"p{post_id}",
                text_raw=text,
                text_plain=normalise_whitespace(text) if text is not None else None,
                text_format="text",
                extras=_without_none({"score": _int(row, "Score"), "content_license": row.get("ContentLicense")}),
                raw=line.strip(),
            )
        )
        return out

    def vote(self, row: dict[str, str], line: bytes, emit: bool) -> list[Record]:
        vote_id = _required_int(row, "Id")
        post_id = _required_int(row, "PostId")
        vote_type = _required_int(row, "VoteTypeId")
        created_at = _required_time(row, "CreationDate")
        user_id = _int(row, "UserId")
        extras = _without_none(
            {
                "vote_type": VOTE_TYPES.get(vote_type, f"type_{vote_type}"),
                "vote_type_id": vote_type,
                "bounty_amount": _int(row, "BountyAmount"),
            }
        )
        vote = Activity(
            native_id=f"v{vote_id}",
            kind=ActivityKind.VOTE,
            created_at=created_at,
            author=f"u{user_id}" if user_id is not None else None,
            conversation=self._conversation_of_post(post_id),
            parent=f"p{post_id}",
            extras=extras,
            raw=line.strip(),
        )
        return [vote]

    def badge(self, row: dict[str, str], line: bytes, emit: bool) -> list[Record]:
        badge_id = _required_int(row, "Id")
        user_id = _required_int(row, "UserId")
        name = row.get("Name")
        if not name:
            raise _BadRow("no Name")
        badge_class = _int(row, "Class")
        extras = _without_none(
            {
                "name": name,
                "class": BADGE_CLASSES.get(badge_class, badge_class) if badge_class is not None else None,
                "tag_based": row.get("TagBased") == "True",
            }
        )
        badge = Activity(
            native_id=f"b{badge_id}",
            kind=ActivityKind.BADGE,
            created_at=_required_time(row, "Date"),
            author=f"u{user_id}",
            title=name,
            in_conversation=False,
            extras=extras,
            raw=line.strip(),
        )
        return [badge]

    def history(self, row: dict[str, str], line: bytes, emit: bool) -> list[Record]:
        history_id = _required_int(row, "Id")
        history_type = _required_int(row, "PostHistoryTypeId")
        post_id = _required_int(row, "PostId")
        created_at = _required_time(row, "CreationDate")
        if history_type in INITIAL_REVISION_TYPES:
            return []
        conversation = self._conversation_of_post(post_id)
        out: list[Record] = []
        author = self._author(row, "UserId", "UserDisplayName", out)
        text = row.get("Text")
        extras = _without_none(
            {
                "history_type": HISTORY_TYPES.get(history_type, f"type_{history_type}"),
                "history_type_id": history_type,
                "revision_guid": row.get("RevisionGUID"),
                "comment": row.get("Comment"),
                "content_license": row.get("ContentLicense"),
            }
        )
        out.append(
            Activity(
                native_id=f"h{history_id}",
                kind=ActivityKind.EDIT if history_type in EDIT_HISTORY_TYPES else ActivityKind.MODERATION,
                created_at=created_at,
                author=author,
                conversation=conversation,
                parent=f"p{post_id}",
                text_raw=text,
                text_plain=normalise_whitespace(text) if text is not None else None,
                text_format="text",
                extras=extras,
                raw=line.strip(),
            )
        )
        return out

    def post_link(self, row: dict[str, str], line: bytes, emit: bool) -> list[Record]:
        post_id = _required_int(row, "PostId")
        related_id = _required_int(row, "RelatedPostId")
        link_type = _required_int(row, "LinkTypeId")
        return [Link(f"p{post_id}", f"p{related_id}", LINK_TYPES.get(link_type, f"link_type_{link_type}"))]
