"""IRC and chat logs: one line per event, in the common log styles.

Recognised lines (see docs/connectors/irc.md): ``[HH:MM] <nick> text`` and ``[HH:MM:SS]``
(date from the file name), full timestamps (``[2024-01-02 13:45:10] <nick> text``,
``2024-01-02T13:45:10Z <nick> text``), irssi (``13:45 <@nick> text``, ``-!-`` events,
``--- Day changed`` lines), weechat (tab-separated), actions (``* nick does``), notices
(``-nick- text``) and the ``=== nick has joined`` system lines.  A reply annotation file
(``X.annotation.txt`` beside ``X.raw.txt``, lines ``parent child -``) gives reply links.
"""

from __future__ import annotations

import gzip
import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from parvis.connectors._files import InputError, LineReader, expand_paths, prefix_matches, total_size
from parvis.records import Activity, Channel, Cursor, Identity, Link, ProgressFn, Quarantined, Record

CHECKPOINT_EVERY = 500
REPLY_WINDOW = timedelta(minutes=30)
ANNOTATION_SUFFIXES = (".annotation.txt", ".annotation.txt.gz", ".annotations.txt")
LOG_SUFFIXES = (".txt", ".log", ".txt.gz", ".log.gz", ".raw", ".irc", ".weechatlog")

DATE_IN_NAME = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")
CLOCK = r"\d{1,2}:\d\d(?::\d\d)?"
STAMP = re.compile(
    rf"^(?:\[(?P<d1>\d{{4}}-\d\d-\d\d)[ T](?P<t1>{CLOCK})[^\]]*\]"
    rf"|\[(?P<t2>{CLOCK})\]"
    rf"|(?P<d3>\d{{4}}-\d\d-\d\d)[ T](?P<t3>{CLOCK})(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"
    rf"|(?P<t4>{CLOCK}))"
)
NICK = r"[@+%~&!]?(?P<nick>[^\s<>]+?)"
BODY_STYLES: list[tuple[str, re.Pattern[str]]] = [
    ("message", re.compile(rf"^\s+<\s*{NICK}\s*>\s?(?P<text>.*)$")),
    ("action", re.compile(rf"^\s+\*\s+{NICK}(?:\s+(?P<text>.*))?$")),
    # Before notices: irssi's "-!- nick has joined" would otherwise read as a notice from "!".
    ("event", re.compile(r"^\s+(?:-!-|===|\*\*\*|-->|<--|--)\s+(?P<text>.*)$")),
    ("notice", re.compile(rf"^\s+-{NICK}(?::[^\s-]+)?-\s?(?P<text>.*)$")),
    ("weechat", re.compile(r"^\t(?P<who>[^\t]*)\t(?P<text>.*)$")),
]
UNSTAMPED_EVENT = re.compile(r"^===\s+(?P<text>.*)$")
DAY_CHANGED = re.compile(r"^---\s+(?:Day changed|Log opened)\s+\w{3}\s+(?P<rest>.*)$")
LOG_CLOSED = re.compile(r"^---\s+Log closed\b")
JOIN = re.compile(r"^(?P<nick>\S+)\s+(?:\[[^\]]*\]\s+|\([^)]*\)\s+)?has joined", re.I)
PART = re.compile(r"^(?P<nick>\S+)\s+(?:\[[^\]]*\]\s+|\([^)]*\)\s+)?has (?:left|parted)", re.I)
QUIT = re.compile(r"^(?P<nick>\S+)\s+(?:\[[^\]]*\]\s+|\([^)]*\)\s+)?has quit", re.I)
NICK_CHANGE = re.compile(r"^(?P<nick>\S+) is now known as (?P<new>\S+)", re.I)
ADDRESSED = re.compile(r"^\s*(?P<nick>[^\s:,]{1,32})[:,]\s")
CHANNEL_IN_TEXT = re.compile(r"(#[\w.-]+)")


@dataclass
class _Clock:
    """The date of the lines being read; the day moves on when the time goes backwards."""

    day: date | None
    tz: tzinfo
    last: time | None = None

    def at(self, when: time) -> datetime | None:
        if self.day is None:
            return None
        if self.last is not None and when < self.last and (self.last.hour - when.hour) >= 12:
            self.day += timedelta(days=1)
        self.last = when
        return datetime.combine(self.day, when, self.tz).astimezone(UTC)


def _nick_key(nick: str) -> str:
    return "nick:" + nick.lstrip("@+%~&!").lower()


