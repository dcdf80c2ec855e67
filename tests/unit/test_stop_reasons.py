"""An operator's reason for a stop and rejects found later: the history, the open windows and the
records published again, with the real compute core and a real history file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge_agent.access.roles import Identity, Role
from edge_agent.compute.engine import ComputeEngine
from edge_agent.config_models import AgentFile
from edge_agent.history import HistoryStore
from edge_agent.records import Record
from edge_agent.samples import SampleBatch
from edge_agent.web.operator_api import OperatorApi

S = 1_000_000_000
MIN = 60 * S
# 2026-03-02 08:00 in Shanghai: the day shift runs 08:00-20:00 with a lunch 12:00-13:00.
DAY = int(datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()) * S
OPERATOR = Identity("li.wei", Role.OPERATOR)


def config(tmp: Path) -> AgentFile:
    return AgentFile.model_validate(
        {
            "agent": {"id": "t", "history_path": str(tmp / "history.db")},
            "devices": {
                "plc": {
                    "driver": "modbus",
                    "host": "h",
                    "tags": {
                        "run": {"table": "coil", "address": 0, "type": "bool"},
                        "fault": {"address": 0},
                        "total": {"address": 1},
                        "good": {"address": 2},
                    },
                }
            },
            "machines": {
                "press1": {
                    "display_name": "冲床 P201",
                    "calendar": "plant",
                    "ideal_cycle_time_s": 1.0,
                    "micro_stop_s": 60,
                    "state": {
                        "running": "plc.run",
                        "fault": "plc.fault != 0",
                        "reason": "plc.fault",
                    },
                    "counters": {"total": "plc.total", "good": "plc.good"},
                    "reasons": {
                        1: "Die jam",
                        6: {"text": "待料", "category": "material"},
                        7: {"text": "Changeover", "category": "setup"},
                    },
                }
            },
            "calendars": {
                "plant": {
                    "timezone": "Asia/Shanghai",
                    "shifts": [
                        {
                            "name": "day",
                            "display_name": "白班",
                            "start": "08:00",
                            "end": "20:00",
                            "breaks": [{"start": "12:00", "end": "13:00"}],
                        },
                        {"name": "night", "start": "20:00", "end": "08:00"},
                    ],
                }
            },
        }
    )


def run_machine(
    engine: ComputeEngine, start_ns: int, minutes: int, script: dict[int, tuple]
) -> list[Record]:
    """One sample a minute; `script` minute -> (run, fault) from then on; a part every second
    while running."""
    records: list[Record] = []
    run, fault, total = True, 0, 0
    for minute in range(minutes + 1):
        run, fault = script.get(minute, (run, fault))
        t = start_ns + minute * MIN
        batch = SampleBatch(
            "plc", t, {"run": run, "fault": fault, "total": total, "good": total}, {}
        )
        records += engine.ingest(batch)
        if run and not fault:
            total += 60
    return records


class Published:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def __call__(self, records: list[Record]) -> None:
        self.records += records


async def setup(tmp: Path) -> tuple[AgentFile, ComputeEngine, HistoryStore, list[Record]]:
    cfg = config(tmp)
    engine = ComputeEngine(cfg)
    # 08:00-09:30 Shanghai (00:00-01:30 UTC): an idle stop 08:20-08:35 (no reason), a fault with
    # an unknown code 9 at 08:50-09:00, a fault with a configured code 1 at 09:10-09:15.
    script = {
        20: (False, 0),
        35: (True, 0),
        50: (True, 9),
        60: (True, 0),
        70: (True, 1),
        75: (True, 0),
    }
    records = run_machine(engine, DAY, 90, script)
    store = HistoryStore(tmp / "history.db")
    await store.open()
    store.extend(records)
    await store.flush()
    return cfg, engine, store, records


def hour(records: list[Record], start_iso: str) -> dict[str, Any]:
    found = [
        r.body
        for r in records
        if r.kind == "oee"
        and r.body["final"]
        and r.body["window"] == "hour"
        and r.body["start"] == start_iso
    ]
    assert len(found) == 1, start_iso
    return found[0]


@pytest.mark.asyncio
async def test_stops_without_a_known_reason_are_unclassified(tmp_path: Path) -> None:
    _, _, store, records = await setup(tmp_path)
    stops = await store.stops("press1", DAY, DAY + 2 * 3600 * S)
    assert [(s["state"], s["reason"], s["reason_code"], s["classified_by"]) for s in stops] == [
        ("idle", None, None, None),
        ("down", None, "9", None),
        ("down", "Die jam", "1", "plc"),
    ]
    first = hour(records, "2026-03-02T00:00:00.000Z")
    # 15 min idle + 10 min of an unknown fault: 25 min unclassified, no "fault" key made up.
    assert first["losses_by_reason_s"] == {"unclassified": pytest.approx(1500)}
    await store.close()


@pytest.mark.asyncio
async def test_a_reason_corrects_the_windows_and_publishes_them_again(tmp_path: Path) -> None:
    cfg, engine, store, records = await setup(tmp_path)
    published = Published()
    api = OperatorApi(cfg, store, lambda: engine, published)
    idle = (await store.stops("press1", DAY, DAY + 2 * 3600 * S))[0]
    before = hour(records, "2026-03-02T00:00:00.000Z")
    first_ts = next(r.ts_ns for r in records if r.kind == "oee" and r.body == before)

    status, reply = await api.reason([str(idle["id"])], {"code": 6, "note": "叉车没来"}, OPERATOR)

    assert status == 200, reply
    assert reply["stop"]["classified_by"] == "li.wei"
    assert reply["stop"]["reason"] == "待料" and reply["stop"]["category"] == "material"
    after = (await store.oee("press1", "hour", DAY, DAY + 3600 * S))[0]
    assert after["losses_by_reason_s"] == {
        "unclassified": pytest.approx(600),
        "待料": pytest.approx(900),
    }
    # The time was lost whatever the reason: A, P, Q and OEE are the same.
    for k in ("availability", "performance", "quality", "oee", "down_time_s", "idle_time_s"):
        assert after[k] == before[k]
    assert after["corrected_by"] == "li.wei"
    again = [r for r in published.records if r.kind == "oee" and r.body["final"]]
    assert [r.ts_ns for r in again if r.body["window"] == "hour"] == [first_ts]
    downtime = [r for r in published.records if r.kind == "downtime"]
    assert downtime[0].body["classified_by"] == "li.wei" and downtime[0].body["note"] == "叉车没来"
    # The open shift (08:00-20:00) holds the stop too: its running figure is corrected now,
    # and so will its final record be.
    running = [r.body for r in published.records if r.kind == "oee" and not r.body["final"]]
    assert running and running[0]["losses_by_reason_s"]["待料"] == pytest.approx(900)
    shift = engine.oee["press1"].windows[0]
    assert shift.kind == "shift" and shift.reasons["待料"] == pytest.approx(900)

    # A second reason for the same stop moves the time on, from the first reason.
    status, reply = await api.reason([str(idle["id"])], {"code": "7"}, OPERATOR)
    assert status == 200, reply
    again = (await store.oee("press1", "hour", DAY, DAY + 3600 * S))[0]
    assert again["losses_by_reason_s"]["待料"] == 0
    assert again["losses_by_reason_s"]["Changeover"] == pytest.approx(900)
    await store.close()


@pytest.mark.asyncio
async def test_what_cannot_be_classified_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    cfg, engine, store, _ = await setup(tmp_path)
    api = OperatorApi(cfg, store, lambda: engine, Published())
    stops = await store.stops("press1", DAY, DAY + 2 * 3600 * S)
    plc = stops[2]
    cases = [
        ([str(plc["id"])], {"code": "6"}, 409, "PLC gave"),
        (["999999"], {"code": "6"}, 404, "no stop"),
        (["../1"], {"code": "6"}, 404, "no stop"),
        ([str(stops[0]["id"])], {"code": "42"}, 400, "not a reason of press1"),
        ([str(stops[0]["id"])], {}, 400, "give code"),
        ([str(stops[0]["id"])], {"note": "x" * 121}, 400, "1 to 120"),
        ([str(stops[0]["id"])], {"note": "  "}, 400, "1 to 120"),
        ([str(stops[0]["id"])], {"note": "unclassified"}, 400, "cannot be"),
        ([str(stops[0]["id"])], {"code": "6", "user": "boss"}, 400, "unknown field 'user'"),
    ]
    for args, body, status, error in cases:
        got, reply = await api.reason(args, body, OPERATOR)
        assert (got, reply["ok"]) == (status, False), (body, reply)
        assert error in reply["error"]
    assert await store.stops("press1", DAY, DAY + 2 * 3600 * S) == stops
    await store.close()


@pytest.mark.asyncio
async def test_a_note_alone_is_a_reason(tmp_path: Path) -> None:
    cfg, engine, store, _ = await setup(tmp_path)
    api = OperatorApi(cfg, store, lambda: engine, Published())
    fault9 = (await store.stops("press1", DAY, DAY + 2 * 3600 * S))[1]
    status, reply = await api.reason([str(fault9["id"])], {"note": " 模具  松动 "}, OPERATOR)
    assert status == 200, reply
    assert (reply["stop"]["reason"], reply["stop"]["reason_code"]) == ("模具 松动", "9")
    window = (await store.oee("press1", "hour", DAY, DAY + 3600 * S))[0]
    assert window["losses_by_reason_s"]["模具 松动"] == pytest.approx(600)
    await store.close()


@pytest.mark.asyncio
async def test_rejects_found_later_lower_quality(tmp_path: Path) -> None:
    cfg, engine, store, records = await setup(tmp_path)
    published = Published()
    api = OperatorApi(cfg, store, lambda: engine, published, now_ns=lambda: DAY + 90 * MIN)
    before = hour(records, "2026-03-02T00:00:00.000Z")
    body = {"machine": "press1", "count": 30, "reason": "毛刺", "time": "2026-03-02T08:30:00+08:00"}

    status, reply = await api.rejects([], body, OPERATOR)

    assert status == 200, reply
    after = (await store.oee("press1", "hour", DAY, DAY + 3600 * S))[0]
    assert after["good_count"] == before["good_count"] - 30
    assert after["reject_count"] == before["reject_count"] + 30
    assert after["quality"] == pytest.approx((before["good_count"] - 30) / before["total_count"])
    assert after["oee"] < before["oee"] and after["availability"] == before["availability"]
    # The open shift holds 08:30 too: its running figure counts them.
    running = [r.body for r in published.records if r.kind == "oee" and not r.body["final"]]
    assert running and running[0]["reject_count"] == 30
    refusals = [
        ({**body, "count": 0}, "whole number"),
        ({**body, "count": True}, "whole number"),
        ({**body, "machine": "nope"}, "machine is one of"),
        ({**body, "time": "2026-03-02T08:30:00"}, "offset"),
        ({**body, "time": "2030-01-01T00:00:00+00:00"}, "future"),
        ({**body, "count": 10**9}, "whole number"),
        ({**body, "count": before["good_count"]}, "counted only"),
    ]
    for bad, error in refusals:
        status, reply = await api.rejects([], bad, OPERATOR)
        assert status == 400 and error in reply["error"], (bad, reply)
    await store.close()


@pytest.mark.asyncio
async def test_rejects_beyond_an_open_windows_good_parts_are_refused(tmp_path: Path) -> None:
    """As for a closed window: not saved and then silently counted as fewer."""
    cfg, engine, store, _ = await setup(tmp_path)
    published = Published()
    now = DAY + 90 * MIN  # in the open hour 01:00-02:00 UTC and the open day shift
    api = OperatorApi(cfg, store, lambda: engine, published, now_ns=lambda: now)
    tracker = engine.oee["press1"]
    open_now = tracker.running_records(tracker.windows_holding(now))
    fewest = min(r.body["good_count"] for r in open_now)
    assert len(open_now) == 2 and fewest > 0

    status, reply = await api.rejects(
        [], {"machine": "press1", "count": fewest + 1, "reason": "毛刺"}, OPERATOR
    )

    assert status == 400 and "counted only" in reply["error"], reply
    assert not published.records
    assert all(w.manual_rejects == 0 for w in tracker.windows)
    status, reply = await api.rejects(
        [], {"machine": "press1", "count": fewest, "reason": "毛刺"}, OPERATOR
    )
    assert status == 200, reply
    after = tracker.running_records(tracker.windows_holding(now))
    assert min(r.body["good_count"] for r in after) == 0
    await store.close()
