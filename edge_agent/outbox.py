"""Durable store-and-forward buffer between compute and the sinks: SQLite in WAL mode.

Records are appended in memory and committed in batches by one writer thread (a transaction per
batch, not per record). Each sink has its own cursor, advanced only after its server confirmed a
batch, so a sink that is down keeps its records and a restart resumes where each sink stopped.
Rows every sink has passed are deleted. All SQLite work runs on one dedicated thread: the event loop
never waits on the disk, and the connection is never shared between threads.

A record a server refuses for what it is (an HTTP 4xx for its content) is moved to the `quarantine`
table, kept for a person to look at, so it never blocks the records behind it.
"""

from __future__ import annotations

__all__ = ["Outbox", "Record", "StoredRecord", "file_bytes", "read_quarantine"]

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from edge_agent.commit_times import CommitTimes

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_LIMIT_CHECK_EVERY = 20  # flushes (about a second) between checks of the size and age limits
# Under stop_polling, polling resumes once the buffer is below 90 % of its limit.
_RESUME_BELOW = 0.9
_QUARANTINE_KEEP = 10_000  # refused records kept per sink; older ones go first

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ns INTEGER NOT NULL,
    kind  TEXT    NOT NULL,
    key   TEXT    NOT NULL,
    body  TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    sink TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS saved_state (
    key  TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    sink  TEXT    NOT NULL,
    seq   INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    kind  TEXT    NOT NULL,
    key   TEXT    NOT NULL,
    body  TEXT    NOT NULL,
    error TEXT    NOT NULL,
    at_ns INTEGER NOT NULL,
    PRIMARY KEY (sink, seq)
);
"""


_QUARANTINE_COLUMNS = ("sink", "seq", "ts_ns", "kind", "key", "body", "error", "at_ns")


def read_quarantine(db: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """The most recently refused records, newest first (also for a reader outside the agent)."""
    rows = db.execute(
        f"SELECT {', '.join(_QUARANTINE_COLUMNS)} FROM quarantine "
        "ORDER BY at_ns DESC, seq DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [dict(zip(_QUARANTINE_COLUMNS, row, strict=True)) for row in rows]


def file_bytes(path: Path) -> int:
    """What the buffer takes on disk: the database file and its write-ahead log."""
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(FileNotFoundError):
            total += os.path.getsize(f"{path}{suffix}")
    return total


@dataclass(frozen=True, slots=True)
class Record:
    """Something to deliver: raw values of one poll, a state change, an OEE window, an alarm."""

    kind: str
    key: str  # what it is about: a device or machine name, used for routing (topics)
    ts_ns: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as the buffer hands it to a sink: with its sequence number, body still as JSON."""

    seq: int
    ts_ns: int
    kind: str
    key: str
    body: str

    def decoded(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class Outbox:
    """`append` from the event loop; `read` and `ack` per sink; `close` flushes what is pending."""

    def __init__(
        self,
        path: Path,
        *,
        flush_interval_s: float = 0.05,
        flush_records: int = 2000,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        max_bytes: int = 1 << 30,
        max_age_s: float = 7 * 86400,
        full_policy: Literal["drop_oldest", "stop_polling"] = "drop_oldest",
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.full_policy = full_policy
        self.dropping = False
        self.full = False  # under stop_polling: the size limit is reached, polling should pause
        self.commit_times = CommitTimes()
        self.flush_interval_s = flush_interval_s
        self.flush_records = flush_records
        self.synchronous = synchronous
        self._pending: list[Record] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._committed = asyncio.Condition()
        self.last_seq = 0
        self.appended = 0
        self.committed = 0
        self.deleted = 0
        self.dropped = 0
        self._flushes = 0

    async def open(self) -> None:
        await self._run(self._open_db)
        self.last_seq = await self._run(self._max_seq)
        head = await self._run(self._head)
        if head is not None:
            # Records of an earlier run: their commit time is not known, their own time is close.
            self.commit_times.note(head[0], min(head[1] / 1e9, time.time()))
        self._flusher = asyncio.create_task(self._flush_loop(), name="outbox-flush")

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()
        await self._run(self._close_db)
        self._executor.shutdown(wait=True)

    def append(self, record: Record) -> None:
        """Queue a record; it is committed within `flush_interval_s` (no await, no disk here)."""
        self._pending.append(record)
        self.appended += 1
        if len(self._pending) >= self.flush_records:
            self._wake.set()

    def extend(self, records: Iterable[Record]) -> None:
        for record in records:
            self.append(record)

    async def flush(self) -> None:
        """Commit everything appended so far, and wake the sinks waiting for it."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        rows = [
            (r.ts_ns, r.kind, r.key, json.dumps(r.body, separators=(",", ":"), ensure_ascii=False))
            for r in batch
        ]
        first_seq = self.last_seq + 1  # AUTOINCREMENT: new rows follow every row ever written
        self.last_seq = await self._run(self._insert, rows)
        self.commit_times.note(first_seq, time.time())
        self.committed += len(rows)
        async with self._committed:
            self._committed.notify_all()

    async def wait_beyond(self, seq: int, timeout_s: float) -> None:
        """Return when a record after `seq` is committed, or after `timeout_s`."""
        if self.last_seq > seq:
            return
        async with self._committed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._committed.wait_for(lambda: self.last_seq > seq), timeout_s
                )

    async def cursor(self, sink: str) -> int:
        """The last sequence number `sink` has delivered; a new sink starts at the oldest record kept."""
        return await self._run(self._cursor, sink)

    async def retire_cursors(self, active: set[str]) -> dict[str, int]:
        """Forget the cursors of sinks no longer configured; returns what each had not delivered.

        Otherwise a sink removed from the configuration would hold every record until the limits
        drop them.
        """
        return await self._run(self._retire, active)

    async def read(self, after_seq: int, limit: int) -> list[StoredRecord]:
        return await self._run(self._read, after_seq, limit)

    async def ack(self, sink: str, seq: int) -> None:
        self._forget(await self._run(self._ack, sink, seq))

    async def quarantine(self, sink: str, record: StoredRecord, error: str) -> None:
        """Keep a record `sink`'s server refused, and move the sink's cursor past it, atomically."""
        self._forget(await self._run(self._quarantine, sink, record, error, time.time_ns()))

    def _forget(self, low: int | None) -> None:
        # On the event loop, which is the only reader of the commit times.
        if low is not None:
            self.commit_times.forget_before(low + 1)

    async def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        """The most recently refused records, newest first."""
        return await self._run(lambda: read_quarantine(self._conn(), limit))

    def oldest_pending_age_s(self, cursor: int) -> float:
        """How long the oldest record after `cursor` has waited since it was committed."""
        if cursor >= self.last_seq:
            return 0.0
        at = self.commit_times.committed_at(cursor + 1)
        return max(0.0, time.time() - at) if at is not None else 0.0

    async def enforce_limits(self) -> int:
        """Drop the oldest records beyond the size and age limits; returns how many went.

        Cursors are left as they are: a sink finds the gap on its next read and counts exactly
        the records it lost, however a drop and its own deliveries interleave. The first drop of
        an episode is logged (the next after the buffer was fine again).
        """
        dropped, cut, full = await self._run(self._enforce, time.time_ns())
        if dropped:
            self._forget(cut)
        if full != self.full:
            self.full = full
            if full:
                _log.error(
                    "buffer %s reached its size limit (%d MB): polling pauses until the sinks have "
                    "delivered enough (buffer_full_policy stop_polling)",
                    self.path,
                    self.max_bytes >> 20,
                )
            else:
                _log.info("buffer %s has room again: polling resumes", self.path)
        if dropped:
            self.dropped += dropped
            if not self.dropping:
                _log.error(
                    "buffer %s is over its limits (%d MB, %.0f h): dropping the oldest records; "
                    "%d dropped so far",
                    self.path,
                    self.max_bytes >> 20,
                    self.max_age_s / 3600,
                    self.dropped,
                )
            self.dropping = True
        elif self.dropping:
            _log.info(
                "buffer %s is within its limits again (%d records dropped in all)",
                self.path,
                self.dropped,
            )
            self.dropping = False
        return dropped

    async def save_state(self, key: str, body: str) -> None:
        """Keep a piece of compute state (JSON) beside the records, for a restart to resume from."""
        await self._run(self._save_state, key, body)

    async def load_state(self, key: str) -> str | None:
        return await self._run(self._load_state, key)

    async def stats(self) -> dict[str, int]:
        return await self._run(self._stats)

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            self._wake.clear()
            try:
                await self.flush()
                self._flushes += 1
                if self._flushes % _LIMIT_CHECK_EVERY == 0:
                    await self.enforce_limits()
            except sqlite3.Error:
                _log.exception("buffer %s: cannot commit records; will retry", self.path)
                await asyncio.sleep(1.0)

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ---- everything below runs on the outbox thread only

    def _open_db(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.executescript(_SCHEMA)
        self._db = db

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        assert self._db is not None, "outbox used before open()"
        return self._db

    def _max_seq(self) -> int:
        row = (
            self._conn().execute("SELECT seq FROM sqlite_sequence WHERE name='records'").fetchone()
        )
        return int(row[0]) if row else 0

    def _insert(self, rows: list[tuple[int, str, str, str]]) -> int:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO records (ts_ns, kind, key, body) VALUES (?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return self._max_seq()

    def _cursor(self, sink: str) -> int:
        db = self._conn()
        row = db.execute("SELECT seq FROM cursors WHERE sink = ?", (sink,)).fetchone()
        if row:
            return int(row[0])
        oldest = db.execute("SELECT MIN(seq) FROM records").fetchone()[0]
        start = (int(oldest) - 1) if oldest is not None else self._max_seq()
        db.execute("INSERT INTO cursors (sink, seq) VALUES (?, ?)", (sink, start))
        return start

    def _retire(self, active: set[str]) -> dict[str, int]:
        db = self._conn()
        last = self._max_seq()
        retired = {
            sink: max(0, last - int(seq))
            for sink, seq in db.execute("SELECT sink, seq FROM cursors").fetchall()
            if sink not in active
        }
        for sink in retired:
            db.execute("DELETE FROM cursors WHERE sink = ?", (sink,))
        return retired

    def _read(self, after_seq: int, limit: int) -> list[StoredRecord]:
        rows = (
            self._conn()
            .execute(
                "SELECT seq, ts_ns, kind, key, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
            .fetchall()
        )
        return [StoredRecord(*row) for row in rows]

    def _ack(self, sink: str, seq: int) -> int | None:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            low = self._advance(db, sink, seq)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return low

    def _advance(self, db: sqlite3.Connection, sink: str, seq: int) -> int | None:
        """Move `sink`'s cursor to `seq` and delete what every sink has passed; returns that point."""
        db.execute("UPDATE cursors SET seq = ? WHERE sink = ? AND seq < ?", (seq, sink, seq))
        low = db.execute("SELECT MIN(seq) FROM cursors").fetchone()[0]
        if low is not None:
            self.deleted += db.execute("DELETE FROM records WHERE seq <= ?", (low,)).rowcount
        return int(low) if low is not None else None

    def _quarantine(self, sink: str, record: StoredRecord, error: str, now_ns: int) -> int | None:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            # OR IGNORE: after a crash between refusal and commit the same record comes back.
            r = record
            db.execute(
                f"INSERT OR IGNORE INTO quarantine ({', '.join(_QUARANTINE_COLUMNS)}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sink, r.seq, r.ts_ns, r.kind, r.key, r.body, error, now_ns),
            )
            db.execute(
                "DELETE FROM quarantine WHERE sink = ? AND seq <= "
                "(SELECT seq FROM quarantine WHERE sink = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (sink, sink, _QUARANTINE_KEEP),
            )
            low = self._advance(db, sink, record.seq)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return low

    def _enforce(self, now_ns: int) -> tuple[int, int | None, bool]:
        db = self._conn()
        cut = None  # drop every record with seq <= cut
        # By age, only the old head goes: a late record with an old time never takes newer ones.
        threshold = now_ns - int(self.max_age_s * 1e9)
        young = db.execute(
            "SELECT MIN(seq) FROM records WHERE ts_ns >= ?", (threshold,)
        ).fetchone()[0]
        head = db.execute("SELECT MIN(seq), MAX(seq) FROM records").fetchone()
        if head[0] is not None:
            last_old = (young - 1) if young is not None else head[1]
            if last_old >= head[0]:
                cut = int(last_old)
        used = self._used_bytes()
        full = False
        if self.full_policy == "stop_polling":
            # Keep the oldest: no drop by size; polling pauses instead, with some hysteresis so
            # it does not flap around the limit.
            full = used > self.max_bytes or (self.full and used > _RESUME_BELOW * self.max_bytes)
        elif used > self.max_bytes:
            head = db.execute("SELECT MIN(seq), MAX(seq) FROM records").fetchone()
            if head[0] is not None:
                # Rows are of similar size: drop the share that is over, plus a tenth for headroom.
                share = min(1.0, (used - self.max_bytes) / used + 0.1)
                by_size = head[0] + int((head[1] - head[0] + 1) * share) - 1
                cut = max(cut or 0, by_size)
        if cut is None:
            return 0, None, full
        dropped = db.execute("DELETE FROM records WHERE seq <= ?", (cut,)).rowcount
        return dropped, cut, full

    def _used_bytes(self) -> int:
        db = self._conn()
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def _head(self) -> tuple[int, int] | None:
        row = self._conn().execute("SELECT seq, ts_ns FROM records ORDER BY seq LIMIT 1").fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def _save_state(self, key: str, body: str) -> None:
        self._conn().execute(
            "INSERT INTO saved_state (key, body) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET body = excluded.body",
            (key, body),
        )

    def _load_state(self, key: str) -> str | None:
        row = self._conn().execute("SELECT body FROM saved_state WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def _stats(self) -> dict[str, int]:
        db = self._conn()
        # Rows leave only from the head, so first and last sequence numbers give the count in
        # O(log n); COUNT(*) would scan millions of rows on the thread that commits new ones.
        head = db.execute("SELECT seq, ts_ns FROM records ORDER BY seq LIMIT 1").fetchone()
        count = self._max_seq() - head[0] + 1 if head else 0
        cursors = dict(db.execute("SELECT sink, seq FROM cursors").fetchall())
        age_s = int(time.time() - head[1] / 1e9) if head else 0
        quarantined = db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]
        return {
            "records": int(count),
            "bytes": file_bytes(self.path),
            "quarantined": int(quarantined),
            "oldest_age_s": age_s,
            "last_seq": self.last_seq,
            **{f"cursor:{k}": int(v) for k, v in cursors.items()},
        }
