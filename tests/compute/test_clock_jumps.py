"""A jump of the host's clock: the span is unknown, closed in one step per open window.

Derived by hand: the machine runs from 06:00:00 (UTC hours, no calendar, running figures every
60 s). At 06:30:00 the clock jumps 30 days ahead to 06:30:00 + 30 d. The 06:00 hour closes with
run 1,800 s and unknown 1,800 s; no window is made up for the 719 hours in between; the hour
that holds the new time starts with 30 min unknown. Walking the jump instead would publish a
running figure every minute of the month (43,200 of them) and take the event loop for a minute.
"""

from __future__ import annotations

import time

from edge_agent.compute.engine import ComputeEngine
from edge_agent.config_models import AgentFile
from edge_agent.samples import SampleBatch

S = 1_000_000_000
SIX = 1_780_034_400 * S  # 2026-05-29T06:00:00Z, a whole UTC hour
DAY = 86400 * S


def engine() -> ComputeEngine:
    return ComputeEngine(
        AgentFile.model_validate(
            {
                "agent": {"id": "t"},
                "devices": {
                    "plc": {
                        "driver": "modbus",
                        "host": "h",
                        "tags": {"run": {"table": "coil", "address": 0, "type": "bool"}},
                    }
                },
                "machines": {
                    "m": {
                        "ideal_cycle_time_s": 1,
                        "oee_interval_s": 60,
                        "state": {"running": "plc.run"},
                    }
                },
            }
        )
    )


def running_until_half_past() -> ComputeEngine:
    e = engine()
    e.ingest(SampleBatch("plc", SIX, {"run": True}, {}))
    e.advance(SIX + 1800 * S)
    return e


def test_a_month_ahead_is_one_unknown_span_per_open_window() -> None:
    e = running_until_half_past()
    jumped_to = SIX + 30 * DAY + 1800 * S
    started = time.perf_counter()
    records = e.skip(jumped_to)
    took_s = time.perf_counter() - started
    finals = [r.body for r in records if r.kind == "oee" and r.body["final"]]
    assert [(f["start"], f["run_time_s"], f["unknown_time_s"]) for f in finals] == [
        ("2026-05-29T06:00:00.000Z", 1800.0, 1800.0)
    ]
    assert len(records) < 10 and took_s < 1.0
    assert [r.body["state"] for r in records if r.kind == "state"] == ["unknown"]
    # The hour holding the new time: 30 min unknown before the first sample, then running.
    e.ingest(SampleBatch("plc", jumped_to, {"run": True}, {}))
    later = e.advance(jumped_to + 1800 * S)
    [hour] = [r.body for r in later if r.kind == "oee" and r.body["final"]]
    assert (hour["start"], hour["unknown_time_s"], hour["run_time_s"]) == (
        "2026-06-28T06:00:00.000Z",
        1800.0,
        1800.0,
    )


def test_walking_the_same_month_is_what_the_jump_avoids() -> None:
    """The baseline the first test is measured against: advance() walks every event."""
    e = running_until_half_past()
    records = e.advance(SIX + 30 * DAY + 1800 * S)
    assert sum(1 for r in records if r.kind == "oee" and not r.body["final"]) > 40_000


def test_windows_restart_after_the_clock_is_set_back_a_day() -> None:
    """restart_windows: the 06:00 hour restarts at 06:30 - 1 d with its first 30 min unknown
    (the time before it cannot be continued); the machine is still running."""
    e = running_until_half_past()
    back = SIX - DAY + 1800 * S
    e.restart_windows(back)
    e.ingest(SampleBatch("plc", back + 60 * S, {"run": True}, {}))
    records = e.advance(back + 1800 * S)
    [hour] = [r.body for r in records if r.kind == "oee" and r.body["final"]]
    assert (hour["start"], hour["unknown_time_s"], hour["run_time_s"]) == (
        "2026-05-28T06:00:00.000Z",
        1800.0,
        1800.0,
    )
