"""The ingest path: the only writer of community data.

It reads the records a connector yields and writes them in batches.  Each batch
is one transaction holding its records and the resume cursors of the streams
they came from, so a process killed at any moment leaves the store as it was
after the last committed batch, and re-running continues from there: the
result is the same as an uninterrupted import.  Writes are upserts keyed by
stable ids, so importing the same data twice changes nothing.
"""

from __future__ import annotations

import functools
import hashlib
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from parvis.records import (
    THREAD_KEY_WINDOW,
    Activity,
    Channel,
    Checkpoint,
    Connector,
    Cursor,
    Identity,
    Link,
    ProgressFn,
    Quarantined,
    Record,
)
from parvis.store import Store
from parvis.store.schema import (
    activities,
    channels,
    conversations,
    cursors,
    identities,
    import_runs,
    links,
    members,
    quarantine,
    raw_payloads,
    sources,
)

DEFAULT_BATCH_SIZE = 5000
_IN_CHUNK = 500  # ids per IN (...) query, well under every driver's parameter limit


@dataclass
class Counts:
    added: int = 0
    updated: int = 0
    present: int = 0


@dataclass
class ImportSummary:
    source_id: str
    activities: Counts = field(default_factory=Counts)
    identities: Counts = field(default_factory=Counts)
    channels: Counts = field(default_factory=Counts)
    links_added: int = 0
    quarantined: int = 0
    quarantined_before: int = 0
    streams_unchanged: int = 0

    @property
    def added(self) -> int:
        return self.activities.added + self.identities.added + self.channels.added + self.links_added

    @property
    def updated(self) -> int:
        return self.activities.updated + self.identities.updated + self.channels.updated

    @property
    def present(self) -> int:
        return self.activities.present + self.identities.present + self.channels.present

    def one_line(self) -> str:
        return (
            f"{self.source_id}: {self.added:,} added, {self.present:,} already present, "
            f"{self.updated:,} updated, {self.quarantined:,} quarantined "
            f"(activities {self.activities.added:,} added / {self.activities.present:,} present; "
            f"identities {self.identities.added:,} added)"
            + (f"; {self.streams_unchanged:,} files unchanged since the last import" if self.streams_unchanged else "")
        )


QuarantineHook = Callable[[Quarantined], None]


def store_id(source_id: str, native_id: str) -> str:
    return f"{source_id}:{native_id}"


def member_id_for(identity_id: str) -> str:
    """The id of the member created along with an identity."""
    return f"member:{identity_id}"


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _digest(*parts: object) -> str:
    """Digest of a record's fields: strings as they are, bytes as they are, anything else by repr."""
    hasher = hashlib.blake2b(digest_size=16)
    texts: list[str] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, bytes):
            hasher.update(part)
            texts.append("\x1ebytes")
        else:
            texts.append("\x1e" + repr(part))
    hasher.update("\x1f".join(texts).encode("utf-8", "surrogatepass"))
    return hasher.hexdigest()


@dataclass(frozen=True)
class _PreparedInsert:
    """An INSERT ... ON CONFLICT DO NOTHING compiled once, with the columns' own bind processors."""

    sql: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool


_prepared_inserts: dict[tuple[str, str, tuple[str, ...]], _PreparedInsert] = {}


def _prepare_insert(connection: Connection, table: Table, columns: tuple[str, ...]) -> _PreparedInsert:
    dialect = connection.dialect
    key = (dialect.name, table.name, columns)
    prepared = _prepared_inserts.get(key)
    if prepared is None:
        module = postgresql if dialect.name == "postgresql" else sqlite
        compiled = module.insert(table).on_conflict_do_nothing().compile(dialect=dialect, column_keys=list(columns))
        positional = bool(compiled.positiontup)
        order = tuple(compiled.positiontup) if positional else columns
        prepared = _PreparedInsert(
            compiled.string,
            order,
            tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order),
            positional,
        )
        _prepared_inserts[key] = prepared
    return prepared


