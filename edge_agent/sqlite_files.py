"""The agent's SQLite files (the buffer, the history): private, in WAL mode, moved aside when damaged."""

from __future__ import annotations

__all__ = ["connect_private", "file_bytes", "is_damage", "move_aside"]

import contextlib
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.private_files import private_file, restrict

# SQLite's answers for a file that is not a database or is damaged (others, such as a locked or
# unreadable file, are not reasons to move a file aside).
_DAMAGED = {sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT}


def connect_private(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode to `path`, made 0600 with its -wal and -shm, for one thread.

    SQLite would create the file 0644 (less the umask), and it creates -wal and -shm with the
    mode of the database file: so the file is made 0600 first, and the three files of an earlier
    version are narrowed. Raises sqlite3.DatabaseError for a file that is not a database.
    """
    private_file(path)
    for suffix in ("-wal", "-shm"):
        restrict(f"{path}{suffix}")
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error:
        db.close()
        raise
    return db


def is_damage(exc: sqlite3.Error) -> bool:
    """Does SQLite say the file is damaged or not a database (not: locked, unreadable)?"""
    return getattr(exc, "sqlite_errorcode", None) in _DAMAGED


def move_aside(path: Path) -> Path:
    """Move a damaged file (and its -wal and -shm) to `<name>.corrupt-<UTC time>`, kept 0600."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{target}{suffix}")
        restrict(f"{target}{suffix}")  # a moved file is never left more open than 0600
    return target


def file_bytes(path: Path) -> int:
    """What a database takes on disk: its file and its write-ahead log."""
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(FileNotFoundError):
            total += os.path.getsize(f"{path}{suffix}")
    return total
