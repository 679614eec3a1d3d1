"""Mailing-list archives: mbox files and pipermail (Mailman 2) text archives, plain or gzip.

Messages are split on mbox separator lines (``From <sender> <asctime date>``); a body line
that merely starts with "From " does not split a message.  Headers are parsed by hand (the
``email`` package only handles messages that really are MIME multipart or transfer-encoded).
See docs/connectors/mbox.md for the mapping to the model.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from parvis.connectors._files import LineReader, expand_paths, open_binary, total_size
from parvis.records import Activity, Channel, Cursor, Identity, ProgressFn, Quarantined, Record

CHECKPOINT_EVERY = 100
MAX_MESSAGE_BYTES = 64 * 2**20
NOT_ARCHIVES = (".md", ".tsv", ".json", ".html", ".htm", ".xml", ".csv")

SEPARATOR = re.compile(
    rb"^From (\S.*?)\s+(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +"
    rb"(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4})\s*$"
)
MONTHS = {name: number for number, name in enumerate(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
SEPARATORS = re.compile(
    rb"^From \S[^\n]*? (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +"
    rb"\d{1,2} \d\d:\d\d:\d\d \d{4}[ \t\r]*$",
    re.M,
)
HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
ANGLE_IDS = re.compile(r"<([^<>\s]+)>")
LIST_TAG = re.compile(r"^\s*\[([^\]]{1,80})\]\s*")
REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|réf|rif|fwd?|tr)\s*(?:\[\d+\])?\s*:\s*|\[[^\]]{1,80}\]\s*)+", re.I
)

# How list servers write "user@domain.org" to hide it from harvesters.  The first styles are
# reversible; the later mangling of some Mailman installations replaces letters too (a, s, n
# and "." by "@"; i, l, f by "|" or "i"), so addresses are compared by a skeleton in which
# every character the mangling may have changed is replaced the same way.
ADDRESS_SEPARATOR = re.compile(r"\s+(?:at|@end\|ng \|rom|@ending from|m@ili@g off|m@iii@g oii)\s+", re.I)
SKELETON = str.maketrans({"a": "@", "s": "@", "n": "@", ".": "@", "i": "i", "l": "i", "f": "i", "|": "i"})
CLEAN_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
CLEAN_DOMAIN = re.compile(r"^[a-z0-9-]+(?:\.[a-z0-9-]+)+$")
NAME_IN_PARENS = re.compile(r"^(.*?)\s*\((.*)\)\s*$")
NAME_AND_ANGLE = re.compile(r"^\s*\"?(.*?)\"?\s*<([^<>]*)>\s*$")
MAILING_FOOTER = re.compile(r"\n_{20,}\n[^\n]*mailing list\n.*\Z", re.S)


def address_key(address: str) -> tuple[str, str | None] | None:
    """(skeleton, clean address or None) for an address in any archive style; None if there is none."""
    text = address.strip().strip("<>").strip().lower()
    if not text:
        return None
    parts = ADDRESS_SEPARATOR.split(text, maxsplit=1)
    mangled = False
    if len(parts) == 2:
        local, domain = parts
        mangled = not re.search(r"\s+at\s+", text)
    elif text.count("@") == 1 and " " not in text:
        local, domain = text.split("@")
    else:
        return None
    local, domain = local.strip(), domain.strip()
    skeleton = f"{local.translate(SKELETON)}@{domain.translate(SKELETON)}"
    clean = None
    if not mangled and CLEAN_LOCAL.match(local) and CLEAN_DOMAIN.match(domain):
        clean = f"{local}@{domain}"
    return skeleton, clean


def normalised_subject(subject: str) -> str:
    without_prefixes = REPLY_PREFIX.sub("", subject)
    return " ".join(without_prefixes.split()).lower()


def _decode_header(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def _bytes_to_text(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Text and, when the declared charset could not be used, the one that was."""
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(candidate), None if candidate == (charset or "utf-8") else candidate
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace"), "cp1252"


def _parse_from(value: str) -> tuple[str | None, str | None]:
    """(display name, address) of a From header in any of the usual forms."""
    angle = NAME_AND_ANGLE.match(value)
    if angle:
        return angle.group(1).strip() or None, angle.group(2).strip()
    parens = NAME_IN_PARENS.match(value)
    if parens:
        return parens.group(2).strip() or None, parens.group(1).strip()
    return None, value.strip()


def _separator_date(match: re.Match[bytes]) -> datetime:
    month = MONTHS[match.group(2)]
    day, hour, minute, second, year = (int(match.group(index)) for index in (3, 4, 5, 6, 7))
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