def _insert(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows (all with the same keys), skipping ids already stored.

    The hot path of every import: the statement is compiled once and the rows go
    straight to the driver's executemany, converted by SQLAlchemy's own column
    processors so they read back exactly as if SQLAlchemy had written them.
    """
    if not rows:
        return
    prepared = _prepare_insert(connection, table, tuple(rows[0]))
    columns = prepared.columns
    processing = [(index, process) for index, process in enumerate(prepared.processors) if process is not None]
    converted: list[list[Any]] = []
    for row in rows:
        values = [row[name] for name in columns]
        for index, process in processing:
            value = values[index]
            if value is not None:
                values[index] = process(value)
        converted.append(values)
    if prepared.positional:
        connection.exec_driver_sql(prepared.sql, [tuple(values) for values in converted])
    else:
        connection.exec_driver_sql(prepared.sql, [dict(zip(columns, values, strict=True)) for values in converted])


def _upsert(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> None:
    if not rows:
        return
    dialect = connection.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table)
    changed = {name: statement.excluded[name] for name in rows[0] if name not in keys}
    connection.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changed), list(rows))


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def _existing(connection: Connection, table: Table, ids: Sequence[str], *columns: str) -> dict[str, tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {}
    if not ids:
        return found
    selected = [table.c.id, *(table.c[name] for name in columns)]
    for chunk in _chunks(ids):
        for row in connection.execute(select(*selected).where(table.c.id.in_(chunk))):
            found[row[0]] = tuple(row[1:])
    return found


COMPRESS_THREADS = max(1, min(4, os.cpu_count() or 1))


def _compressed(raws: Sequence[bytes]) -> list[bytes]:
    return [zlib.compress(raw, 1) for raw in raws]


def _compress_all(raws: Sequence[bytes]) -> list[bytes]:
    """Compress on the pool, one task per slice: a future per payload would cost more than zlib does."""
    step = max(1, -(-len(raws) // COMPRESS_THREADS))
    slices = [raws[start : start + step] for start in range(0, len(raws), step)]
    return [payload for done in _compressor().map(_compressed, slices) for payload in done]


@functools.cache
def _compressor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=COMPRESS_THREADS, thread_name_prefix="parvis-zlib")


class _Batch:
    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self.identities: dict[str, Identity] = {}
        self.activities: dict[str, Activity] = {}
        self.links: dict[tuple[str, str, str], Link] = {}
        self.quarantined: list[Quarantined] = []
        self.checkpoints: dict[str, Checkpoint] = {}
        self.size = 0

    def add(self, record: Record) -> None:
        self.size += 1
        if isinstance(record, Activity):
            self.activities[record.native_id] = record
        elif isinstance(record, Identity):
            previous = self.identities.get(record.native_id)
            if previous is None or record.authoritative or not previous.authoritative:
                self.identities[record.native_id] = (
                    _fill_gaps(previous, record) if previous and not record.authoritative else record
                )
        elif isinstance(record, Channel):
            self.channels[record.native_id] = record
        elif isinstance(record, Link):
            self.links[(record.from_activity, record.to_activity, record.kind)] = record
        elif isinstance(record, Quarantined):
            self.quarantined.append(record)
        else:
            self.checkpoints[record.stream] = record


def _fill_gaps(kept: Identity, seen: Identity) -> Identity:
    """An observation only fills what is still unknown: the first value seen wins."""
    return Identity(
        native_id=kept.native_id,
        handle=kept.handle,
        display_name=kept.display_name or seen.display_name,
        email=kept.email or seen.email,
        created_at=kept.created_at or seen.created_at,
        is_bot=kept.is_bot or seen.is_bot,
        extras=kept.extras or seen.extras,
        authoritative=kept.authoritative,
        raw=kept.raw or seen.raw,
    )


class Ingestor:
    """Writes one source's records.  Use :func:`ingest` unless you need the pieces."""

    def __init__(self, store: Store, source_id: str, platform: str, source_name: str | None = None) -> None:
        self.store = store
        self.source_id = source_id
        self.platform = platform
        self.source_name = source_name or source_id
        self.summary = ImportSummary(source_id)

    def sid(self, native_id: str) -> str:
        return store_id(self.source_id, native_id)

    def ensure_source(self, connection: Connection) -> None:
        _insert(
            connection,
            sources,
            [{"id": self.source_id, "platform": self.platform, "name": self.source_name, "url": None, "extras": {}}],
        )
        platform = connection.execute(select(sources.c.platform).where(sources.c.id == self.source_id)).scalar_one()
        if platform != self.platform:
            raise IngestError(
                f"source {self.source_id!r} holds {platform} data; choose another --source name for {self.platform}"
            )

    def load_cursors(self, connection: Connection) -> dict[str, Cursor]:
        rows = connection.execute(
            select(cursors.c.stream, cursors.c.offset, cursors.c.digest, cursors.c.line).where(
                cursors.c.source_id == self.source_id
            )
        )
        return {row.stream: Cursor(row.offset, row.digest, row.line) for row in rows}

    # -- writing one batch -------------------------------------------------------------------------

    def write(self, connection: Connection, batch: _Batch) -> None:
        self._write_channels(connection, batch)
        self._write_identities(connection, batch)
        self._write_activities(connection, batch)
        self._write_links(connection, batch)
        self._write_quarantine(connection, batch)
        self._write_cursors(connection, batch)

    def _write_channels(self, connection: Connection, batch: _Batch) -> None:
        records = list(batch.channels.values())
        self._ensure_referenced_channels(batch, records)
        rows = [
            {
                "id": self.sid(channel.native_id),
                "source_id": self.source_id,
                "native_id": channel.native_id,
                "name": channel.name,
                "kind": channel.kind,
                "url": channel.url,
                "extras": channel.extras,
                "content_hash": _digest(channel.name, channel.kind, channel.url, channel.extras),
            }
            for channel in records
        ]
        self._write_versioned(connection, channels, rows, self.summary.channels)

    def _ensure_referenced_channels(self, batch: _Batch, records: list[Channel]) -> None:
        named = set(batch.channels)
        for activity in batch.activities.values():
            if activity.channel is not None and activity.channel not in named:
                named.add(activity.channel)
                records.append(Channel(activity.channel, activity.channel, extras={"stub": True}))

    def _write_versioned(
        self, connection: Connection, table: Table, rows: list[dict[str, Any]], counts: Counts
    ) -> list[dict[str, Any]]:
        """Insert new rows, update rows whose content changed; return the new rows."""
        existing = _existing(connection, table, [row["id"] for row in rows], "content_hash")
        new_rows = [row for row in rows if row["id"] not in existing]
        changed = [row for row in rows if row["id"] in existing and existing[row["id"]][0] != row["content_hash"]]
        stub_channels = [row for row in changed if table is channels and row["extras"].get("stub")]
        changed = [row for row in changed if row not in stub_channels]
        _insert(connection, table, new_rows)
        for row in changed:
            values = {name: value for name, value in row.items() if name not in ("id", "source_id", "native_id")}
            connection.execute(update(table).where(table.c.id == row["id"]).values(**values))
        counts.added += len(new_rows)
        counts.updated += len(changed)
        counts.present += len(rows) - len(new_rows) - len(changed) - len(stub_channels)
        return new_rows

    def _write_identities(self, connection: Connection, batch: _Batch) -> None:
        records = dict(batch.identities)
        for activity in batch.activities.values():
            if activity.author is not None and activity.author not in records:
                records[activity.author] = Identity(activity.author, activity.author, authoritative=False)
        authoritative = [record for record in records.values() if record.authoritative]
        observed = [record for record in records.values() if not record.authoritative]
        rows = [self._identity_row(record) for record in authoritative]
        existing = _existing(
            connection, identities, [self.sid(record.native_id) for record in observed], "display_name", "email"
        )
        for record in observed:
            stored = existing.get(self.sid(record.native_id))
            if stored is None:
                rows.append(self._identity_row(record))
                continue
            display_name, email = stored
            fill: dict[str, Any] = {}
            if display_name is None and record.display_name:
                fill["display_name"] = record.display_name
            if email is None and record.email:
                fill["email"] = record.email
            if fill:
                connection.execute(
                    update(identities).where(identities.c.id == self.sid(record.native_id)).values(**fill)
                )
                self.summary.identities.updated += 1
        new_rows, changed_rows = self._write_versioned_identities(connection, rows)
        self._archive(connection, "identity", [(row["id"], records[row["native_id"]].raw) for row in new_rows])
        self._archive(
            connection,
            "identity",
            [(row["id"], records[row["native_id"]].raw) for row in changed_rows],
            replacing=True,
        )

    def _write_versioned_identities(
        self, connection: Connection, rows: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Insert new identities (with their members), update changed ones; return both lists."""
        existing = _existing(connection, identities, [row["id"] for row in rows], "content_hash")
        new_rows = [row for row in rows if row["id"] not in existing]
        # Members first: identities reference them.
        _insert(
            connection,
            members,
            [
                {"id": row["member_id"], "display_name": row["display_name"] or row["handle"], "merged_into": None}
                for row in new_rows
            ],
        )
        _insert(connection, identities, new_rows)
        counts = self.summary.identities
        changed_rows: list[dict[str, Any]] = []
        for row in rows:
            stored = existing.get(row["id"])
            if stored is None:
                continue
            if stored[0] == row["content_hash"]:
                counts.present += 1
                continue
            values = {
                name: value
                for name, value in row.items()
                if name not in ("id", "source_id", "native_id", "member_id", "home_member_id")
            }
            connection.execute(update(identities).where(identities.c.id == row["id"]).values(**values))
            changed_rows.append(row)
            counts.updated += 1
        counts.added += len(new_rows)
        return new_rows, changed_rows

    def _identity_row(self, record: Identity) -> dict[str, Any]:
        identity_id = self.sid(record.native_id)
        created_at = _naive_utc(record.created_at)
        return {
            "id": identity_id,
            "source_id": self.source_id,
            "native_id": record.native_id,
            "member_id": member_id_for(identity_id),
            "home_member_id": member_id_for(identity_id),
            "handle": record.handle,
            "display_name": record.display_name,
            "email": record.email,
            "created_at": created_at,
            "is_bot": record.is_bot,
            "extras": record.extras,
            "content_hash": _digest(
                record.handle, record.display_name, record.email, created_at, record.is_bot, record.extras, record.raw
            ),
        }

    def _activity_hash(self, record: Activity) -> str:
        return _digest(
            record.kind,
            record.in_conversation,
            record.author,
            record.channel,
            record.conversation,
            record.parent,
            record.created_at,
            record.edited_at,
            record.title,
            record.text_raw,
            record.text_plain,
            record.url,
            record.extras,
            record.raw,
        )

    def _write_activities(self, connection: Connection, batch: _Batch) -> None:
        records = list(batch.activities.values())
        ids = [self.sid(record.native_id) for record in records]
        hashes = [self._activity_hash(record) for record in records]
        existing = _existing(connection, activities, ids, "content_hash")
        counts = self.summary.activities
        resolver = _ConversationResolver(self, connection)
        resolver.prefetch(records, existing)
        new_rows: list[dict[str, Any]] = []
        archived: list[tuple[str, bytes | None]] = []
        rearchived: list[tuple[str, bytes | None]] = []
        for record, activity_id, content_hash in zip(records, ids, hashes, strict=True):
            stored = existing.get(activity_id)
            if stored is not None and stored[0] == content_hash:
                counts.present += 1
                continue
            row = self._activity_row(record, activity_id, content_hash)
            if stored is None:
                row["conversation_id"] = resolver.resolve(record, activity_id) if record.in_conversation else None
                new_rows.append(row)
                archived.append((activity_id, record.raw))
                counts.added += 1
            else:
                if record.conversation is not None and record.in_conversation:
                    row["conversation_id"] = resolver.resolve(record, activity_id)
                values = {name: value for name, value in row.items() if name not in ("id", "source_id", "native_id")}
                resolver.flush()
                connection.execute(update(activities).where(activities.c.id == activity_id).values(**values))
                rearchived.append((activity_id, record.raw))
                counts.updated += 1
        resolver.flush()
        _insert(connection, activities, new_rows)
        self._archive(connection, "activity", archived)
        self._archive(connection, "activity", rearchived, replacing=True)

    def _activity_row(self, record: Activity, activity_id: str, content_hash: str) -> dict[str, Any]:
        sid = self.sid
        return {
            "id": activity_id,
            "source_id": self.source_id,
            "native_id": record.native_id,
            "kind": record.kind,
            "identity_id": sid(record.author) if record.author is not None else None,
            "channel_id": sid(record.channel) if record.channel is not None else None,
            "parent_id": sid(record.parent) if record.parent is not None else None,
            "created_at": _naive_utc(record.created_at),
            "edited_at": _naive_utc(record.edited_at),
            "title": record.title,
            "text_raw": record.text_raw,
            "text_plain": record.text_plain,
            "text_format": record.text_format,
            "url": record.url,
            "extras": record.extras,
            "content_hash": content_hash,
        }

    def _archive(
        self,
        connection: Connection,
        kind: str,
        items: Sequence[tuple[str, bytes | None]],
        *,
        replacing: bool = False,
    ) -> None:
        """Keep the raw bytes of new records (``replacing``: of changed records)."""
        kept = [(item_id, raw) for item_id, raw in items if raw is not None]
        # zlib releases the GIL: compressing a batch on two threads nearly halves its cost.
        payloads = _compress_all([raw for _, raw in kept if raw is not None])
        rows = [
            {"item_id": f"{kind}:{item_id}", "source_id": self.source_id, "payload": payload}
            for (item_id, _), payload in zip(kept, payloads, strict=True)
        ]
        if replacing:
            _upsert(connection, raw_payloads, rows, ["item_id"])
        else:
            _insert(connection, raw_payloads, rows)

    def _write_links(self, connection: Connection, batch: _Batch) -> None:
        rows = [
            {
                "source_id": self.source_id,
                "from_activity_id": self.sid(link.from_activity),
                "to_activity_id": self.sid(link.to_activity),
                "kind": link.kind,
            }
            for link in batch.links.values()
        ]
        if not rows:
            return
        before = self._count(connection, links)
        _insert(connection, links, rows)
        self.summary.links_added += self._count(connection, links) - before

    def _count(self, connection: Connection, table: Table) -> int:
        return int(
            connection.execute(
                select(func.count()).select_from(table).where(table.c.source_id == self.source_id)
            ).scalar_one()
        )

    def _write_quarantine(self, connection: Connection, batch: _Batch) -> None:
        rows: list[dict[str, Any]] = [
            {
                "id": _digest(self.source_id, item.stream, item.position),
                "source_id": self.source_id,
                "stream": item.stream,
                "position": item.position,
                "reason": item.reason,
                "raw": item.raw,
            }
            for item in batch.quarantined
        ]
        if not rows:
            return
        existing = _existing(connection, quarantine, [row["id"] for row in rows])
        new_rows = {row["id"]: row for row in rows if row["id"] not in existing}
        _insert(connection, quarantine, list(new_rows.values()))
        self.summary.quarantined += len(new_rows)
        self.summary.quarantined_before += len(rows) - len(new_rows)

    def _write_cursors(self, connection: Connection, batch: _Batch) -> None:
        rows = [
            {
                "source_id": self.source_id,
                "stream": point.stream,
                "offset": point.offset,
                "digest": point.digest,
                "line": point.line,
            }
            for point in batch.checkpoints.values()
        ]
        _upsert(connection, cursors, rows, ["source_id", "stream"])


class _ConversationResolver:
    """Gives each new activity its conversation, creating conversations as needed (see Activity)."""

    def __init__(self, ingestor: Ingestor, connection: Connection) -> None:
        self.ingestor = ingestor
        self.connection = connection
        self.activity_conversation: dict[str, str] = {}
        self.known: dict[str, dict[str, Any]] = {}  # conversation id -> stored (or pending) row
        self.pending_new: dict[str, dict[str, Any]] = {}
        self.pending_updates: dict[str, dict[str, Any]] = {}

    def prefetch(self, records: Sequence[Activity], existing: Mapping[str, Any]) -> None:
        sid = self.ingestor.sid
        named = {r.parent for r in records if r.parent is not None} | {
            r.conversation for r in records if r.conversation is not None
        }
        for chunk in _chunks(sorted(sid(native_id) for native_id in named)):
            for row in self.connection.execute(
                select(activities.c.id, activities.c.conversation_id).where(activities.c.id.in_(chunk))
            ):
                self.activity_conversation[row.id] = row.conversation_id
        candidates = set()
        for record in records:
            if record.conversation is not None:
                candidates.add(sid(record.conversation))
            if record.parent is not None:
                candidates.add(sid(record.parent))
            candidates.add(sid(record.native_id))
        self._load(sorted(candidates))

    def _load(self, conversation_ids: Sequence[str]) -> None:
        columns = [
            conversations.c.id,
            conversations.c.created_at,
            conversations.c.root_activity_id,
            conversations.c.title,
        ]
        for chunk in _chunks([cid for cid in conversation_ids if cid not in self.known]):
            for row in self.connection.execute(select(*columns).where(conversations.c.id.in_(chunk))):
                self.known[row.id] = {
                    "created_at": row.created_at,
                    "root_activity_id": row.root_activity_id,
                    "title": row.title,
                }

    def resolve(self, record: Activity, activity_id: str) -> str:
        sid = self.ingestor.sid
        parent_conversation = self.activity_conversation.get(sid(record.parent)) if record.parent else None
        if parent_conversation is not None:
            conversation_id = parent_conversation
        elif record.conversation is not None:
            # A connector may name its conversation after a message that is itself a reply
            # (a References list that does not start at the root): that message's conversation.
            named = sid(record.conversation)
            conversation_id = self.activity_conversation.get(named, named)
        elif record.parent is not None:
            conversation_id = sid(record.parent)
        elif activity_id in self.known:
            conversation_id = activity_id
        elif record.reply_by_key and record.thread_key is not None:
            conversation_id = self._by_thread_key(record) or activity_id
        else:
            conversation_id = activity_id
        self._attach(conversation_id, record, activity_id)
        self.activity_conversation[activity_id] = conversation_id
        return conversation_id

    def _by_thread_key(self, record: Activity) -> str | None:
        created_at = _naive_utc(record.created_at)
        assert created_at is not None
        window_start = created_at - THREAD_KEY_WINDOW
        best: tuple[datetime, str] | None = None
        for conversation_id, row in self.pending_new.items():
            in_window = row["thread_key"] == record.thread_key and window_start <= row["created_at"] <= created_at
            if in_window and (best is None or (row["created_at"], conversation_id) > best):
                best = (row["created_at"], conversation_id)
        stored = self.connection.execute(
            select(conversations.c.id, conversations.c.created_at)
            .where(
                and_(
                    conversations.c.source_id == self.ingestor.source_id,
                    conversations.c.thread_key == record.thread_key,
                    conversations.c.created_at >= window_start,
                    conversations.c.created_at <= created_at,
                )
            )
            .order_by(conversations.c.created_at.desc(), conversations.c.id.desc())
            .limit(1)
        ).first()
        if stored is not None and (best is None or (stored.created_at, stored.id) > best):
            best = (stored.created_at, stored.id)
        return best[1] if best else None

    def _attach(self, conversation_id: str, record: Activity, activity_id: str) -> None:
        created_at = _naive_utc(record.created_at)
        is_root = (
            conversation_id in (activity_id, self.ingestor.sid(record.conversation or "")) and record.parent is None
        )
        row = self.known.get(conversation_id)
        if row is None:
            row = {
                "id": conversation_id,
                "source_id": self.ingestor.source_id,
                "native_id": conversation_id.split(":", 1)[1],
                "channel_id": self.ingestor.sid(record.channel) if record.channel else None,
                "title": record.title,
                "created_at": created_at,
                "root_activity_id": activity_id if is_root else None,
                "thread_key": record.thread_key,
            }
            self.known[conversation_id] = row
            self.pending_new[conversation_id] = row
            return
        changes: dict[str, Any] = {}
        if is_root and row["root_activity_id"] is None:
            changes["root_activity_id"] = activity_id
            if record.title:
                changes["title"] = record.title
        elif row["title"] is None and record.title:
            changes["title"] = record.title
        if created_at is not None and created_at < row["created_at"]:
            changes["created_at"] = created_at
        if not changes:
            return
        row.update(changes)
        if conversation_id not in self.pending_new:
            self.pending_updates.setdefault(conversation_id, {}).update(changes)

    def flush(self) -> None:
        _insert(self.connection, conversations, list(self.pending_new.values()))
        self.pending_new = {}
        for conversation_id, changes in self.pending_updates.items():
            self.connection.execute(
                update(conversations).where(conversations.c.id == conversation_id).values(**changes)
            )
        self.pending_updates = {}


class IngestError(Exception):
    """The import cannot go on (wrong source, unreadable input)."""


_RUN_COUNTS = ("added", "updated", "present", "quarantined")


def _run_counts(summary: ImportSummary) -> dict[str, int]:
    return {name: getattr(summary, name) for name in _RUN_COUNTS}


@dataclass
class ImportRun:
    """One ``import_runs`` row that several :func:`ingest` calls write into: a live listener's session.

    Each committed batch sets the row's counts to the session's totals so far and ``finished_at`` to
    the commit time, in that batch's own transaction: a process killed at any moment leaves the row
    with status ``running`` and exactly the counts of what it committed.  :func:`close_run` ends it.
    """

    id: int
    source_id: str
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_RUN_COUNTS, 0))


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _start_run(connection: Connection, source_id: str, platform: str) -> int:
    inserted = connection.execute(
        import_runs.insert().values(
            source_id=source_id,
            platform=platform,
            started_at=_utc_now(),
            added=0,
            updated=0,
            present=0,
            quarantined=0,
            status="running",
        )
    ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def open_run(store: Store, source_id: str, platform: str) -> ImportRun:
    """Start an import run that :func:`ingest` calls given ``run=`` add to, until :func:`close_run`."""
    with store.engine.begin() as connection:
        return ImportRun(_start_run(connection, source_id, platform), source_id)


def close_run(store: Store, run: ImportRun, status: str = "done") -> None:
    with store.engine.begin() as connection:
        connection.execute(
            update(import_runs).where(import_runs.c.id == run.id).values(finished_at=_utc_now(), status=status)
        )


def ingest(
    store: Store,
    connector: Connector,
    source_id: str | None = None,
    *,
    progress: ProgressFn | None = None,
    on_quarantine: QuarantineHook | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    run: ImportRun | None = None,
) -> ImportSummary:
    """Import everything ``connector`` yields into ``store`` as source ``source_id``.

    Without ``run``, the call is an import run of its own.  With ``run`` (see :func:`open_run`), its
    batches are counted in that run, which stays open when the call returns or fails.
    """
    ingestor = Ingestor(store, source_id or connector.default_source, connector.platform)
    if run is not None and run.source_id != ingestor.source_id:
        raise IngestError(f"import run {run.id} belongs to source {run.source_id!r}, not {ingestor.source_id!r}")
    engine = store.engine
    with engine.begin() as connection:
        ingestor.ensure_source(connection)
        resume = ingestor.load_cursors(connection)
        run_id = _start_run(connection, ingestor.source_id, connector.platform) if run is None else run.id

    base = dict(run.totals) if run is not None else {}

    def commit(batch: _Batch) -> None:
        with engine.begin() as connection:
            ingestor.write(connection, batch)
            if run is None:
                return
            totals = {name: base[name] + count for name, count in _run_counts(ingestor.summary).items()}
            connection.execute(
                update(import_runs).where(import_runs.c.id == run.id).values(finished_at=_utc_now(), **totals)
            )
        run.totals = totals

    status = "failed"
    try:
        batch = _Batch()
        for record in connector.records(resume, progress):
            batch.add(record)
            if isinstance(record, Quarantined) and on_quarantine is not None:
                on_quarantine(record)
            if isinstance(record, Checkpoint) and record.stream in resume:
                before = resume.pop(record.stream)
                if (before.offset, before.digest) == (record.offset, record.digest):
                    ingestor.summary.streams_unchanged += 1
            if batch.size >= batch_size and isinstance(record, Checkpoint):
                commit(batch)
                batch = _Batch()
        commit(batch)
        status = "done"
    finally:
        if run is None:
            with engine.begin() as connection:
                connection.execute(
                    update(import_runs)
                    .where(import_runs.c.id == run_id)
                    .values(finished_at=_utc_now(), status=status, **_run_counts(ingestor.summary))
                )
    return ingestor.summary
