"""Alarm details a page can translate: detail_key and detail_args beside the English detail.

Each case feeds one alarm through the compute engine and checks the three forms of its detail in
`AlarmManager.states()` and on the alarm's last record; the figures are worked out by hand.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge_agent.compute.detectors import DETAILS
from edge_agent.compute.engine import ComputeEngine
from edge_agent.config_models import AgentFile
from edge_agent.records import Record
from edge_agent.samples import SampleBatch
from edge_agent.timefmt import iso_utc

S = 1_000_000_000


def engine(alarm: dict[str, Any]) -> ComputeEngine:
    tags = {
        "x": {"table": "input", "address": 0, "type": "float32"},
        "running": {"table": "coil", "address": 0, "type": "bool"},
        "count": {"table": "holding", "address": 2, "type": "uint32"},
    }
    device = {"driver": "modbus", "host": "h", "tags": tags}
    return ComputeEngine(
        AgentFile.model_validate(
            {"agent": {"id": "t"}, "devices": {"plc": device}, "alarms": [{"id": "a", **alarm}]}
        )
    )


def feed(e: ComputeEngine, samples: list[tuple[float, dict[str, Any]]]) -> list[Record]:
    records: list[Record] = []
    for t, values in samples:
        records += e.ingest(SampleBatch("plc", int(t * S), values, {}))
    return [r for r in records if r.kind == "alarm"]


def xs(*values: float) -> list[tuple[float, dict[str, Any]]]:
    return [(float(t), {"x": v}) for t, v in enumerate(values)]


CASES: list[
    tuple[str, dict[str, Any], list[tuple[float, dict[str, Any]]], str, dict[str, Any], str]
] = [
    (
        "high_high limit",
        {"type": "limit", "tag": "plc.x", "high": 80, "high_high": 90},
        xs(50, 95),
        "limit",
        {"level": "high_high", "limit": 90.0},
        "high_high limit 90",
    ),
    (
        "low limit",
        {"type": "limit", "tag": "plc.x", "low": 10.5},
        xs(50, 5),
        "limit",
        {"level": "low", "limit": 10.5},
        "low limit 10.5",
    ),
    (
        "zone D of group 2 rigid",
        {"type": "vibration_zone", "tag": "plc.x", "machine_group": 2, "foundation": "rigid"},
        xs(1.0, 5.0),
        "zone",
        {"zone": "D", "c_from": 2.8, "d_from": 4.5},
        "zone D (C from 2.8, D from 4.5 mm/s)",
    ),
    (
        "EWMA still learning",
        {"type": "ewma", "tag": "plc.x", "baseline_samples": 10},
        xs(1.0, 2.0),
        "learning",
        {},
        "learning the baseline",
    ),
    (
        # z = 0.2 x 20 + 0.8 x 10 = 12; limits 10 -/+ 3 x 1 x sqrt(0.2 / 1.8 x (1 - 0.8^2)) = 0.6
        "EWMA above its limits",
        {"type": "ewma", "tag": "plc.x", "mean": 10, "sigma": 1},
        xs(20),
        "ewma",
        {"z": 12.0, "low": 9.4, "high": 10.6},
        "EWMA 12 outside 9.4..10.6",
    ),
    (
        # C+ = 20 - (10 + 0.5) = 9.5 > h = 5
        "CUSUM above h",
        {"type": "cusum", "tag": "plc.x", "mean": 10, "sigma": 1},
        xs(20),
        "cusum",
        {"upper": 9.5, "lower": 0.0, "h": 5.0},
        "CUSUM C+ 9.5, C- 0, h 5",
    ),
    (
        "rate of 2 per second",
        {"type": "rate", "tag": "plc.x", "window_s": 10, "max_rate": 1},
        xs(*[2.0 * t for t in range(11)]),
        "rate",
        {"slope": 2.0, "limit": 1.0},
        "2/s against 1/s",
    ),
    (
        # 0.01 per second; at 10 s the line is at 0.1: (36.1 - 0.1) / 0.01 = 3600 s to the limit
        "trend an hour from its limit",
        {"type": "trend", "tag": "plc.x", "window_s": 10, "limit": 36.1, "warn_before_s": 7200},
        xs(*[0.01 * t for t in range(11)]),
        "trend",
        {"hours": 1.0, "limit": 36.1},
        "1.0 h to 36.1",
    ),
    (
        # 9 s running is 0.0025 h
        "run hours",
        {"type": "run_hours", "running": "plc.running", "interval_h": 0.002},
        [(0.0, {"running": True}), (9.0, {"running": True})],
        "run_hours",
        {"hours": 0.0025, "interval": 0.002},
        "0.0 of 0.002 running hours",
    ),
    (
        "cycles from a counter",
        {"type": "cycles", "tag": "plc.count", "interval": 3},
        [(0.0, {"count": 100}), (1.0, {"count": 105})],
        "cycles",
        {"cycles": 5, "interval": 3},
        "5 of 3 cycles",
    ),
]


@pytest.mark.parametrize(
    ("alarm", "samples", "key", "args", "english"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_every_detail_has_a_key_and_args(
    alarm: dict[str, Any],
    samples: list[tuple[float, dict[str, Any]]],
    key: str,
    args: dict[str, Any],
    english: str,
) -> None:
    e = engine(alarm)
    records = feed(e, samples)
    [state] = e.alarms.states()
    assert (state["detail_key"], state["detail_args"], state["detail"]) == (key, args, english)
    # The last record may be older than the last sample (nothing people see changed since).
    body = records[-1].body
    assert (body["detail_key"], set(body["detail_args"])) == (key, set(args))
    assert DETAILS[body["detail_key"]].format(**body["detail_args"]) == body["detail"]


def test_args_are_rounded_numbers_not_text() -> None:
    """mean 0, sigma 1/3: z = 0.2 x 1 = 0.2; limits -/+ 3 x (1/3) x 0.6 x ... = 0.2 exactly,
    so with 1.0000001 z is just above: the args keep four significant digits."""
    e = engine({"type": "ewma", "tag": "plc.x", "mean": 0, "sigma": 1 / 3})
    feed(e, xs(1.0000001))
    [state] = e.alarms.states()
    args = state["detail_args"]
    assert all(isinstance(v, float) for v in args.values())
    assert args == {"z": 0.2, "low": -0.2, "high": 0.2}
    assert state["detail"] == "EWMA 0.2 outside -0.2..0.2"


def test_states_say_what_the_page_needs() -> None:
    e = engine(
        {
            "type": "limit",
            "tag": "plc.x",
            "high": 80,
            "on_delay_s": 2,
            "display_name": "主轴温度",
            "message": "Spindle hot",
        }
    )
    feed(e, [(0.0, {"x": 50.0}), (10.0, {"x": 90.0}), (12.0, {"x": 90.0})])
    [state] = e.alarms.states()
    assert state["type"] == "limit" and state["message"] == "Spindle hot"
    assert state["display_name"] == "主轴温度"
    assert state["state"] == "unack_active"
    assert state["activated"] == iso_utc(12 * S) and state["since"] == iso_utc(12 * S)
    assert state["shelved_until"] is None and state["out_of_service_until"] is None
    assert state["reason"] is None
    e.command({"command": "ack", "id": "a"}, 13 * S)
    e.command({"command": "shelve", "id": "a", "duration_s": 60, "reason": "WO-12"}, 14 * S)
    [state] = e.alarms.states()
    assert (state["state"], state["since"], state["activated"]) == (
        "shelved",
        iso_utc(14 * S),
        iso_utc(12 * S),  # still when it became active, not when it was hidden
    )
    assert (state["shelved_until"], state["reason"]) == (iso_utc(74 * S), "WO-12")
    e.command({"command": "unshelve", "id": "a"}, 15 * S)
    e.command(
        {"command": "out_of_service", "id": "a", "duration_s": 3600, "reason": "WO-13"}, 16 * S
    )
    [state] = e.alarms.states()
    assert (state["out_of_service_until"], state["reason"]) == (iso_utc(3616 * S), "WO-13")


def test_an_alarm_without_display_name_or_message_shows_its_id() -> None:
    e = engine({"type": "limit", "tag": "plc.x", "high": 80})
    [state] = e.alarms.states()
    assert (state["display_name"], state["message"], state["activated"], state["since"]) == (
        "a",
        None,
        None,
        None,
    )


def test_system_alarms_carry_their_key_and_args() -> None:
    e = engine({"type": "limit", "tag": "plc.x", "high": 80})
    args = {"what": "trusted", "date": "2031-05-04"}
    [raised] = e.alarms.system(
        "certificate_ab12",
        5 * S,
        active=True,
        detail="trusted server certificate ab12.der expires on 2031-05-04: renew or replace it",
        detail_key="certificate_expiry",
        detail_args=args,
    )
    assert (raised.body["detail_key"], raised.body["detail_args"]) == ("certificate_expiry", args)
    [cleared] = e.alarms.system(
        "certificate_ab12", 6 * S, active=False, detail="renewed", detail_key="certificate_renewed"
    )
    assert (cleared.body["detail_key"], cleared.body["detail_args"]) == ("certificate_renewed", {})
    state = next(s for s in e.alarms.states() if s["id"] == "certificate_ab12")
    assert (state["type"], state["state"], state["detail_key"]) == (
        "system",
        "unack_rtn",
        "certificate_renewed",
    )
    assert state["activated"] == iso_utc(5 * S) and state["since"] == iso_utc(6 * S)
    json.dumps(raised.body, allow_nan=False)  # plain JSON, as MQTT and the history take it


def test_details_survive_a_restart() -> None:
    config = {"type": "limit", "tag": "plc.x", "high": 80}
    before = engine(config)
    feed(before, xs(50, 95))
    after = engine(config)
    after.restore(json.loads(json.dumps(before.to_state())))
    assert after.alarms.states() == before.alarms.states()
    assert after.alarms.states()[0]["detail_args"] == {"level": "high", "limit": 80.0}
