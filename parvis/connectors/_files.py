"""Reading archive files line by line with byte offsets, resumable.

Shared by the file-based connectors.  Plain and gzip files are read the same
way; offsets are positions in the decompressed byte stream.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, cast

from parvis.records import Checkpoint, Cursor, ProgressFn, Quarantined


class InputError(Exception):
    """A problem with the files given to an importer (missing, unreadable)."""


def expand_paths(paths: Sequence[str | os.PathLike[str]], patterns: Sequence[str] = ("*",)) -> list[tuple[str, Path]]:
    """Files named by ``paths`` (folders expanded recursively, sorted), with their stream names.

    A stream name is the file's path relative to the folder it was found in, or its
    base name when a file was named directly, so moving an archive keeps its cursors.
    """
    found: list[tuple[str, Path]] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            children = sorted(
                {p for pattern in patterns for p in path.rglob(pattern) if p.is_file() and not p.name.startswith(".")}
            )
            found.extend((child.relative_to(path).as_posix(), child) for child in children)
        elif path.is_file():
            found.append((path.name, path))
        else:
            raise InputError(f"{path}: no such file or folder")
    return found


def open_binary(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


BLOCK_SIZE = 1 << 20
COMPRESSED_READ = 1 << 16  # what a damaged compressed file can lose at the damage point
MAX_LINE = 64 << 20


class LineReader:
    """Reads one file by lines, or by blocks of whole lines, keeping byte offsets and a resumable digest.

    Iterating gives lines (bytes, newline kept); while a line is being handled,
    ``line_start`` is its offset and ``checkpoint()`` describes everything before it.
    ``blocks()`` gives ``(offset, bytes)`` blocks of whole lines instead, for connectors
    that find record boundaries themselves; ``checkpoint_at(offset)`` and
    ``position_at(offset)`` then work for any offset inside the current block.  After
    either loop, ``checkpoint()`` covers the whole file.
    """

    def __init__(
        self,
        stream: str,
        path: Path,
        resume: Cursor | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.stream = stream
        self.path = path
        self.line_start = 0
        self.line_number = 0  # 1-based number of the current line
        self.resumed = False
        # Why reading stopped early (a truncated or corrupt compressed file), or None.
        self.failure: str | None = None
        self._resume = resume
        self._progress = progress
        self._hash = hashlib.sha1()
        self._lines_before_block = 0
        self._block_start = 0
        self._block = b""
        self._counted = (0, 0)  # (offset inside the block, newlines before it): speeds up position_at
        self._raw_size = path.stat().st_size
        self._compressed = path.name.endswith(".gz")

    def _open_at_resume_point(self) -> IO[bytes]:
        handle = open_binary(self.path)
        cursor = self._resume
        if cursor is None or cursor.offset <= 0:
            return handle
        prefix_hash = hashlib.sha1()
        remaining = cursor.offset
        try:
            while remaining > 0:
                chunk = handle.read(min(remaining, BLOCK_SIZE))
                if not chunk:
                    break
                prefix_hash.update(chunk)
                remaining -= len(chunk)
        except (EOFError, OSError, zlib.error):
            remaining = -1
        if remaining == 0 and prefix_hash.hexdigest() == cursor.digest:
            self._hash = prefix_hash
            self._block_start = self.line_start = cursor.offset
            self._lines_before_block = self.line_number = cursor.line
            self.resumed = True
            return handle
        handle.close()
        return open_binary(self.path)

    def _read(self, handle: IO[bytes]) -> bytes:
        # read1 returns what could be decompressed so far, so a damaged file yields its good part.
        read = getattr(handle, "read1", handle.read)
        try:
            data: bytes = read(COMPRESSED_READ if self._compressed else BLOCK_SIZE)
            return data
        except (EOFError, OSError, zlib.error) as problem:
            self.failure = f"unreadable compressed data after this point ({problem})"
            return b""

    def blocks(self) -> Iterator[tuple[int, bytes]]:
        handle = self._open_at_resume_point()
        progress = self._progress
        if progress is not None and self.resumed:
            progress(self._raw_size if self._compressed else self._block_start)
        carry = b""
        try:
            while True:
                chunk = self._read(handle)
                if not chunk:
                    break
                if progress is not None and not self._compressed:
                    progress(len(chunk))
                data = carry + chunk if carry else chunk
                cut = data.rfind(b"\n") + 1
                if cut == 0 and len(data) < MAX_LINE:
                    carry = data
                    continue
                cut = cut or len(data)
                carry = data[cut:]
                yield from self._handle_block(data[:cut])
            if carry:
                yield from self._handle_block(carry)
        finally:
            handle.close()
        self.line_start = self._block_start
        if progress is not None and self._compressed and not self.resumed:
            progress(self._raw_size)

    def _handle_block(self, block: bytes) -> Iterator[tuple[int, bytes]]:
        self._block = block
        self._counted = (0, 0)
        yield self._block_start, block
        self._hash.update(block)
        self._lines_before_block += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        self._block_start += len(block)
        self._block = b""

    def __iter__(self) -> Iterator[bytes]:
        for start, block in self.blocks():
            offset = start
            pieces = block.split(b"\n")
            last = pieces.pop()
            for piece in pieces:
                self.line_start = offset
                self.line_number += 1
                line = piece + b"\n"
                offset += len(line)
                yield line
            if last:
                self.line_start = offset
                self.line_number += 1
                yield last

    def _newlines_before(self, offset: int) -> int:
        relative = offset - self._block_start
        known_offset, known_count = self._counted
        if relative >= known_offset:
            count = known_count + self._block.count(b"\n", known_offset, relative)
        else:
            count = self._block.count(b"\n", 0, relative)
        self._counted = (relative, count)
        return count

    def checkpoint_at(self, offset: int) -> Checkpoint:
        """Everything before ``offset``, an offset inside the current block (at a line start)."""
        hasher = self._hash.copy()
        hasher.update(self._block[: offset - self._block_start])
        return Checkpoint(
            self.stream, offset, hasher.hexdigest(), self._lines_before_block + self._newlines_before(offset)
        )

    def position_at(self, offset: int) -> str:
        """Human-readable position of the line starting at ``offset`` in the current block."""
        return f"line {self._lines_before_block + self._newlines_before(offset) + 1}, byte {offset}"

    def quarantine_damage(self) -> Quarantined | None:
        """After the loop: the unreadable rest of a damaged compressed file, if any."""
        if self.failure is None:
            return None
        return Quarantined(self.stream, f"byte {self._block_start}", self.failure, b"")

    def checkpoint(self) -> Checkpoint:
        """Everything before the current line (or, after the loop, the whole file)."""
        if self._block:
            return self.checkpoint_at(self.line_start)
        return Checkpoint(self.stream, self._block_start, self._hash.hexdigest(), self._lines_before_block)

    def position(self) -> str:
        """Human-readable position of the current line, for error messages."""
        return f"line {self.line_number}, byte {self.line_start}"


def prefix_matches(path: Path, cursor: Cursor | None) -> bool:
    """Whether ``path`` still begins with the bytes a cursor was taken over."""
    if cursor is None or cursor.offset <= 0:
        return False
    hasher = hashlib.sha1()
    remaining = cursor.offset
    try:
        with open_binary(path) as handle:
            while remaining > 0:
                chunk = handle.read(min(remaining, BLOCK_SIZE))
                if not chunk:
                    return False
                hasher.update(chunk)
                remaining -= len(chunk)
    except (EOFError, OSError, zlib.error):
        return False
    return hasher.hexdigest() == cursor.digest


def total_size(files: Sequence[tuple[str, Path]]) -> int:
    return sum(path.stat().st_size for _, path in files)
