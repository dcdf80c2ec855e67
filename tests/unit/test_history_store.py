"""The local history on a real SQLite file: what is kept, corrections, stops, limits, restarts."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from edge_agent.history import HistoryStore
from edge_agent.history.rows import iso_ms
from edge_agent.records import Record
from edge_agent.timefmt import iso_utc

S = 1_000_000_000
HOUR = 3600 * S
DAY = 24 * HOUR
T0 = time.time_ns() // DAY * DAY - DAY  # yesterday 00:00 UTC: within every keep_days here


def window(machine: str, start_ns: int, *, final: bool = True, oee: float = 0.5) -> Record:
    body = {
        "machine": machine,
        "window": "hour",
        "shift": None,
        "start": iso_utc(start_ns),
        "end": iso_utc(start_ns + HOUR),
        "final": final,
        "availability": 0.9,
        "oee": oee,
        "total_count": 100,
    }
    return Record("oee", machine, start_ns + HOUR, body)


def stop(machine: str, start_ns: int, end_ns: int, reason: str | None) -> Record:
    body = {
        "machine": machine,
        "state": "down",
        "reason": reason,
        "category": "fault",
        "start": iso_utc(start_ns),
        "end": iso_utc(end_ns),
        "duration_s": round((end_ns - start_ns) / S, 3),
    }
    return Record("downtime", machine, end_ns, body)


def alarm(alarm_id: str, ts_ns: int, event: str = "change", **extra: Any) -> Record:
    body = {
        "id": alarm_id,
        "type": "high",
        "tag": "plc.temp",
        "machine": "press1",
        "state": "unack_active",
        "event": event,
        "priority": "high",
        "severity": 700,
        "active": True,
        "acked": False,
        "level": None,
        "value": 91.5,
        "statistic": None,
        "message": "oil too hot",
        "shelved_until": None,
        "suppressed": False,
        "out_of_service": False,
        "out_of_service_until": None,
        "reason": None,
        **extra,
    }
    return Record("alarm", alarm_id, ts_ns, body)


async def opened(path: Path, **kwargs: Any) -> HistoryStore:
    store = HistoryStore(path, **kwargs)
    await store.open()
    return store


def row_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {
            t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("oee_windows", "stops", "alarms")
        }


async def test_keeps_closed_windows_stops_and_alarms_only(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    store = await opened(path)
    store.extend(
        [
            Record("values", "plc", T0, {"device": "plc", "values": {"n": 1}}),
            Record("state", "press1", T0, {"machine": "press1", "state": "running"}),
            Record("condition", "temp", T0, {"id": "temp"}),
            window("press1", T0, final=False),  # running figures: not history
            window("press1", T0),
            stop("press1", T0 + 60 * S, T0 + 300 * S, "jam"),
            alarm("temp", T0 + 90 * S),
        ]
    )
    await store.flush()
    assert row_counts(path) == {"oee_windows": 1, "stops": 1, "alarms": 1}
    [closed] = await store.oee("press1", "hour", T0, T0 + DAY)
    assert closed == window("press1", T0).body  # the record's body, as published
    [transition] = await store.alarms(T0, T0 + DAY)
    assert transition == {
        "id": "temp",
        "machine": "press1",
        "state": "unack_active",
        "event": "change",
        "priority": "high",
        "value": 91.5,
        "message": "oil too hot",
        "user": None,
        "declared_user": None,
        "reason": None,
        "ts": iso_utc(T0 + 90 * S),
        "simulated": False,
    }
    await store.close()


async def test_a_republished_window_replaces_the_first(tmp_path: Path) -> None:
    store = await opened(tmp_path / "history.db")
    store.append(window("press1", T0, oee=0.5))
    store.append(window("press1", T0 + HOUR, oee=0.7))
    await store.flush()
    store.append(window("press1", T0, oee=0.55))  # corrected, published again
    await store.flush()
    got = await store.oee("press1", "hour", T0, T0 + DAY)
    assert [(w["start"], w["oee"]) for w in got] == [
        (iso_utc(T0), 0.55),
        (iso_utc(T0 + HOUR), 0.7),
    ]
    # [from, to) on the window's start; other machines and kinds are not mixed in
    assert len(await store.oee("press1", "hour", T0 + HOUR, T0 + 2 * HOUR)) == 1
    assert await store.oee("press1", "shift", T0, T0 + DAY) == []
    assert await store.oee("press2", "hour", T0, T0 + DAY) == []
    await store.close()


async def test_stops_from_the_plc_are_classified_others_are_not(tmp_path: Path) -> None:
    store = await opened(tmp_path / "history.db")
    store.append(stop("press1", T0, T0 + 120 * S, "jam"))
    store.append(stop("press1", T0 + 600 * S, T0 + 700 * S, None))
    store.append(stop("press2", T0 + 10 * S, T0 + 20 * S, None))
    await store.flush()
    first, second = await store.stops("press1", T0, T0 + DAY)
    assert isinstance(first["id"], int) and isinstance(second["id"], int)
    assert first["classified_by"] == "plc" and first["reason"] == "jam"
    assert second["classified_by"] is None and second["reason"] is None  # unclassified
    expected = stop("press1", T0, T0 + 120 * S, "jam").body
    assert {k: first[k] for k in expected} == expected  # the record's fields and values
    assert len(await store.stops(None, T0, T0 + DAY)) == 3
    # A stop overlapping the range belongs to it, even when it started before.
    assert len(await store.stops("press1", T0 + 60 * S, T0 + 61 * S)) == 1
    assert await store.stops("press1", T0 + 700 * S, T0 + DAY) == []
    # The same stop again (a restart or replay) keeps its id.
    store.append(stop("press1", T0, T0 + 120 * S, "jam"))
    await store.flush()
    again = await store.stops("press1", T0, T0 + DAY)
    assert [s["id"] for s in again] == [first["id"], second["id"]]
    await store.close()


async def test_operator_actions_keep_who_gave_them(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    store = await opened(path)
    store.append(
        alarm(
            "temp",
            T0,
            event="shelve",
            state="shelved",
            user="anna",
            declared_user="A. Li",
            reason="sensor being replaced",
        )
    )
    await store.close()
    again = await opened(path)
    [action] = await again.alarms(T0, T0 + 1)
    assert (action["event"], action["user"], action["declared_user"], action["reason"]) == (
        "shelve",
        "anna",
        "A. Li",
        "sensor being replaced",
    )
    await again.close()


async def test_records_older_than_keep_days_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "history.db"
    store = await opened(path, keep_days=10)
    old, young = T0 - 11 * DAY, T0 - 9 * DAY
    store.extend([window("press1", old), stop("press1", old, old + S, None), alarm("a", old)])
    store.extend(
        [window("press1", young), stop("press1", young, young + S, None), alarm("a", young)]
    )
    await store.flush()
    with caplog.at_level(logging.INFO, logger="edge_agent.history.store"):
        assert await store.prune(T0) == 3
        assert await store.prune(T0) == 0
    assert len([r for r in caplog.records if "older than" in r.message]) == 1
    assert row_counts(path) == {"oee_windows": 1, "stops": 1, "alarms": 1}
    assert len(await store.oee("press1", "hour", young, T0)) == 1
    await store.close()

    # At open too: what the last run left past its age goes before anything else.
    store = await opened(path, keep_days=1)
    assert row_counts(path) == {"oee_windows": 0, "stops": 0, "alarms": 0}
    await store.close()


async def test_the_oldest_go_beyond_the_size_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "history.db"
    store = await opened(path, max_bytes=512 * 1024)
    now = T0
    store.extend(alarm("a", now - i * S, message="x" * 50) for i in range(2000))  # ~1.2 MB
    await store.flush()
    with caplog.at_level(logging.WARNING, logger="edge_agent.history.store"):
        removed = await store.prune(now)
    assert 0 < removed < 2000
    assert len([r for r in caplog.records if "size limit" in r.message]) == 1  # once per pruning
    with sqlite3.connect(path) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    assert (pages - free) * size <= 512 * 1024
    kept = await store.alarms(now - 2000 * S, now + S)
    assert len(kept) == 2000 - removed
    assert kept[-1]["ts"] == iso_utc(now)  # the newest stay
    assert kept[0]["ts"] == iso_utc(now - (len(kept) - 1) * S)
    await store.close()


async def test_file_0600_in_a_0700_folder(tmp_path: Path) -> None:
    path = tmp_path / "state" / "history.db"
    store = await opened(path)
    store.append(alarm("a", T0))
    await store.flush()
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    for suffix in ("", "-wal", "-shm"):
        assert stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode) == 0o600, suffix
    await store.close()


async def test_batches_are_committed_without_being_asked(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    store = await opened(path, flush_interval_s=0.05)
    store.append(alarm("a", T0))
    for _ in range(100):
        if row_counts(path)["alarms"]:
            break
        await asyncio.sleep(0.02)
    assert row_counts(path)["alarms"] == 1
    await store.close()


async def test_close_commits_pending_and_a_restart_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    store = await opened(path, flush_interval_s=60)  # no batch falls due by itself
    store.extend([window("press1", T0), stop("press1", T0, T0 + 300 * S, "jam"), alarm("a", T0)])
    await store.close()
    store.append(alarm("late", T0))  # after the close: not kept, and no error

    again = await opened(path)
    assert [w["start"] for w in await again.oee("press1", "hour", T0, T0 + DAY)] == [iso_utc(T0)]
    [kept] = await again.stops("press1", T0, T0 + DAY)
    assert (kept["reason"], kept["classified_by"], kept["duration_s"]) == ("jam", "plc", 300.0)
    assert [a["id"] for a in await again.alarms(T0, T0 + DAY)] == ["a"]
    await again.close()


async def test_a_damaged_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(b"not a database at all" * 100)
    store = await opened(path)
    store.append(alarm("a", T0))
    await store.close()
    assert list(tmp_path.glob("history.db.corrupt-*"))
    assert row_counts(path)["alarms"] == 1


def test_the_fast_time_text_is_iso_utc() -> None:
    rng = random.Random(5)
    for t in [0, 1, 999_999, T0, *(rng.randrange(0, 4_102_444_800 * S) for _ in range(20_000))]:
        assert iso_ms(t) == iso_utc(t), t


async def test_an_operators_reason_survives_the_stop_seen_again(tmp_path: Path) -> None:
    """A replay or a restart publishes the stop again, unclassified: the operator's reason stays."""
    store = await opened(tmp_path / "h.db")
    store.append(stop("m1", T0, T0 + 600 * S, None))
    await store.flush()
    (row,) = await store.stops("m1", T0, T0 + DAY)
    db = sqlite3.connect(tmp_path / "h.db")
    with db:
        db.execute(
            "UPDATE stops SET reason = '待料', classified_by = 'li' WHERE id = ?", (row["id"],)
        )
    db.close()
    store.append(stop("m1", T0, T0 + 600 * S, None))
    await store.flush()
    (again,) = await store.stops("m1", T0, T0 + DAY)
    assert (again["id"], again["reason"], again["classified_by"]) == (row["id"], "待料", "li")
    await store.close()


async def test_a_file_from_before_reason_codes_gets_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "CREATE TABLE stops (id INTEGER PRIMARY KEY, machine TEXT NOT NULL, start_ns INTEGER "
            "NOT NULL, end_ns INTEGER NOT NULL, duration_s REAL NOT NULL, state TEXT NOT NULL, "
            "reason TEXT, category TEXT, classified_by TEXT, body TEXT NOT NULL, "
            "UNIQUE (machine, start_ns))"
        )
        db.execute(
            "INSERT INTO stops (machine, start_ns, end_ns, duration_s, state, reason, category, "
            "classified_by, body) VALUES ('m1', ?, ?, 60, 'down', 'Die jam', 'breakdown', 'plc', "
            "'{}')",
            (T0, T0 + 60 * S),
        )
    db.close()
    store = await opened(path)
    (old,) = await store.stops("m1", T0, T0 + DAY)
    assert (old["reason"], old["reason_code"], old["note"]) == ("Die jam", None, None)
    store.append(stop("m1", T0 + HOUR, T0 + HOUR + 60 * S, None))
    await store.flush()
    assert len(await store.stops("m1", T0, T0 + DAY)) == 2
    await store.close()
