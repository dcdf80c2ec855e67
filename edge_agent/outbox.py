"""Durable store-and-forward buffer between compute and the sinks: SQLite in WAL mode.

Records are appended in memory and committed in batches by one writer thread (a transaction per
batch, not per record). Each sink has its own cursor, advanced only after its server confirmed a
batch, so a sink that is down keeps its records and a restart resumes where each sink stopped.
Rows every sink has passed are deleted. All SQLite work runs on one dedicated thread: the event loop
never waits on the disk, and the connection is never shared between threads.

A record a server refuses for what it is (an HTTP 4xx for its content) is moved to the `quarantine`
table, kept for a person to look at, so it never blocks the records behind it.

Faults of the file itself: a commit that fails (disk full, I/O error) keeps its records in memory,
up to a bound, and is retried with backoff; records that must finally be let go leave a gap in the
sequence numbers, which each sink counts as lost exactly as it counts drops by the size limit. A
file SQLite cannot read is moved aside and a fresh one started. One agent at a time owns a file
(an OS lock held for the agent's life). It also keeps the installation's instance id
(table `meta`), which the agent's MQTT status carries.
"""

from __future__ import annotations

__all__ = [
    "BufferInUseError",
    "Outbox",
    "file_bytes",
    "read_quarantine",
]

import asyncio
import bisect
import contextlib
import fcntl
import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

from edge_agent.backoff import Backoff
from edge_agent.commit_times import CommitTimes
from edge_agent.errors import EdgeAgentError
from edge_agent.private_files import private_dir, private_file
from edge_agent.records import Record, StoredRecord
from edge_agent.sqlite_files import connect_private, file_bytes, is_damage, move_aside

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
# Commits between checks of the size and age limits (about a second while records arrive; the
# buffer does not grow while none do, so nothing is checked then).
_LIMIT_CHECK_EVERY = 20
_CACHE_KIB = 512
_SETTLE_S = 0.005  # how long the first record after a quiet spell waits for its companions
# The newest committed records are also kept in memory, up to this many bytes of bodies: a sink
# that keeps up reads them from there, without a query on the buffer's thread for every poll.
_TAIL_MAX_BYTES = 2 << 20
# Under stop_polling, polling resumes once the buffer is below 90 % of its limit.
_RESUME_BELOW = 0.9
_QUARANTINE_KEEP = 10_000  # refused records kept per sink; older ones go first


_CLEAN_STOP = "clean_stop"  # in saved_state while no agent has the file open after a clean stop


def _stopped_cleanly(db: sqlite3.Connection) -> bool:
    try:
        row = db.execute("SELECT 1 FROM saved_state WHERE key = ?", (_CLEAN_STOP,)).fetchone()
    except sqlite3.OperationalError:  # no such table: a new file, or one of an older version
        return False
    return row is not None


class BufferInUseError(EdgeAgentError):
    """Another agent holds the buffer file: two writers would publish duplicate sequence numbers."""


class _DamagedFileError(Exception):
    pass


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
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
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


