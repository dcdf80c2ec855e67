"""The local history file: closed OEE windows, stops and alarm transitions, for people to look back.

Apart from the delivery buffer, which forgets a record once every sink has it: the history keeps
what the page shows (trends, stops, reports) for `keep_days`, within `max_bytes`, with no other
server. SQLite in WAL mode; all SQLite work runs on one dedicated thread, so the event loop never
waits on the disk. Records are appended without await and committed in batches: the first record
after a quiet spell wakes the writer, which lets a batch gather for `flush_interval_s` and commits
it in one transaction; with nothing to write, nothing wakes.

A commit that fails (disk full, I/O error) keeps its records in memory, up to a bound, and is
retried with backoff. A file SQLite cannot read is moved aside and a fresh one started: the history
is for people, and must not keep the agent (and its delivery) from starting.
"""

from __future__ import annotations

__all__ = ["HistoryStore", "file_bytes"]

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from edge_agent.backoff import Backoff
from edge_agent.history import corrections, queries
from edge_agent.history.corrections import Busy, Choice, Correction
from edge_agent.history.rows import Rows, kept, to_rows
from edge_agent.private_files import private_dir
from edge_agent.records import Record
from edge_agent.sqlite_files import connect_private, file_bytes, is_damage, move_aside
from edge_agent.timefmt import iso_utc

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
NS = 1_000_000_000
_PRUNE_EVERY_S = 86400.0  # records past keep_days go once a day (and at open)
_MAX_PENDING = 100_000  # records held in memory while the file cannot be written
_SIZE_HEADROOM = 0.1  # over max_bytes, a tenth more than the excess goes, so it is not every commit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS oee_windows (
    machine     TEXT    NOT NULL,
    window_kind TEXT    NOT NULL,  -- shift or hour
    start_ns    INTEGER NOT NULL,
    end_ns      INTEGER NOT NULL,
    ts_ns       INTEGER NOT NULL,  -- when it was published (last)
    body        TEXT    NOT NULL,  -- the record's body, JSON
    PRIMARY KEY (machine, window_kind, start_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS oee_windows_start ON oee_windows (start_ns);
CREATE TABLE IF NOT EXISTS stops (
    id            INTEGER PRIMARY KEY,
    machine       TEXT    NOT NULL,
    start_ns      INTEGER NOT NULL,
    end_ns        INTEGER NOT NULL,
    duration_s    REAL    NOT NULL,
    state         TEXT    NOT NULL,
    reason        TEXT,
    category      TEXT,
    classified_by TEXT,              -- plc, or the user who gave the reason; NULL: unclassified
    body          TEXT    NOT NULL,
    reason_code   TEXT,              -- the PLC's code, or the one an operator picked
    note          TEXT,              -- an operator's note
    UNIQUE (machine, start_ns)
);
CREATE INDEX IF NOT EXISTS stops_machine_end ON stops (machine, end_ns);
CREATE INDEX IF NOT EXISTS stops_end ON stops (end_ns);
CREATE TABLE IF NOT EXISTS alarms (
    seq           INTEGER PRIMARY KEY,
    alarm_id      TEXT    NOT NULL,
    machine       TEXT,
    state         TEXT    NOT NULL,
    event         TEXT    NOT NULL,  -- change, or the operator's command (ack, shelve, ...)
    priority      TEXT,
    value,
    message       TEXT,
    user          TEXT,
    declared_user TEXT,
    reason        TEXT,
    ts_ns         INTEGER NOT NULL,
    body          TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS alarms_ts ON alarms (ts_ns);
CREATE TABLE IF NOT EXISTS periods (     -- planned and unknown time, for the state timeline
    machine  TEXT    NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns   INTEGER NOT NULL,
    state    TEXT    NOT NULL,
    reason   TEXT,
    PRIMARY KEY (machine, start_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS periods_end ON periods (end_ns);
CREATE TABLE IF NOT EXISTS rejects (     -- parts an operator found bad after they were counted
    id      INTEGER PRIMARY KEY,
    machine TEXT    NOT NULL,
    ts_ns   INTEGER NOT NULL,          -- made before this time
    count   INTEGER NOT NULL,
    reason  TEXT    NOT NULL,
    user    TEXT    NOT NULL,
    at_ns   INTEGER NOT NULL           -- when it was entered
);
CREATE INDEX IF NOT EXISTS rejects_ts ON rejects (ts_ns);
"""
# Columns added since the first files were written; a file without them gets them at open.
_ADDED_COLUMNS = {"stops": ("reason_code TEXT", "note TEXT")}

# A window published again (corrected) replaces the first. A stop seen again (a replay, a
# restart) keeps its id, so what refers to it stays valid.
_UPSERT_OEE = (
    "INSERT INTO oee_windows (machine, window_kind, start_ns, end_ns, ts_ns, body) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (machine, window_kind, start_ns) DO UPDATE SET "
    "end_ns = excluded.end_ns, ts_ns = excluded.ts_ns, body = excluded.body"
)
# An operator's reason is kept when the stop is seen again (a replay, a restart).
_KEEP = "CASE WHEN stops.classified_by IS NULL OR stops.classified_by = 'plc'"
_UPSERT_STOP = (
    "INSERT INTO stops (machine, start_ns, end_ns, duration_s, state, reason, reason_code, "
    "category, classified_by, note, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (machine, start_ns) DO UPDATE SET end_ns = excluded.end_ns, "
    "duration_s = excluded.duration_s, state = excluded.state, "
    + ", ".join(
        f"{c} = {_KEEP} THEN excluded.{c} ELSE stops.{c} END"
        for c in ("reason", "reason_code", "category", "classified_by", "note", "body")
    )
)
_UPSERT_PERIOD = (
    "INSERT INTO periods (machine, start_ns, end_ns, state, reason) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (machine, start_ns) DO UPDATE SET end_ns = excluded.end_ns, "
    "state = excluded.state, reason = excluded.reason"
)
_INSERT_ALARM = (
    "INSERT INTO alarms (alarm_id, machine, state, event, priority, value, message, user, "
    "declared_user, reason, ts_ns, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# What "older" means per table: the time each is filed under.
_TIME_OF = {
    "oee_windows": "start_ns",
    "stops": "end_ns",
    "alarms": "ts_ns",
    "periods": "end_ns",
    "rejects": "ts_ns",
}


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite has already rolled back after some errors
            db.execute("ROLLBACK")
        raise


class HistoryStore:
    """`append` from the event loop; async queries; `close` commits what is pending."""

    def __init__(
        self,
        path: Path,
        keep_days: float = 90,
        max_bytes: int = 256 << 20,
        *,
        flush_interval_s: float = 0.5,
    ) -> None:
        self.path = path
        self.keep_days = keep_days
        self.max_bytes = max_bytes
        self.flush_interval_s = flush_interval_s
        self.write_error: str | None = None  # why the last commit failed, while it fails
        self.committed = 0
        self.pruned = 0  # records removed by age or size
        self.unwritten_dropped = 0  # records let go because the file could not be written
        self._pending: list[Record] = []
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history")
        self._db: sqlite3.Connection | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._backoff = Backoff(base_s=0.5, max_s=30.0)
        self._next_prune = 0.0  # monotonic time of the next pruning by age

    async def open(self) -> None:
        await self._run(self._open_db)
        await self.prune()
        self._flusher = asyncio.create_task(self._flush_loop(), name="history-flush")

    async def close(self, timeout_s: float = 2.0) -> None:
        """Commit what is pending and close the file, within `timeout_s`."""
        work = asyncio.ensure_future(self._close())
        # Not cancelled when time is up: a commit cut off halfway helps no-one; it ends on its
        # thread, which the executor lets finish.
        done, _ = await asyncio.wait({work}, timeout=timeout_s)
        if not done:
            _log.error(
                "history %s: closing took over %.1f s; %d records may not be kept",
                self.path,
                timeout_s,
                len(self._pending),
            )
            return
        work.result()

    def append(self, record: Record) -> None:
        """Keep `record` if it is one the history holds (no await, no disk here)."""
        if self._closed or not kept(record):
            return
        self._pending.append(record)
        self._wake.set()

    def extend(self, records: Iterable[Record]) -> None:
        for record in records:
            self.append(record)

    async def flush(self) -> bool:
        """Commit what was appended so far; False when the file cannot be written (the records
        stay in memory for the next try)."""
        async with self._flush_lock:
            if not self._pending or self._db is None:
                return True
            count = len(self._pending)
            rows = to_rows(self._pending[:count])
            try:
                await self._run(self._insert, rows)
            except sqlite3.Error as exc:
                self._write_failed(exc)
                return False
            del self._pending[:count]  # records appended during the commit stay
            self.committed += len(rows)
            if self.write_error is not None:
                _log.info("history %s: writes again", self.path)
                self.write_error = None
                self._backoff.reset()
            return True

    async def prune(self, now_ns: int | None = None) -> int:
        """Remove records older than keep_days, then the oldest beyond max_bytes; how many went."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        self._next_prune = time.monotonic() + _PRUNE_EVERY_S
        cut_ns = now_ns - int(self.keep_days * 86400 * NS)
        aged = await self._run(self._delete_before, cut_ns)
        self.pruned += aged
        if aged:
            _log.info(
                "history %s: %d records older than %g days removed", self.path, aged, self.keep_days
            )
        return aged + await self._limit_size()

    async def oee(
        self, machine: str, window: str, from_ns: int, to_ns: int
    ) -> list[dict[str, Any]]:
        return await self._run(lambda: queries.oee(self._conn(), machine, window, from_ns, to_ns))

    async def stops(self, machine: str | None, from_ns: int, to_ns: int) -> list[dict[str, Any]]:
        return await self._run(lambda: queries.stops(self._conn(), machine, from_ns, to_ns))

    async def alarms(self, from_ns: int, to_ns: int) -> list[dict[str, Any]]:
        return await self._run(lambda: queries.alarms(self._conn(), from_ns, to_ns))

    async def stop(self, stop_id: int) -> dict[str, Any] | None:
        return await self._run(lambda: queries.stop(self._conn(), stop_id))

    async def timeline(self, machine: str, from_ns: int, to_ns: int) -> list[dict[str, Any]]:
        return await self._run(lambda: queries.timeline(self._conn(), machine, from_ns, to_ns))

    async def classify_stop(
        self, stop_id: int, choice: Choice, user: str, at_ns: int, busy: Busy
    ) -> Correction:
        """An operator's reason for a stop, and the closed windows it corrects, in one commit."""
        await self.flush()  # a stop or window still in memory would miss the correction

        def apply() -> Correction:
            with _transaction(self._conn()) as db:
                return corrections.classify(db, stop_id, choice, user, at_ns, busy)

        return await self._run(apply)

    async def add_rejects(
        self, machine: str, t_ns: int, count: int, reason: str, user: str, at_ns: int
    ) -> Correction:
        """Rejects found after counting, and the closed windows they correct, in one commit."""
        await self.flush()

        def apply() -> Correction:
            with _transaction(self._conn()) as db:
                return corrections.add_rejects(db, machine, t_ns, count, reason, user, at_ns)

        return await self._run(apply)

    # ------------------------------------------------------------------ on the event loop

    async def _close(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._flusher is not None:
            await self._flusher
            self._flusher = None
        if not await self.flush() and self._pending:
            _log.error(
                "history %s: %d records could not be written before the stop (%s)",
                self.path,
                len(self._pending),
                self.write_error,
            )
        self._closed = True
        await self._run(self._close_db)
        self._executor.shutdown(wait=False)

    async def _flush_loop(self) -> None:
        while not self._closing.is_set():
            await self._wake.wait()  # the first record after a quiet spell
            with contextlib.suppress(TimeoutError):  # a batch gathers meanwhile
                await asyncio.wait_for(self._closing.wait(), self.flush_interval_s)
            self._wake.clear()
            if self._closing.is_set():
                return  # close() commits the rest
            if not await self.flush():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._backoff.next_delay())
                self._wake.set()  # try again
                continue
            try:
                if time.monotonic() >= self._next_prune:
                    await self.prune()
                else:
                    await self._limit_size()
            except sqlite3.Error as exc:  # deleting can fail on a broken disk too
                _log.warning("history %s: cannot apply its limits now: %s", self.path, exc)

    async def _limit_size(self) -> int:
        removed, cut_ns = await self._run(self._delete_beyond_size)
        if removed:
            _log.warning(
                "history %s is over its size limit (%.3g MB): %d records before %s removed",
                self.path,
                self.max_bytes / (1 << 20),
                removed,
                iso_utc(cut_ns),
            )
        self.pruned += removed
        return removed

    def _write_failed(self, exc: sqlite3.Error) -> None:
        over = len(self._pending) - _MAX_PENDING
        if over > 0:
            del self._pending[:over]
            self.unwritten_dropped += over
        if self.write_error is None:
            _log.error(
                "history %s cannot write: %s; %d records are held in memory (at most %d) and "
                "the commit is retried",
                self.path,
                exc,
                len(self._pending),
                _MAX_PENDING,
            )
        self.write_error = str(exc)

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ------------------------------------------------------------------ on the history thread

    def _open_db(self) -> None:
        private_dir(self.path.parent)  # missing folders are made 0700
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            aside = move_aside(self.path)
            _log.error(
                "the history %s cannot be read (%s): moved aside as %s; a fresh one is started",
                self.path,
                exc,
                aside,
            )
            self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = connect_private(self.path)
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            # Written a few times an hour and read when someone opens the page: the OS's file
            # cache serves those reads, SQLite's own 2 MiB default would sit mostly idle.
            db.execute("PRAGMA cache_size=-512")
            db.executescript(_SCHEMA)
            for table, added in _ADDED_COLUMNS.items():
                have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                for column in added:
                    if column.split()[0] not in have:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"the history {self.path} is not open")
        return self._db

    def _insert(self, rows: Rows) -> None:
        with _transaction(self._conn()) as db:
            db.executemany(_UPSERT_OEE, rows.oee)
            db.executemany(_UPSERT_STOP, rows.stops)
            db.executemany(_INSERT_ALARM, rows.alarms)
            db.executemany(_UPSERT_PERIOD, rows.periods)

    def _delete_before(self, cut_ns: int) -> int:
        removed = 0
        with _transaction(self._conn()) as db:
            for table, column in _TIME_OF.items():
                removed += db.execute(f"DELETE FROM {table} WHERE {column} < ?", (cut_ns,)).rowcount
        return removed

    def _delete_beyond_size(self) -> tuple[int, int]:
        """Drop the oldest records (all tables alike, by time) until the file's used pages fit."""
        removed, cut_ns = 0, 0
        for _ in range(8):  # each pass takes the share that is over; rows differ in size
            used = self._used_bytes()
            if used <= self.max_bytes:
                break
            span = self._time_span()
            if span is None:
                break
            share = min(1.0, (used - self.max_bytes) / used + _SIZE_HEADROOM)
            cut_ns = span[0] + int((span[1] - span[0]) * share) + 1
            removed += self._delete_before(cut_ns)
        return removed, cut_ns

    def _time_span(self) -> tuple[int, int] | None:
        db = self._conn()
        lows, highs = [], []
        for table, column in _TIME_OF.items():
            low, high = db.execute(f"SELECT MIN({column}), MAX({column}) FROM {table}").fetchone()
            if low is not None:
                lows.append(int(low))
                highs.append(int(high))
        return (min(lows), max(highs)) if lows else None

    def _used_bytes(self) -> int:
        db = self._conn()
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
