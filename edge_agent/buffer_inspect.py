"""Read a buffer file from outside the agent (`edge-agent buffer`): what waits, what was refused.

Opened read-only: WAL lets this run beside a running agent without blocking its commits.
"""

from __future__ import annotations

__all__ = ["inspect_buffer"]

import sqlite3
import time
from pathlib import Path
from typing import Any

from edge_agent.errors import EdgeAgentError
from edge_agent.outbox import file_bytes, read_quarantine


def inspect_buffer(path: Path, quarantine_limit: int) -> dict[str, Any]:
    if not path.exists():
        raise EdgeAgentError(f"no buffer file at {path} (the agent has not run with this file)")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise EdgeAgentError(f"cannot open the buffer {path}: {exc}") from None
    try:
        return _read(db, path, quarantine_limit)
    except sqlite3.DatabaseError as exc:
        raise EdgeAgentError(f"{path} is not a readable buffer file: {exc}") from None
    finally:
        db.close()


def _read(db: sqlite3.Connection, path: Path, quarantine_limit: int) -> dict[str, Any]:
    head = db.execute("SELECT seq, ts_ns FROM records ORDER BY seq LIMIT 1").fetchone()
    last = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
    last_seq = int(last[0]) if last else 0
    sinks = {
        sink: {"delivered_up_to": int(seq), "pending": max(0, last_seq - int(seq))}
        for sink, seq in db.execute("SELECT sink, seq FROM cursors ORDER BY sink")
    }
    # A file written by an older version has no quarantine table until the agent opens it.
    has_quarantine = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quarantine'"
    ).fetchone()
    refused = read_quarantine(db, quarantine_limit) if has_quarantine else []
    return {
        "path": str(path),
        "bytes": file_bytes(path),
        "records": last_seq - int(head[0]) + 1 if head else 0,
        "oldest_record_age_s": round(time.time() - head[1] / 1e9) if head else None,
        "sinks": sinks,
        "quarantined": (
            db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0] if has_quarantine else 0
        ),
        "quarantine": refused,
    }