def _rollback(db: sqlite3.Connection) -> None:
    # SQLite has already rolled back after some errors (a full disk among them); a second
    # ROLLBACK would raise and hide the real reason.
    if db.in_transaction:
        db.execute("ROLLBACK")


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
        memory_max_bytes: int = 64 << 20,
    ) -> None:
        self.path = path
        self.memory_max_bytes = memory_max_bytes
        self.write_error: str | None = None  # why the last commit failed, while it fails
        self.unwritten_dropped = 0  # records let go because they could not be written in time
        self.moved_aside: Path | None = None  # where a damaged file went at open
        self.damage: str | None = None
        self._gap = 0  # records let go since the last commit: their sequence numbers are skipped
        self._write_failed_at: float | None = None
        self._write_backoff = Backoff(base_s=0.5, max_s=30.0)
        self._flush_lock = asyncio.Lock()
        self._held_max: int | None = None  # records held at most while writes fail
        self._closing = asyncio.Event()
        self._lock_fd: int | None = None
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
        self._tail: list[StoredRecord] = []  # the newest committed records, oldest first
        self._tail_bytes = 0
        self._delivered: dict[str, int] = {}  # sink -> last seq it delivered, this run
        self.hurrying = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._first = asyncio.Event()  # a record waits: the flush loop wakes (only then)
        self._wake = asyncio.Event()  # a full batch, or a stop: commit now
        self._committed = asyncio.Condition()
        self.last_seq = 0
        self.appended = 0
        self.committed = 0
        self.deleted = 0
        self.dropped = 0
        self._flushes = 0

    async def open(self) -> None:
        self._take_lock()
        await self._run(self._open_db)
        self.last_seq = await self._run(self._max_seq)
        head = await self._run(self._head)
        if head is not None:
            # Records of an earlier run: their commit time is not known, their own time is close.
            self.commit_times.note(head[0], min(head[1] / 1e9, time.time()))
        self._flusher = asyncio.create_task(self._flush_loop(), name="outbox-flush")

    async def close(self) -> None:
        if self._flusher is not None:
            # Asked to end, not cancelled: Python 3.11's wait_for can swallow a cancellation
            # that arrives as its wait ends, and the loop then ran on while close() waited for
            # it forever. Nor is a commit cut off halfway, to be written twice below.
            self._closing.set()
            self._wake.set()
            self._first.set()
            await self._flusher
            self._flusher = None
        if not await self.flush() and self._pending:
            _log.error(
                "buffer %s: %d records could not be written before the stop and are lost (%s)",
                self.path,
                len(self._pending),
                self.write_error,
            )
        await self._run(self._close_db)
        self._executor.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def append(self, record: Record) -> None:
        """Queue a record; it is committed at once, or within `flush_interval_s` while records
        keep coming (no await, no disk here)."""
        self._pending.append(record)
        self.appended += 1
        self._first.set()
        if len(self._pending) >= self.flush_records:
            self._wake.set()
        held_max = self._held_max
        # While the file cannot be written: the oldest go beyond the bound, a tenth at a time
        # (not one by one from the head of a long list). Never while a commit is in flight: it
        # takes its records from the head when it succeeds.
        if (
            held_max is not None
            and len(self._pending) > held_max * 1.1
            and not self._flush_lock.locked()
        ):
            drop = len(self._pending) - held_max
            del self._pending[:drop]
            self._let_go(drop)

    def extend(self, records: Iterable[Record]) -> None:
        for record in records:
            self.append(record)

    async def flush(self) -> bool:
        """Commit everything appended so far and wake the sinks; False when the file cannot be
        written (the records stay in memory for the next try, see `_write_failed`)."""
        async with self._flush_lock:  # the flush loop and a stop may both ask
            if not self._pending:
                return True
            kept, rows = self._rows(self._pending)
            self._pending[:] = kept  # what cannot be stored is let go (counted) once, here
            count = len(kept)
            gap = self._gap
            try:
                last_seq = await self._run(self._insert, rows, gap)
            except sqlite3.Error as exc:
                self._write_failed(exc, rows)
                return False
            del self._pending[:count]  # records appended during the commit stay
            self._gap -= gap
            self._write_recovered()
            if rows:
                # AUTOINCREMENT: new rows follow every row ever written, and the skipped gap.
                self.last_seq = last_seq
                self._keep_tail(last_seq - len(rows) + 1, rows)
                self.commit_times.note(last_seq - len(rows) + 1, time.time())
                self.committed += len(rows)
                async with self._committed:
                    self._committed.notify_all()
            return True

    def _rows(self, batch: list[Record]) -> tuple[list[Record], list[tuple[int, str, str, str]]]:
        """The records that can be stored, and their rows (one for one)."""
        kept: list[Record] = []
        rows: list[tuple[int, str, str, str]] = []
        for r in batch:
            try:
                body = json.dumps(
                    r.body, separators=(",", ":"), ensure_ascii=False, allow_nan=False
                )
            except ValueError as exc:  # NaN or infinity: a bug upstream, never a record
                _log.error("buffer: a %s record for %s cannot be stored: %s", r.kind, r.key, exc)
                self._let_go(1)
                continue
            kept.append(r)
            rows.append((r.ts_ns, r.kind, r.key, body))
        return kept, rows

    def _let_go(self, count: int) -> None:
        self._gap += count
        self.unwritten_dropped += count

    def _write_failed(self, exc: sqlite3.Error, rows: list[tuple[int, str, str, str]]) -> None:
        """Keep the records for the next try, within `memory_max_bytes`; beyond it the oldest go."""
        held = sum(len(r[3]) + 64 for r in rows)
        dropped = 0
        while held > self.memory_max_bytes and dropped < len(rows):
            held -= len(rows[dropped][3]) + 64
            dropped += 1
        if dropped:
            del self._pending[:dropped]
            self._let_go(dropped)
        # Until the next try (backoff up to 30 s), `append` keeps the count of records within the
        # bound too, estimated from the size of those just tried.
        kept = len(rows) - dropped
        self._held_max = max(1, int(kept * self.memory_max_bytes / held)) if held else None
        if self.write_error is None:
            self._write_failed_at = time.monotonic()
            _log.error(
                "the buffer %s cannot write: %s; %d records are held in memory (at most %.3g MB) "
                "and the commit is retried",
                self.path,
                exc,
                len(self._pending),
                self.memory_max_bytes / (1 << 20),
            )
        if dropped:
            _log.error(
                "buffer %s: %d records that could not be written were dropped to stay within "
                "%.3g MB of memory (%d in all)",
                self.path,
                dropped,
                self.memory_max_bytes / (1 << 20),
                self.unwritten_dropped,
            )
        self.write_error = str(exc)

    def _write_recovered(self) -> None:
        if self.write_error is None:
            return
        failed_for = time.monotonic() - (self._write_failed_at or time.monotonic())
        _log.info(
            "the buffer %s writes again after %.0f s (%d records could not be kept)",
            self.path,
            failed_for,
            self.unwritten_dropped,
        )
        self.write_error = None
        self._held_max = None
        self._write_backoff.reset()

    async def wait_beyond(
        self, seq: int, timeout_s: float | None = None, *, gathering: bool = False
    ) -> None:
        """Return when a record after `seq` is committed, or after `timeout_s` (None: no limit);
        a sink `gathering` a batch also returns once the agent stops (see `hurry`)."""
        if self.last_seq > seq or (gathering and self.hurrying):
            return
        async with self._committed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._committed.wait_for(
                        lambda: self.last_seq > seq or (gathering and self.hurrying)
                    ),
                    timeout_s,
                )

    async def hurry(self) -> None:
        """The agent stops: sinks deliver what is buffered at once instead of gathering more."""
        self.hurrying = True
        async with self._committed:
            self._committed.notify_all()

    async def cursor(self, sink: str) -> int:
        """The last sequence number `sink` has delivered; a new sink starts at the oldest record kept."""
        seq = await self._run(self._cursor, sink)
        self._delivered[sink] = seq
        return seq

    async def retire_cursors(self, active: set[str]) -> dict[str, int]:
        """Forget the cursors of sinks no longer configured; returns what each had not delivered.

        Otherwise a sink removed from the configuration would hold every record until the limits
        drop them.
        """
        return await self._run(self._retire, active)

    async def read(self, after_seq: int, limit: int) -> list[StoredRecord]:
        """Up to `limit` committed records after `after_seq`, oldest first."""
        tail = self._tail
        if tail and tail[0].seq <= after_seq + 1 and after_seq < tail[-1].seq:
            start = bisect.bisect_right(tail, after_seq, key=lambda r: r.seq)
            return tail[start : start + limit]
        return await self._run(self._read, after_seq, limit)

    def _keep_tail(self, first_seq: int, rows: list[tuple[int, str, str, str]]) -> None:
        """Keep what was just committed (seq first_seq onwards, one commit has no gap)."""
        tail = self._tail
        for offset, row in enumerate(rows):
            tail.append(StoredRecord(first_seq + offset, *row))
            self._tail_bytes += len(row[3])
        if self._tail_bytes > _TAIL_MAX_BYTES:
            cut, freed = 0, 0
            while cut < len(tail) and self._tail_bytes - freed > _TAIL_MAX_BYTES // 2:
                freed += len(tail[cut].body)
                cut += 1
            del tail[:cut]  # half at a time, not one by one
            self._tail_bytes -= freed

    def _drop_tail(self, up_to_seq: int) -> None:
        """The limits dropped records up to `up_to_seq` from the file: not from memory either, so
        each sink finds the gap and counts exactly what it lost."""
        cut = bisect.bisect_right(self._tail, up_to_seq, key=lambda r: r.seq)
        self._tail_bytes -= sum(len(r.body) for r in self._tail[:cut])
        del self._tail[:cut]

    async def ack(self, sink: str, seq: int) -> None:
        self._forget(await self._run(self._ack, sink, seq))
        self._delivered[sink] = seq
        # What every sink has passed is never read again: memory holds only what some sink
        # still needs (a second's records while InfluxDB gathers, not _TAIL_MAX_BYTES always).
        self._drop_tail(min(self._delivered.values()))
        if self.full:  # polling waits for room, and with no new records no commit checks for it
            await self.enforce_limits()

    async def quarantine(self, sink: str, record: StoredRecord, error: str) -> None:
        """Keep a record `sink`'s server refused, and move the sink's cursor past it, atomically."""
        self._forget(await self._run(self._quarantine, sink, record, error, time.time_ns()))
        self._delivered[sink] = record.seq

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
        if dropped and cut is not None:
            self._forget(cut)
            self._drop_tail(cut)
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

    async def instance_id(self) -> str:
        """This installation's id (16 hex digits): made at the first start, kept in the file.

        It outlives restarts and crashes with the buffer, and no other agent has it, since each
        has its own buffer file. The MQTT status carries it (see edge_agent.sinks.mqtt.status).
        """
        return await self._run(self._instance_id, secrets.token_hex(8))

    async def meta(self, key: str) -> str | None:
        """A value kept in the file's `meta` table (beside the instance id), None if never set."""
        return await self._run(self._get_meta, key)

    def put_meta_now(self, key: str, value: str, timeout_s: float = 5.0) -> None:
        """Keep `value` under `key` in `meta` before returning: for a thread other than the event
        loop's (a Sparkplug sink keeps its bdSeq from paho's, before each CONNECT). Raises
        RuntimeError once the buffer is closed, TimeoutError when its thread is held up."""
        self._executor.submit(self._put_meta, key, value).result(timeout_s)

    async def stats(self) -> dict[str, int]:
        return await self._run(self._stats)

    async def _flush_loop(self) -> None:
        """Sleep until a record is appended, and commit. At most one commit per
        `flush_interval_s` (unless a batch is full): the first record after a quiet spell is
        committed within `_SETTLE_S`, and while records keep coming they gather into batches. With nothing
        to write nothing wakes: no timer runs while idle."""
        loop = asyncio.get_running_loop()
        last_commit = -self.flush_interval_s
        while not self._closing.is_set():
            await self._first.wait()
            gather_s = last_commit + self.flush_interval_s - loop.time()
            if gather_s <= 0:
                # After a quiet spell: devices polled on the same tick answer within a few ms of
                # each other, and go in one commit instead of the first alone and the rest after
                # flush_interval_s.
                gather_s = min(_SETTLE_S, self.flush_interval_s)
            if gather_s > 0 and len(self._pending) < self.flush_records:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), gather_s)
            last_commit = loop.time()
            self._first.clear()
            self._wake.clear()
            if self._closing.is_set():
                return
            if not await self.flush():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._write_backoff.next_delay())
                self._first.set()  # the records are still there: try again
                continue
            if not self._pending:
                self._first.clear()  # records appended during the commit went with it
            self._flushes += 1
            if self._flushes % _LIMIT_CHECK_EVERY == 0:
                try:
                    await self.enforce_limits()
                except sqlite3.Error as exc:  # deleting can fail on a broken disk too
                    _log.warning("buffer %s: cannot apply its limits now: %s", self.path, exc)

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _take_lock(self) -> None:
        """Hold `<buffer>.lock` for the agent's life; a second agent on the same file stops here."""
        # Missing folders are made 0700; an existing one is someone's choice (see private_files).
        private_dir(self.path.parent)
        lock = private_file(Path(f"{self.path}.lock"))
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BufferInUseError(
                f"the buffer {self.path} is in use by another edge-agent (PID {other}); stop that "
                "one first (e.g. systemctl stop edge-agent), or give this configuration its own "
                "agent.buffer_path"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    # ---- everything below runs on the outbox thread only

    def _open_db(self) -> None:
        try:
            self._db = self._connect()
        except _DamagedFileError as exc:
            self.damage = str(exc)
            self.moved_aside = move_aside(self.path)
            _log.error(
                "the buffer %s cannot be read (%s): moved aside as %s; a fresh buffer is started "
                "(the records in the old file were not delivered)",
                self.path,
                self.damage,
                self.moved_aside,
            )
            self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            db = connect_private(self.path)
        except sqlite3.DatabaseError as exc:
            if is_damage(exc):
                raise _DamagedFileError(str(exc)) from None
            raise
        try:
            # quick_check reads the whole file (3.3 s for 274 MB from a cold cache here): only after
            # a stop that was not clean (a crash, a power cut), when damage can have happened.
            if not _stopped_cleanly(db):
                problems = [row[0] for row in db.execute("PRAGMA quick_check(5)").fetchall()]
                if problems != ["ok"]:
                    raise _DamagedFileError("; ".join(problems))
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            # Rows are appended at one end and deleted at the other, and sinks read the newest
            # from memory: SQLite's default 2 MiB page cache would only hold pages never read again.
            db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
            db.executescript(_SCHEMA)
            db.execute("DELETE FROM saved_state WHERE key = ?", (_CLEAN_STOP,))
        except sqlite3.DatabaseError as exc:
            db.close()
            if is_damage(exc):
                raise _DamagedFileError(str(exc)) from None
            raise
        except _DamagedFileError:
            db.close()
            raise
        return db

    def _close_db(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):  # then the next start checks the file
                self._save_state(_CLEAN_STOP, "1")
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

    def _insert(self, rows: list[tuple[int, str, str, str]], gap: int) -> int:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            if gap:  # sequence numbers of records let go: each sink sees the gap and counts it
                db.execute(
                    "INSERT INTO sqlite_sequence (name, seq) SELECT 'records', 0 "
                    "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'records')"
                )
                db.execute(
                    "UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'records'", (gap,)
                )
            db.executemany("INSERT INTO records (ts_ns, kind, key, body) VALUES (?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
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
            _rollback(db)
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
            _rollback(db)
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

    def _instance_id(self, new: str) -> str:
        db = self._conn()  # autocommit: kept at once, before any broker sees it
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('instance', ?)", (new,))
        return str(db.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()[0])

    def _get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def _put_meta(self, key: str, value: str) -> None:
        self._conn().execute(  # autocommit: kept at once
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
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