def _load_annotations(path: Path) -> dict[int, list[int]]:
    """child line -> its annotated parent lines (a line linked to itself lists itself)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    parents: dict[int, list[int]] = {}
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit():
                parents.setdefault(int(fields[1]), []).append(int(fields[0]))
    return parents


class IrcLogConnector:
    platform = "irc"

    def __init__(self, paths: Sequence[str | Path], channel: str | None = None, tz: str = "UTC") -> None:
        found = expand_paths(paths)
        self.annotations = {
            path.name[: -len(suffix)]: path
            for _, path in found
            for suffix in ANNOTATION_SUFFIXES
            if path.name.endswith(suffix)
        }
        self.files = [
            (stream, path)
            for stream, path in found
            if path.name.endswith(LOG_SUFFIXES) and not path.name.endswith(ANNOTATION_SUFFIXES)
        ]
        try:
            self.tz: tzinfo = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as problem:
            raise InputError(f"unknown time zone {tz!r}") from problem
        self.channel = channel or self._guess_channel(paths)
        self.default_source = re.sub(r"[^a-z0-9]+", "-", self.channel.lower()).strip("-") or "irc"
        self.channel_id = f"chan:{self.channel}"

    def _guess_channel(self, paths: Sequence[str | Path]) -> str:
        for _stream, path in self.files[:1]:
            with open(path, "rb") as handle:
                head = handle.read(1 << 16).decode("utf-8", "replace")
            found = CHANNEL_IN_TEXT.search(head)
            if found:
                return found.group(1)
        first = Path(paths[0]) if paths else Path("irc")
        return (first if first.is_dir() else first.parent).name or "irc"

    def total_bytes(self) -> int:
        return total_size(self.files)

    def records(self, resume: Mapping[str, Cursor], progress: ProgressFn | None = None) -> Iterator[Record]:
        yield Channel(self.channel_id, self.channel, kind="room")
        for stream, path in self.files:
            yield from self._read_file(stream, path, resume.get(stream), progress)

    def _annotation_for(self, path: Path) -> dict[int, list[int]]:
        name = path.name.removesuffix(".gz")
        for suffix in (".raw.txt", ".txt", ".log"):
            if name.endswith(suffix):
                beside = self.annotations.get(name[: -len(suffix)])
                if beside is None:
                    for candidate_suffix in ANNOTATION_SUFFIXES:
                        candidate = path.with_name(name[: -len(suffix)] + candidate_suffix)
                        if candidate.is_file():
                            beside = candidate
                            break
                return _load_annotations(beside) if beside else {}
        return {}

    def _read_file(
        self, stream: str, path: Path, cursor: Cursor | None, progress: ProgressFn | None
    ) -> Iterator[Record]:
        annotations = self._annotation_for(path)
        named = DATE_IN_NAME.search(path.name)
        day = None
        if named:
            try:
                day = date(int(named.group(1)), int(named.group(2)), int(named.group(3)))
            except ValueError:
                day = None
        clock = _Clock(day, self.tz)
        # Dates, the reply window and nick changes depend on earlier lines: a resumed file is read
        # again from its start, and only what follows the cursor is emitted.
        emit_from = cursor.offset if cursor is not None and prefix_matches(path, cursor) else 0
        reader = LineReader(stream, path, None, progress)
        recent: deque[tuple[datetime, str, str]] = deque()  # (time, nick key, native id) of recent messages
        seen: set[str] = set()
        previous_time: datetime | None = None
        count = 0
        for line in reader:
            index = reader.line_number - 1
            native_id = f"{stream}#{index}"
            count += 1
            if count % CHECKPOINT_EVERY == 0 and reader.line_start >= emit_from:
                yield reader.checkpoint()
            parsed = self._parse(line, clock, previous_time)
            if parsed is None:
                continue
            if reader.line_start < emit_from:
                self._replay(parsed, index, stream, recent, seen)
                if not isinstance(parsed, str) and parsed[3] is not None:
                    previous_time = parsed[3]
                continue
            if isinstance(parsed, str):
                if line.strip():
                    yield Quarantined(stream, reader.position(), parsed, line)
                continue
            kind, nick, text, created_at, decoded_as = parsed
            if created_at is None:
                reason = "no date: the file name holds none (YYYY-MM-DD)" if clock.day is None else "impossible time"
                yield Quarantined(stream, reader.position(), reason, line)
                continue
            previous_time = created_at
            author = None
            if nick:
                author = _nick_key(nick)
                if author not in seen:
                    seen.add(author)
                    handle = nick.lstrip("@+%~&!")
                    yield Identity(author, handle, handle, authoritative=False)
            extras: dict[str, object] = {"line": index}
            if decoded_as:
                extras["decoded_as"] = decoded_as
            conversational = kind in ("message", "action")
            parent: str | None = None
            conversation: str | None = None
            links = annotations.get(index)
            if links is not None:
                extras["annotated"] = True
                earlier = [number for number in links if number < index]
                if earlier:
                    parent = f"{stream}#{max(earlier)}"
                    for number in sorted(set(earlier)):
                        yield Link(native_id, f"{stream}#{number}", "reply_annotation")
                elif conversational:
                    conversation = native_id
            elif conversational:
                parent = self._addressed(text, created_at, recent)
                if parent is not None:
                    extras["reply_by"] = "addressed nick"
            if kind == "message" and author is not None:
                recent.append((created_at, author, native_id))
                while recent and created_at - recent[0][0] > REPLY_WINDOW:
                    recent.popleft()
            yield Activity(
                native_id=native_id,
                kind=kind,
                created_at=created_at,
                author=author,
                channel=self.channel_id,
                conversation=conversation,
                parent=parent,
                text_raw=text,
                text_plain=text,
                in_conversation=conversational,
                extras=extras,
                raw=line,
            )
        damage = reader.quarantine_damage()
        if damage is not None:
            yield damage
        yield reader.checkpoint()

    @staticmethod
    def _replay(
        parsed: str | tuple[str, str | None, str, datetime | None, str | None],
        index: int,
        stream: str,
        recent: deque[tuple[datetime, str, str]],
        seen: set[str],
    ) -> None:
        """Update the reading state for a line imported before, without emitting it."""
        if isinstance(parsed, str):
            return
        kind, nick, _text, created_at, _ = parsed
        if nick:
            seen.add(_nick_key(nick))
        if kind == "message" and nick and created_at is not None:
            recent.append((created_at, _nick_key(nick), f"{stream}#{index}"))
            while recent and created_at - recent[0][0] > REPLY_WINDOW:
                recent.popleft()

    @staticmethod
    def _addressed(text: str, created_at: datetime, recent: deque[tuple[datetime, str, str]]) -> str | None:
        """The latest message, within the reply window, of the nick this message starts by addressing."""
        found = ADDRESSED.match(text)
        if not found:
            return None
        target = _nick_key(found.group("nick"))
        for when, nick, native_id in reversed(recent):
            if created_at - when > REPLY_WINDOW:
                return None
            if nick == target:
                return native_id
        return None

    def _parse(
        self, line: bytes, clock: _Clock, previous_time: datetime | None
    ) -> str | tuple[str, str | None, str, datetime | None, str | None] | None:
        """(kind, nick, text, time, charset fallback) of a log line, why it cannot be read, or None
        for the logger's own bookkeeping lines (day changed, log opened or closed)."""
        if b"\x00" in line or sum(byte < 9 or 13 < byte < 32 for byte in line[:200]) > 2:
            return "binary data, not a log line"
        decoded_as = None
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode("cp1252", errors="replace")
            decoded_as = "cp1252"
        text = text.rstrip("\r\n")
        day_changed = DAY_CHANGED.match(text)
        if day_changed:
            for form in ("%b %d %Y", "%b %d %H:%M:%S %Y"):
                try:
                    clock.day = datetime.strptime(" ".join(day_changed.group("rest").split()), form).date()
                    clock.last = None
                except ValueError:
                    continue
            return None
        if LOG_CLOSED.match(text):
            return None
        stamp = STAMP.match(text)
        if stamp is None:
            unstamped = UNSTAMPED_EVENT.match(text)
            if unstamped is None:
                return "unrecognised log line"
            kind, nick = self._event(unstamped.group("text"))
            return kind, nick, unstamped.group("text"), previous_time, decoded_as
        created_at = self._time(stamp, clock)
        rest = text[stamp.end() :]
        for style, pattern in BODY_STYLES:
            match = pattern.match(rest)
            if match is None:
                continue
            body = match.group("text") or ""
            if style == "weechat":
                return self._weechat(match.group("who"), body, created_at, decoded_as)
            if style == "event":
                kind, nick = self._event(body)
                return kind, nick, body, created_at, decoded_as
            return style, match.group("nick"), body, created_at, decoded_as
        return "unrecognised log line"

    def _time(self, stamp: re.Match[str], clock: _Clock) -> datetime | None:
        groups = stamp.groupdict()
        clock_text = groups["t1"] or groups["t2"] or groups["t3"] or groups["t4"]
        hour, minute, *second = (int(part) for part in clock_text.split(":"))
        if hour > 23 or minute > 59 or (second and second[0] > 59):
            return None
        when = time(hour, minute, second[0] if second else 0)
        day_text = groups["d1"] or groups["d3"]
        if day_text:
            try:
                clock.day = date.fromisoformat(day_text)
            except ValueError:
                return None
            clock.last = when
            return datetime.combine(clock.day, when, self.tz).astimezone(UTC)
        return clock.at(when)

    @staticmethod
    def _event(body: str) -> tuple[str, str | None]:
        for kind, pattern in (("join", JOIN), ("part", PART), ("quit", QUIT), ("nick", NICK_CHANGE)):
            found = pattern.match(body)
            if found:
                return kind, found.group("nick")
        return "system", None

    def _weechat(
        self, who: str, body: str, created_at: datetime | None, decoded_as: str | None
    ) -> tuple[str, str | None, str, datetime | None, str | None]:
        who = who.strip()
        if who in ("-->", "<--", "--", "-!-", "=!="):
            kind, nick = self._event(body)
            return kind, nick, body, created_at, decoded_as
        if who == "*":
            nick, _, rest = body.partition(" ")
            return "action", nick, rest, created_at, decoded_as
        return "message", who, body, created_at, decoded_as
