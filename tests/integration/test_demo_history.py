"""The demo's simulated history: three days of configs/demo.yaml's presses in a real history file.

What a newcomer's page needs at once: closed shift windows with plausible figures, stops with a
PLC's reason and stops without one (for operators to classify), breaks and rejects; every record
labelled simulated; and a second start that adds nothing and never touches real records.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import load_config
from edge_agent.config_models import AgentFile
from edge_agent.demo_history import fill_history, prefill
from edge_agent.history import HistoryStore
from edge_agent.records import Record
from edge_agent.timefmt import iso_utc

DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
S = 1_000_000_000
DAY = 86400 * S
NOW = 1_795_000_000 * S  # 2026-11-18 07:06:40 UTC, 15:06 in the demo's Asia/Shanghai


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AgentFile:
    for name in ("MQTT_HOST", "INFLUX_URL", "EDGE_AGENT_TZ"):
        monkeypatch.delenv(name, raising=False)
    loaded = load_config(DEMO)
    agent = loaded.agent.model_copy(
        update={"history_path": tmp_path / "history.db", "buffer_path": tmp_path / "outbox.db"}
    )
    return loaded.model_copy(update={"agent": agent})


async def opened(path: Path) -> HistoryStore:
    history = HistoryStore(path)
    await history.open()
    return history


def bodies(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every record body the history file holds, by table."""
    with sqlite3.connect(path) as db:
        return {
            table: [json.loads(b) for (b,) in db.execute(f"SELECT body FROM {table}")]
            for table in ("oee_windows", "stops", "alarms")
        }


async def test_three_days_of_labelled_history_for_every_machine(
    config: AgentFile, tmp_path: Path
) -> None:
    path = tmp_path / "history.db"
    history = await opened(path)
    try:
        given = await prefill(config, history, days=3, now_ns=NOW)
        breaks = 0
        for machine in config.machines:
            check_shifts(await history.oee(machine, "shift", NOW - 4 * DAY, NOW))
            check_stops(await history.stops(machine, NOW - 4 * DAY, NOW))
            timeline = await history.timeline(machine, NOW - 4 * DAY, NOW)
            planned = [p for p in timeline if p["state"] == "planned"]
            assert {p["reason"] for p in planned} == {"lunch", "meal"}
            breaks += len(planned)
    finally:
        await history.close()
    kept = bodies(path)
    assert given == sum(len(rows) for rows in kept.values()) + breaks
    assert kept["alarms"] and all(b["simulated"] is True for rows in kept.values() for b in rows)
    assert not (tmp_path / "outbox.db").exists()  # nothing for the delivery buffer


def check_shifts(shifts: list[dict[str, Any]]) -> None:
    assert len(shifts) >= 6  # two a day
    first, last = shifts[0], shifts[-1]
    assert last["end"] <= iso_utc(NOW) and first["start"] <= iso_utc(NOW - 3 * DAY)
    for w in shifts:
        assert w["final"] is True and w["simulated"] is True
        assert 0.6 <= w["availability"] <= 1 and 0.5 <= w["performance"] <= 1
        assert 0.9 <= w["quality"] <= 1 and 0 < w["oee"] <= w["availability"]
        assert w["unknown_time_s"] == 0 and w["reject_count"] > 0
        assert 10 * 3600 <= w["planned_busy_time_s"] <= 12 * 3600  # a shift less its break
        assert w["losses_by_reason_s"]["unclassified"] > 0  # idle stops nobody explained yet
    assert {w["shift"] for w in shifts} == {"day", "night"}


def check_stops(stops: list[dict[str, Any]]) -> None:
    classified = [s for s in stops if s["classified_by"] is not None]
    unclassified = [s for s in stops if s["classified_by"] is None]
    assert len(classified) >= 30 and len(unclassified) >= 10
    assert all(s["simulated"] is True for s in stops)
    assert all(s["duration_s"] >= 60 for s in stops)  # shorter ones are micro-stops
    assert {s["state"] for s in unclassified} == {"idle"}
    assert {s["category"] for s in classified} >= {"breakdown", "material", "operator"}


async def test_a_second_start_adds_nothing(config: AgentFile, tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    history = await opened(path)
    try:
        assert await prefill(config, history, days=1, now_ns=NOW) > 0
        before = bodies(path)
        assert await prefill(config, history, days=1, now_ns=NOW) == 0
        assert await prefill(config, history, days=1, now_ns=NOW + 3600 * S) == 0
    finally:
        await history.close()
    assert bodies(path) == before


async def test_real_records_are_kept_and_not_overlapped(config: AgentFile, tmp_path: Path) -> None:
    """A real stop a day ago: the simulated days end before it, and it stays as it was."""
    path = tmp_path / "history.db"
    start, end = NOW - DAY, NOW - DAY + 600 * S
    real = {
        "machine": "press2",
        "state": "down",
        "reason": "Die jam",
        "reason_code": "1",
        "category": "breakdown",
        "classified_by": "plc",
        "start": iso_utc(start),
        "end": iso_utc(end),
        "duration_s": 600.0,
    }
    history = await opened(path)
    try:
        history.append(Record("downtime", "press2", end, real))
        assert await history.flush()
        assert await prefill(config, history, days=1.5, now_ns=NOW) > 0
    finally:
        await history.close()
    kept = bodies(path)
    assert real in kept["stops"]
    simulated = [b for rows in kept.values() for b in rows if b.get("simulated")]
    assert len(simulated) == sum(len(rows) for rows in kept.values()) - 1
    assert max(b.get("end", b.get("start", "")) for b in simulated) <= iso_utc(start)
    assert min(b["start"] for b in kept["oee_windows"]) <= iso_utc(NOW - 3 * DAY // 2)


async def test_the_demo_fills_its_own_history_file(config: AgentFile, tmp_path: Path) -> None:
    assert await fill_history(config, days=0.5) > 0
    assert bodies(tmp_path / "history.db")["stops"]
    assert load_config(DEMO).agent.history_path == Path("var/demo-history.db")
