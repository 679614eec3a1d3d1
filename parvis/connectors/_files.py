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


class LineReader:
    """Iterates over the lines (bytes, newline kept) of one file.

    While a line is being handled, ``line_start`` is its offset and
    ``checkpoint()`` describes everything before it; after the loop,
    ``checkpoint()`` covers the whole file.
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
        self._resume = resume
        self._progress = progress
        self._hash = hashlib.sha1()
        self._pending = b""
        self._handle: IO[bytes] | None = None
        # Why reading stopped early (a truncated or corrupt compressed file), or None.
        self.failure: str | None = None
        self._raw_size = path.stat().st_size
        self._compressed = path.name.endswith(".gz")

    def _open_at_resume_point(self) -> IO[bytes]:
        handle = open_binary(self.path)
        cursor = self._resume
        if cursor is None or cursor.offset <= 0:
            return handle
        prefix_hash = hashlib.sha1()
        remaining = cursor.offset
        while remaining > 0:
            chunk = handle.read(min(remaining, 1 << 20))
            if not chunk:
                break
            prefix_hash.update(chunk)
            remaining -= len(chunk)
        if remaining == 0 and prefix_hash.hexdigest() == cursor.digest:
            self._hash = prefix_hash
            self.line_start = cursor.offset
            self.line_number = cursor.line
            self.resumed = True
            return handle
        handle.close()
        return open_binary(self.path)

    def __iter__(self) -> Iterator[bytes]:
        handle = self._open_at_resume_point()
        self._handle = handle
        progress = self._progress
        if progress is not None and self.resumed:
            progress(self._raw_size if self._compressed else self.line_start)
        offset = self.line_start
        hasher = self._hash
        try:
            for line in _lines_until_damage(handle, self):
                if self._pending:
                    hasher.update(self._pending)
                self._pending = line
                self.line_start = offset
                self.line_number += 1
                offset += len(line)
                if progress is not None and not self._compressed:
                    progress(len(line))
                yield line
            if self._pending:
                hasher.update(self._pending)
                self._pending = b""
            self.line_start = offset
        finally:
            handle.close()
        if progress is not None and self._compressed and not self.resumed:
            progress(self._raw_size)

    def quarantine_damage(self) -> Quarantined | None:
        """After the loop: the unreadable rest of a damaged compressed file, if any."""
        if self.failure is None:
            return None
        return Quarantined(self.stream, f"byte {self.line_start}", self.failure, b"")

    def checkpoint(self) -> Checkpoint:
        """Everything before the current line (or, after the loop, the whole file)."""
        lines_before = self.line_number - 1 if self._pending else self.line_number
        return Checkpoint(self.stream, self.line_start, self._hash.hexdigest(), lines_before)

    def position(self) -> str:
        """Human-readable position of the current line, for error messages."""
        return f"line {self.line_number}, byte {self.line_start}"


def _lines_until_damage(handle: IO[bytes], reader: LineReader) -> Iterator[bytes]:
    try:
        yield from handle
    except (EOFError, OSError, zlib.error) as problem:
        reader.failure = f"unreadable compressed data after this point ({problem})"


def total_size(files: Sequence[tuple[str, Path]]) -> int:
    return sum(path.stat().st_size for _, path in files)
