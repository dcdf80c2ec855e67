"""Durable store-and-forward buffer between compute and the sinks: SQLite in WAL mode.

Records are appended in memory and committed in batches by one writer thread (a transaction per
batch, not per record). Each sink has its own cursor, advanced only after its server confirmed a
batch, so a sink that is down keeps its records and a restart resumes where each sink stopped.
Rows every sink has passed are deleted. All SQLite work runs on one dedicated thread: the event loop
never waits on the disk, and the connection is never shared between threads.
"""

from __future__ import annotations

__all__ = ["Outbox", "Record", "StoredRecord"]

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_LIMIT_CHECK_EVERY = 20  # flushes (about a second) between checks of the size and age limits

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
"""


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
        on_drop: Callable[[str, int], None] | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.on_drop = on_drop  # (sink, records) for every record a sink lost to the limits
        self.dropping = False
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
        self.last_seq = await self._run(self._insert, rows)
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

    async def read(self, after_seq: int, limit: int) -> list[StoredRecord]:
        return await self._run(self._read, after_seq, limit)

    async def ack(self, sink: str, seq: int) -> None:
        await self._run(self._ack, sink, seq)

    async def enforce_limits(self) -> int:
        """Drop the oldest records beyond the size and age limits; returns how many went.

        A record dropped before a sink delivered it is lost to that sink: `on_drop` is told, per
        sink, and the first drop of an episode is logged (the next after the buffer was fine again).
        """
        dropped, lost = await self._run(self._enforce, time.time_ns())
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
            for sink, count in lost.items():
                if self.on_drop is not None and count:
                    self.on_drop(sink, count)
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

    def _ack(self, sink: str, seq: int) -> None:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("UPDATE cursors SET seq = ? WHERE sink = ? AND seq < ?", (seq, sink, seq))
            low = db.execute("SELECT MIN(seq) FROM cursors").fetchone()[0]
            if low is not None:
                self.deleted += db.execute("DELETE FROM records WHERE seq <= ?", (low,)).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _enforce(self, now_ns: int) -> tuple[int, dict[str, int]]:
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
        if used > self.max_bytes:
            head = db.execute("SELECT MIN(seq), MAX(seq) FROM records").fetchone()
            if head[0] is not None:
                # Rows are of similar size: drop the share that is over, plus a tenth for headroom.
                share = min(1.0, (used - self.max_bytes) / used + 0.1)
                by_size = head[0] + int((head[1] - head[0] + 1) * share) - 1
                cut = max(cut or 0, by_size)
        if cut is None:
            return 0, {}
        db.execute("BEGIN IMMEDIATE")
        try:
            lost = {
                sink: max(0, cut - seq)
                for sink, seq in db.execute("SELECT sink, seq FROM cursors").fetchall()
            }
            db.execute("UPDATE cursors SET seq = ? WHERE seq < ?", (cut, cut))
            dropped = db.execute("DELETE FROM records WHERE seq <= ?", (cut,)).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return dropped, lost

    def _used_bytes(self) -> int:
        db = self._conn()
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

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
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        cursors = dict(db.execute("SELECT sink, seq FROM cursors").fetchall())
        age_s = int(time.time() - head[1] / 1e9) if head else 0
        return {
            "records": int(count),
            "bytes": int(pages * page_size),
            "oldest_age_s": age_s,
            "last_seq": self.last_seq,
            **{f"cursor:{k}": int(v) for k, v in cursors.items()},
        }
