"""The local history's queries over 90 days × 10 machines, with its indexes and without them.

    .venv/bin/python -m tests.bench.bench_history [--days 90] [--machines 10] [--repeat 7]

Fills a history in a temporary folder through HistoryStore itself (hour and shift windows, 50 stops
a day per machine, 300 alarm transitions a day), then times the three queries for one machine over
the whole span and over one day: through the store (on its thread, as the page will ask) and
directly on the connection, beside the same SQL on a copy of the file whose tables have no keys
and no indexes (a naive baseline). Prints medians and the file size; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.history import HistoryStore, file_bytes, queries
from edge_agent.records import Record
from edge_agent.timefmt import iso_utc

S = 1_000_000_000
HOUR = 3600 * S
DAY = 24 * HOUR
STOPS_PER_DAY = 50
ALARMS_PER_DAY = 300


def oee_body(machine: str, window: str, start: int, end: int, rng: random.Random) -> dict[str, Any]:
    figures = {
        name: round(rng.uniform(0, 3600), 3)
        for name in (
            "planned_busy_time_s",
            "run_time_s",
            "down_time_s",
            "idle_time_s",
            "unknown_time_s",
            "planned_stop_time_s",
            "setup_time_s",
            "micro_stop_time_s",
        )
    }
    ratios = {n: round(rng.random(), 4) for n in ("availability", "performance", "quality", "oee")}
    return {
        "machine": machine,
        "window": window,
        "shift": "day" if window == "shift" else None,
        "start": iso_utc(start),
        "end": iso_utc(end),
        "final": True,
        **figures,
        **ratios,
        "total_count": rng.randrange(5000),
        "good_count": rng.randrange(5000),
        "reject_count": rng.randrange(50),
        "failures": rng.randrange(5),
        "micro_stops": rng.randrange(20),
        "reasons": {"jam": 120.0, "tool change": 300.0},
    }


def day_records(machines: list[str], day0: int, rng: random.Random) -> list[Record]:
    records = []
    for m in machines:
        for h in range(24):
            start = day0 + h * HOUR
            records.append(
                Record("oee", m, start + HOUR, oee_body(m, "hour", start, start + HOUR, rng))
            )
        for k in range(3):
            start = day0 + k * 8 * HOUR
            body = oee_body(m, "shift", start, start + 8 * HOUR, rng)
            records.append(Record("oee", m, start + 8 * HOUR, body))
        for i in range(STOPS_PER_DAY):
            start = day0 + i * (DAY // STOPS_PER_DAY) + rng.randrange(60) * S
            end = start + rng.randrange(30, 900) * S
            reason = rng.choice(["jam", "fault 17", None, "tool change"])
            body = {
                "machine": m,
                "state": "down" if reason else "idle",
                "reason": reason,
                "category": "fault" if reason else None,
                "start": iso_utc(start),
                "end": iso_utc(end),
                "duration_s": round((end - start) / S, 3),
            }
            records.append(Record("downtime", m, end, body))
    for i in range(ALARMS_PER_DAY):
        ts = day0 + i * (DAY // ALARMS_PER_DAY)
        alarm_id = f"{rng.choice(machines)}_temp_{rng.randrange(5)}"
        body = {
            "id": alarm_id,
            "type": "limit",
            "tag": "plc.temp",
            "machine": alarm_id.split("_temp")[0],
            "state": rng.choice(["unack_active", "ack_active", "unack_normal", "normal"]),
            "event": rng.choice(["change", "change", "ack"]),
            "priority": "high",
            "severity": 700,
            "active": True,
            "acked": False,
            "level": "H",
            "value": round(rng.uniform(60, 90), 2),
            "statistic": None,
            "message": "spindle temperature high",
            "shelved_until": None,
            "suppressed": False,
            "out_of_service": False,
            "out_of_service_until": None,
            "reason": None,
        }
        records.append(Record("alarm", alarm_id, ts, body))
    return records


async def fill(path: Path, days: int, machines: list[str], first_day: int) -> float:
    store = HistoryStore(path, keep_days=days + 30, max_bytes=1 << 40)
    await store.open()
    rng = random.Random(7)
    started = time.perf_counter()
    for d in range(days):
        store.extend(day_records(machines, first_day + d * DAY, rng))
        await store.flush()  # a day at a time: in the agent a batch is 0.5 s of records
    await store.close()
    return time.perf_counter() - started


def strip_indexes(source: Path, target: Path) -> None:
    shutil.copy(source, target)
    db = sqlite3.connect(target)
    for table in ("oee_windows", "stops", "alarms"):
        db.executescript(
            f"CREATE TABLE plain AS SELECT * FROM {table}; DROP TABLE {table}; "
            f"ALTER TABLE plain RENAME TO {table};"
        )
    db.execute("VACUUM")
    db.close()


def on(query: Callable[..., Any], *args: Any) -> Callable[[sqlite3.Connection], Any]:
    return lambda db: query(db, *args)


def median_ms(fn: Callable[[], Any], repeat: int) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        rows = len(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    machines = [f"press{i + 1}" for i in range(args.machines)]
    last_day = time.time_ns() // DAY * DAY - DAY
    first_day = last_day - (args.days - 1) * DAY
    with tempfile.TemporaryDirectory() as tmp:
        path, naive_path = Path(tmp) / "history.db", Path(tmp) / "naive.db"
        fill_s = await fill(path, args.days, machines, first_day)
        strip_indexes(path, naive_path)
        db, naive = sqlite3.connect(path), sqlite3.connect(naive_path)
        counts = {
            t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("oee_windows", "stops", "alarms")
        }
        print(f"filled {args.days} days × {args.machines} machines in {fill_s:.1f} s: {counts}")
        print(
            f"file: {file_bytes(path) / 1e6:.1f} MB (naive copy without indexes: {file_bytes(naive_path) / 1e6:.1f} MB)"
        )
        whole, one_day = (first_day, last_day + DAY), (last_day, last_day + DAY)
        m = machines[0]
        cases: list[tuple[str, Callable[[sqlite3.Connection], Any]]] = []
        for label, (a, b) in ((f"{args.days} days", whole), ("1 day", one_day)):
            cases += [
                (f"oee({m}, hour, {label})", on(queries.oee, m, "hour", a, b)),
                (f"oee({m}, shift, {label})", on(queries.oee, m, "shift", a, b)),
                (f"stops({m}, {label})", on(queries.stops, m, a, b)),
                (f"stops(all, {label})", on(queries.stops, None, a, b)),
                (f"alarms({label})", on(queries.alarms, a, b)),
            ]
        store = HistoryStore(path, keep_days=args.days + 30, max_bytes=1 << 40)
        await store.open()
        print(f"\n{'query':34} {'rows':>6} {'store (async)':>14} {'indexed':>10} {'naive':>10}")
        for label, fn in cases:
            indexed_ms, rows = median_ms(functools.partial(fn, db), args.repeat)
            naive_ms, naive_rows = median_ms(functools.partial(fn, naive), args.repeat)
            assert rows == naive_rows, label
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                await store._run(fn, store._conn())
                times.append(time.perf_counter() - t)
            store_ms = statistics.median(times) * 1000
            print(
                f"{label:34} {rows:6d} {store_ms:11.1f} ms {indexed_ms:7.1f} ms {naive_ms:7.1f} ms"
            )
        await store.close()
        db.close()
        naive.close()


if __name__ == "__main__":
    asyncio.run(main())
