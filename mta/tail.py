"""Read the lines a log gained since the last read, across rotation.

The cursor keeps the file's inode, the byte offset after the last complete line read and
that line's number. When the path now names another file (logrotate moved the old one
away), the rest of the old file is read first from a rotated sibling with the remembered
inode (``maillog.1``, ``maillog-20261130``, ...; compressed ones cannot be read), then the
new file from its start. A file shorter than the offset was truncated in place
(``copytruncate``) and is read from its start; one that grew back past the offset before
the next read cannot be told from a longer file, so prefer logrotate's default (create).
A last line without its newline is left for the next read, so a line being written is
never read half.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Cursor:
    """Where the last read stopped."""

    inode: int = 0
    offset: int = 0
    line: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the cursor as plain data for the state file."""
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """Lines read from one file, and the number of the first."""

    path: Path
    lines: list[str]
    first_line: int


def _complete(data: bytes) -> tuple[bytes, int]:
    """Return the complete lines of ``data`` and how many bytes they take."""
    end = data.rfind(b"\n") + 1
    return data[:end], end


def _read_from(path: Path, offset: int) -> tuple[list[str], int]:
    with path.open("rb") as handle:
        handle.seek(offset)
        data, used = _complete(handle.read())
    return data.decode("utf-8", errors="replace").splitlines(), offset + used


def _rotated(path: Path, inode: int) -> Path | None:
    for sibling in sorted(path.parent.glob(path.name + "*")):
        if sibling != path and sibling.is_file() and sibling.stat().st_ino == inode:
            return sibling
    return None


def read_new(path: Path, cursor: Cursor) -> tuple[list[Chunk], Cursor]:
    """Return the new complete lines (oldest first) and the cursor after them.

    Args:
        path: the log's path.
        cursor: the last read's cursor (``Cursor()`` the first time: read from the start).
    """
    chunks: list[Chunk] = []
    if not path.exists():
        return chunks, cursor
    stat = path.stat()
    offset, line = cursor.offset, cursor.line
    if cursor.inode and stat.st_ino != cursor.inode:
        old = _rotated(path, cursor.inode)
        if old is not None:
            # The old file is complete now: a last line without newline is still a line.
            with old.open("rb") as handle:
                handle.seek(offset)
                tail = handle.read()
            lines = tail.decode("utf-8", errors="replace").splitlines()
            if lines:
                chunks.append(Chunk(old, lines, line + 1))
                line += len(lines)
        offset, line = 0, 0  # line numbers restart with the new file
    elif stat.st_size < offset:
        offset, line = 0, 0
    lines, offset = _read_from(path, offset)
    if lines:
        chunks.append(Chunk(path, lines, line + 1))
    return chunks, Cursor(inode=stat.st_ino, offset=offset, line=line + len(lines))