class MailArchiveConnector:
    platform = "mbox"

    def __init__(self, paths: Sequence[str | Path], list_name: str | None = None) -> None:
        found = expand_paths(paths)
        self.files = [(stream, path) for stream, path in found if not path.name.lower().endswith(NOT_ARCHIVES)]
        self.list_name = list_name or self._guess_list_name(paths)
        self.default_source = re.sub(r"[^a-z0-9]+", "-", self.list_name.lower()).strip("-") or "mailing-list"
        self.channel_id = f"list:{self.list_name}"

    def _guess_list_name(self, paths: Sequence[str | Path]) -> str:
        for _stream, path in self.files[:3]:
            try:
                with open_binary(path) as handle:
                    for number, line in enumerate(handle):
                        if number > 2000:
                            break
                        if line[:8].lower() == b"subject:":
                            tag = LIST_TAG.match(line[8:].decode("utf-8", "replace"))
                            if tag:
                                return tag.group(1).strip()
            except (OSError, EOFError):
                continue
        first = Path(paths[0]) if paths else Path("mailing-list")
        return (first if first.is_dir() else first.parent).name or "mailing-list"

    def total_bytes(self) -> int:
        return total_size(self.files)

    def records(self, resume: Mapping[str, Cursor], progress: ProgressFn | None = None) -> Iterator[Record]:
        yield Channel(self.channel_id, self.list_name, kind="list")
        seen_senders: dict[str, tuple[bool, bool]] = {}
        for stream, path in self.files:
            reader = LineReader(stream, path, resume.get(stream), progress)
            yield from self._read_file(reader, seen_senders)

    def _read_file(self, reader: LineReader, seen_senders: dict[str, tuple[bool, bool]]) -> Iterator[Record]:
        pending: list[bytes] = []  # the message being read, when it spans blocks
        pending_separator: re.Match[bytes] | None = None
        pending_position = ""
        pending_size = 0
        count = 0
        for start, block in reader.blocks():
            cursor = 0
            for match in SEPARATORS.finditer(block):
                head = block[cursor : match.start()]
                if pending or pending_separator is not None or head.strip():
                    if pending_size < MAX_MESSAGE_BYTES:
                        pending.append(head)
                    position = pending_position or reader.position_at(start)
                    yield from self._message(reader.stream, position, pending_separator, pending, seen_senders)
                    count += 1
                    if count % CHECKPOINT_EVERY == 0:
                        yield reader.checkpoint_at(start + match.start())
                separator = SEPARATOR.match(match.group())
                pending, pending_separator = [], separator
                pending_position = reader.position_at(start + match.start())
                pending_size = 0
                cursor = match.start()
            tail = block[cursor:]
            if pending_size < MAX_MESSAGE_BYTES:
                pending.append(tail)
                pending_size += len(tail)
        if pending_separator is not None or any(piece.strip() for piece in pending):
            yield from self._message(reader.stream, pending_position, pending_separator, pending, seen_senders)
        damage = reader.quarantine_damage()
        if damage is not None:
            yield damage
        yield reader.checkpoint()

    def _message(
        self,
        stream: str,
        position: str,
        separator: re.Match[bytes] | None,
        lines: list[bytes],
        seen_senders: dict[str, tuple[bool, bool]],
    ) -> Iterator[Record]:
        raw = b"".join(lines)
        lines = raw.splitlines(keepends=True)
        body_start = 1 if separator is not None else 0
        headers, body_from = self._headers(lines, body_start)
        if "from" not in headers and "message-id" not in headers:
            reason = "no mail headers after the separator line" if separator else "text before the first message"
            yield Quarantined(stream, position, reason, raw)
            return
        created_at = self._date(headers.get("date"), None)
        date_from_separator = created_at is None
        if created_at is None:
            created_at = self._date(None, separator)
        if created_at is None:
            yield Quarantined(stream, position, "no usable Date header nor separator date", raw)
            return
        body_lines = lines[body_from:]
        text, text_extras = self._body(headers, raw, b"".join(body_lines))
        subject = _decode_header(headers.get("subject", ""))
        author = self._sender(headers.get("from", ""))
        if author is not None:
            # Emit a sender when first seen, and again when it brings a name or an address still unknown.
            known_name, known_email = seen_senders.get(author.native_id, (False, False))
            news = author.native_id not in seen_senders or (author.display_name and not known_name)
            if news or (author.email and not known_email):
                seen_senders[author.native_id] = (
                    known_name or bool(author.display_name),
                    known_email or bool(author.email),
                )
                yield author
        message_id = self._first_id(headers.get("message-id", ""))
        if message_id is None:
            digest = hashlib.sha1(
                b"\0".join(
                    [
                        headers.get("from", "").encode(),
                        created_at.isoformat().encode(),
                        subject.encode(),
                        b"".join(body_lines),
                    ]
                )
            ).hexdigest()
            message_id = f"sha1:{digest}"
        references = ANGLE_IDS.findall(headers.get("references", ""))
        in_reply_to = self._first_id(headers.get("in-reply-to", ""))
        parent = in_reply_to or (references[-1] if references else None)
        untagged = LIST_TAG.sub("", subject, count=1)
        is_reply = parent is not None or bool(re.match(r"\s*(re|aw|sv)\s*(\[\d+\])?\s*:", untagged, re.I))
        title = LIST_TAG.sub("", subject, count=1).strip() or None
        extras: dict[str, object] = {**text_extras}
        if date_from_separator:
            extras["date_from"] = "separator line"
        yield Activity(
            native_id=message_id,
            kind="reply" if is_reply else "message",
            created_at=created_at,
            author=author.native_id if author else None,
            channel=self.channel_id,
            conversation=references[0] if references else None,
            parent=parent if parent != message_id else None,
            title=title,
            text_raw=text,
            text_plain=self._plain(text),
            text_format="text",
            thread_key="subject:" + normalised_subject(subject) if subject else None,
            reply_by_key=is_reply and parent is None,
            extras=extras,
            raw=raw,
        )

    @staticmethod
    def _headers(lines: list[bytes], start: int) -> tuple[dict[str, str], int]:
        """Header fields (lower-cased names, first occurrence, unfolded) and where the body starts."""
        headers: dict[str, str] = {}
        name: str | None = None
        for index in range(start, len(lines)):
            line = lines[index]
            if line in (b"\n", b"\r\n"):
                return headers, index + 1
            if line[:1] in (b" ", b"\t"):
                if name is not None:
                    headers[name] += " " + line.strip().decode("utf-8", "replace")
                continue
            if not HEADER_LINE.match(line):
                return headers, index
            key, _, value = line.partition(b":")
            name = key.decode("ascii", "replace").lower()
            if name in headers:
                name = None  # a repeated field: the first one counts
            else:
                headers[name] = value.strip().decode("utf-8", "replace")
        return headers, len(lines)

    @staticmethod
    def _first_id(value: str) -> str | None:
        found = ANGLE_IDS.search(value)
        if found:
            return found.group(1)
        value = value.strip()
        return value or None

    @staticmethod
    def _date(value: str | None, separator: re.Match[bytes] | None) -> datetime | None:
        if value:
            try:
                parsed = parsedate_to_datetime(value)
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=UTC)
                return parsed.astimezone(UTC)
            except (TypeError, ValueError, IndexError, OverflowError):
                pass
        if separator is not None:
            try:
                return _separator_date(separator)
            except ValueError:
                return None
        return None

    def _body(self, headers: Mapping[str, str], raw: bytes, body: bytes) -> tuple[str, dict[str, object]]:
        content_type = headers.get("content-type", "text/plain").lower()
        encoding = headers.get("content-transfer-encoding", "").strip().lower()
        extras: dict[str, object] = {}
        if content_type.startswith("multipart/") or encoding in ("base64", "quoted-printable"):
            text, charset_used = self._mime_text(raw)
        else:
            charset = re.search(r"charset=\"?([\w.:-]+)", content_type)
            text, charset_used = _bytes_to_text(body, charset.group(1) if charset else None)
        if charset_used:
            extras["decoded_as"] = charset_used
        if "\x00" in text:
            text = text.replace("\x00", "")
            extras["nul_removed"] = True
        return text, extras

    @staticmethod
    def _mime_text(raw: bytes) -> tuple[str, str | None]:
        start = raw.find(b"\n") + 1 if raw.startswith(b"From ") else 0
        message = email.message_from_bytes(raw[start:], policy=email.policy.compat32)
        parts: list[str] = []
        fallback: str | None = None
        chosen: list[Message] = [
            part for part in message.walk() if part.get_content_type() == "text/plain" and not part.is_multipart()
        ]
        if not chosen and not message.is_multipart():
            chosen = [message]
        for part in chosen:
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            text, used = _bytes_to_text(payload, part.get_content_charset())
            fallback = fallback or used
            parts.append(text)
        return "\n".join(parts), fallback

    @staticmethod
    def _plain(text: str) -> str:
        """The message's own words: quoted lines, the list footer and trailing blank lines removed."""
        if "\n____" in text:
            text = MAILING_FOOTER.sub("\n", text)
        if not text.startswith(">") and "\n>" not in text:
            return text.strip()
        kept = [line for line in text.splitlines() if not line.startswith(">")]
        return "\n".join(kept).strip()

    @staticmethod
    def _sender(value: str) -> Identity | None:
        if not value:
            return None
        value = _decode_header(value)
        name, address = _parse_from(value)
        key = address_key(address) if address else None
        if key is None:
            handle = (name or address or value).strip()
            if not handle:
                return None
            return Identity(f"name:{handle.lower()}", handle, handle, authoritative=False)
        skeleton, clean = key
        real_name = name if name and not address_key(name) and "@" not in name else None
        return Identity(f"addr:{skeleton}", clean or address or skeleton, real_name, clean, authoritative=False)
