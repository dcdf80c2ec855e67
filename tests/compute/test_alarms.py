"""Alarms and condition monitoring through `replay`, transition times derived in each docstring."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_agent.compute.engine import ComputeEngine
from edge_agent.config import load_config
from edge_agent.replay import iter_batches, replay
from edge_agent.samples import SampleBatch

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
S = 1_000_000_000
DEVICE = """agent: {id: t}
devices:
  plc:
    driver: modbus
    host: 127.0.0.1
    tags:
      x: {table: input, address: 0, type: float32}
      running: {table: coil, address: 0, type: bool}
      count: {table: holding, address: 0, type: uint32}
"""


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def series(points: list[tuple[float, float]], tag: str = "x") -> str:
    return "\n".join(f"{at(t)},plc,{tag},{v}" for t, v in points)


def run(tmp_path: Path, alarms: str, csv_rows: str, until_s: float) -> list[dict[str, Any]]:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(DEVICE + "alarms:\n" + alarms)
    samples = tmp_path / "samples.csv"
    samples.write_text("ts,device,tag,value\n" + csv_rows + "\n")
    config = load_config(config_file)
    out = io.StringIO()
    replay(config, iter_batches(samples, config), out, until_ns=int((T0.timestamp() + until_s) * S))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def transitions(records: list[dict[str, Any]], alarm_id: str) -> list[tuple[str, str]]:
    return [(r["ts"], r["state"]) for r in records if r["kind"] == "alarm" and r["id"] == alarm_id]


def test_limit_on_delay_ignores_a_short_excursion(tmp_path: Path) -> None:
    """high 80, on_delay 10 s, off_delay 5 s; a sample every second.
    85 from 10 s to 14 s (5 s): shorter than the on-delay, never active.
    85 from 60 s to 79 s: active at 60 + 10 = 70 s (unack_active).
    70 from 80 s: clear for 5 s at 85 s -> unack_rtn (nobody acknowledged it)."""
    values = [(t, 85.0 if 10 <= t <= 14 or 60 <= t <= 79 else 70.0) for t in range(0, 100)]
    alarms = "  - {id: hot, type: limit, tag: plc.x, high: 80, on_delay_s: 10, off_delay_s: 5}\n"
    records = run(tmp_path, alarms, series(values), 100)
    assert transitions(records, "hot") == [
        (at(0), "normal"),
        (at(70), "unack_active"),
        (at(85), "unack_rtn"),
    ]
    active = next(r for r in records if r["kind"] == "alarm" and r["state"] == "unack_active")
    assert (active["level"], active["value"], active["priority"], active["severity"]) == (
        "high",
        85.0,
        "medium",
        500,
    )


def test_deadband_absorbs_chattering(tmp_path: Path) -> None:
    """high 80, deadband 3: it activates above 80 and clears only below 77.
    81 (active) 79 80 79.5 78 77 (all >= 77: still active) 76.9 (clear) 79 80 (not above 80: normal).
    One activation, one return, instead of four of each without the deadband."""
    values = [81, 79, 80.5, 79.5, 78, 77, 76.9, 79, 80]
    alarms = "  - {id: hot, type: limit, tag: plc.x, high: 80, deadband: 3}\n"
    records = run(tmp_path, alarms, series([(t, v) for t, v in enumerate(values)]), 10)
    assert transitions(records, "hot") == [(at(0), "unack_active"), (at(6), "unack_rtn")]


def test_high_high_and_low_levels(tmp_path: Path) -> None:
    """low 10, high 80, high_high 90: 50 normal, 85 high, 95 high_high (same alarm, new level),
    85 back to high (95 > 90 - 0), 5 low, 50 return."""
    values = [50, 85, 95, 85, 5, 50]
    alarms = "  - {id: lim, type: limit, tag: plc.x, low: 10, high: 80, high_high: 90}\n"
    records = run(tmp_path, alarms, series([(t, v) for t, v in enumerate(values)]), 10)
    levels = [(r["state"], r["level"]) for r in records if r["kind"] == "alarm"]
    assert levels == [
        ("normal", None),
        ("unack_active", "high"),
        ("unack_active", "high_high"),
        ("unack_active", "high"),
        ("unack_active", "low"),
        ("unack_rtn", None),
    ]


def test_ewma_detects_a_two_sigma_shift_on_the_fourth_sample(tmp_path: Path) -> None:
    """μ0 10, σ 1, λ 0.2, L 3. 20 samples at 10 keep z at 10. Then x = 12 (a 2σ shift):
    z_k = 12 − 2·0.8^k: 10.4, 10.72, 10.976, 11.1808 for k = 1..4.
    Upper limit at t = 20 + k: 10 + 3·sqrt(0.2/1.8·(1 − 0.8^(2t))) = 10 + 3·0.33333 = 10.99999.
    z_3 = 10.976 is inside, z_4 = 11.1808 outside: active at the 4th shifted sample (t = 23 s)."""
    values = [(t, 10.0) for t in range(20)] + [(t, 12.0) for t in range(20, 30)]
    alarms = "  - {id: drift, type: ewma, tag: plc.x, mean: 10, sigma: 1, lambda: 0.2, L: 3}\n"
    records = run(tmp_path, alarms, series(values), 30)
    assert transitions(records, "drift")[1] == (at(23), "unack_active")
    active = next(r for r in records if r["kind"] == "alarm" and r["state"] == "unack_active")
    assert active["statistic"] == pytest.approx(11.1808, abs=1e-4)


def test_ewma_learns_its_baseline(tmp_path: Path) -> None:
    """baseline_samples 10 over 9, 11, 9, 11, ...: mean 10, sample stdev sqrt(10/9) = 1.054.
    Then 10 for 10 samples: inside; nothing activates while learning or after."""
    values = [(t, 9.0 if t % 2 == 0 else 11.0) for t in range(10)] + [
        (t, 10.0) for t in range(10, 20)
    ]
    alarms = "  - {id: drift, type: ewma, tag: plc.x, baseline_samples: 10}\n"
    records = run(tmp_path, alarms, series(values), 20)
    assert [s for _, s in transitions(records, "drift")] == ["normal"]


def test_cusum_signals_a_one_sigma_shift_after_eleven_samples(tmp_path: Path) -> None:
    """μ0 10, σ 1, k 0.5, h 5. x = 11 from t = 5: C+ grows by 11 − 10.5 = 0.5 per sample:
    5.0 after 10 samples (not > 5), 5.5 after 11: active at t = 5 + 10 = 15 s."""
    values = [(t, 10.0) for t in range(5)] + [(t, 11.0) for t in range(5, 25)]
    alarms = "  - {id: shift, type: cusum, tag: plc.x, mean: 10, sigma: 1, k: 0.5, h: 5}\n"
    records = run(tmp_path, alarms, series(values), 25)
    assert transitions(records, "shift")[1] == (at(15), "unack_active")


def test_rate_of_change(tmp_path: Path) -> None:
    """x = 0.6·t, a sample every 5 s, window 60 s, max_rate 0.5/s, rising only.
    The slope is 0.6/s exactly; it is judged once the window holds 30 s of data: active at t = 30.
    The same ramp falling would not count (direction rising)."""
    values = [(t, 0.6 * t) for t in range(0, 100, 5)]
    alarms = (
        "  - {id: fast, type: rate, tag: plc.x, window_s: 60, max_rate: 0.5, direction: rising}\n"
        "  - {id: fall, type: rate, tag: plc.x, window_s: 60, max_rate: 0.5, direction: falling}\n"
    )
    records = run(tmp_path, alarms, series(values), 100)
    assert transitions(records, "fast")[:2] == [(at(0), "normal"), (at(30), "unack_active")]
    assert [s for _, s in transitions(records, "fall")] == ["normal"]


def test_trend_reports_time_to_limit_and_warns(tmp_path: Path) -> None:
    """x = 2 + 0.01·t (a sample every 10 s), limit 8, window 300 s, warn_before 300 s.
    The fit is exact (r² = 1): the time left at t is (8 − 2 − 0.01·t) / 0.01 = 600 − t.
    At t = 100: 500 s. It falls below 300 s at t = 310 (at 300 it is exactly 300): active then.
    Nothing is fitted before the window holds half its span (150 s). Condition records come every
    report_interval_s (60 s) from then and when the verdict changes (which restarts the interval):
    150, 210, 270, 310 (active), 370;
    each must say 600 − t."""
    values = [(t, 2 + 0.01 * t) for t in range(0, 400, 10)]
    alarms = (
        "  - {id: wear, type: trend, tag: plc.x, window_s: 300, limit: 8, warn_before_s: 300,"
        " report_interval_s: 60}\n"
    )
    records = run(tmp_path, alarms, series(values), 400)
    assert transitions(records, "wear")[1] == (at(310), "unack_active")
    reports = {r["ts"]: r for r in records if r["kind"] == "condition"}
    assert sorted(reports) == [at(t) for t in (150, 210, 270, 310, 370)]
    for ts, report in reports.items():
        t = (datetime.fromisoformat(ts.replace("Z", "+00:00")) - T0).total_seconds()
        assert report["time_to_limit_s"] == pytest.approx(600 - t, abs=1e-6)
        assert report["slope_per_s"] == pytest.approx(0.01) and report["r2"] == pytest.approx(1.0)
    assert reports[at(310)]["time_to_limit_s"] == pytest.approx(
        290, abs=1e-6
    )  # the verdict changed
    falling = [(t, 8 - 0.01 * t) for t in range(0, 400, 10)]
    records = run(tmp_path, alarms, series(falling), 400)
    assert all(
        "time_to_limit_s" not in r for r in records if r["kind"] == "condition"
    )  # heading away
    # The same fall towards a low limit of 2: (8 − 0.01·t − 2) / 0.01 = 600 − t again.
    low = alarms.replace("limit: 8,", "limit: 2, side: low,")
    records = run(tmp_path, low, series(falling), 400)
    reports = [r for r in records if r["kind"] == "condition"]
    assert len(reports) >= 3
    for report in reports:
        t = (datetime.fromisoformat(report["ts"].replace("Z", "+00:00")) - T0).total_seconds()
        assert report["time_to_limit_s"] == pytest.approx(600 - t, abs=1e-6)


def test_vibration_zones_iso_10816_group_2_rigid(tmp_path: Path) -> None:
    """Group 2 (15-300 kW), rigid: A/B 1.4, B/C 2.8, C/D 4.5 mm/s.
    1.0 A, 2.0 B, 3.0 C (alert, priority low), 5.0 D (alarm, priority high), 2.0 B (returns).
    A condition record at every zone change."""
    values = [1.0, 2.0, 3.0, 5.0, 2.0]
    alarms = (
        "  - {id: vib, type: vibration_zone, tag: plc.x, machine_group: 2, foundation: rigid}\n"
    )
    records = run(tmp_path, alarms, series([(t, v) for t, v in enumerate(values)]), 10)
    zones = [r["zone"] for r in records if r["kind"] == "condition"]
    assert zones == ["A", "B", "C", "D", "B"]
    alarm = [(r["state"], r["level"], r["priority"]) for r in records if r["kind"] == "alarm"]
    assert alarm == [
        ("normal", None, "high"),
        ("unack_active", "C", "low"),
        ("unack_active", "D", "high"),
        ("unack_rtn", None, "high"),
    ]


def test_run_hours_fall_due_between_samples(tmp_path: Path) -> None:
    """interval 0.01 h = 36 s of running; running from 0 s, a sample every 10 s: due at exactly 36 s,
    a time event, not the next sample (40 s)."""
    values = series([(t, 1) for t in range(0, 60, 10)], tag="running")
    alarms = "  - {id: service, type: run_hours, running: plc.running, interval_h: 0.01}\n"
    records = run(tmp_path, alarms, values, 60)
    assert transitions(records, "service")[1] == (at(36), "unack_active")


def test_cycles_from_a_counter_and_from_edges(tmp_path: Path) -> None:
    """Counter 1000 -> 1050 -> 1100: 100 cycles at 2 s, the interval is 100: due then.
    A bool tag counts rising edges: 0 1 0 1 0 1 is three cycles; interval 3: due at the third (5 s)."""
    counter = series([(0, 1000), (1, 1050), (2, 1100)], tag="count")
    edges = series([(t, t % 2) for t in range(6)], tag="running")
    alarms = (
        "  - {id: die, type: cycles, tag: plc.count, interval: 100}\n"
        "  - {id: valve, type: cycles, tag: plc.running, interval: 3}\n"
    )
    records = run(tmp_path, alarms, counter + "\n" + edges, 10)
    assert transitions(records, "die")[-1] == (at(2), "unack_active")
    assert transitions(records, "valve")[-1] == (at(5), "unack_active")


# --------------------------------------------------------------------- states and commands


def engine(alarms: list[dict[str, Any]], flood: dict[str, Any] | None = None) -> ComputeEngine:
    from edge_agent.config_models import AgentFile

    return ComputeEngine(
        AgentFile.model_validate(
            {
                "agent": {"id": "t"},
                "devices": {
                    "plc": {
                        "driver": "modbus",
                        "host": "h",
                        "tags": {
                            "x": {"table": "input", "address": 0, "type": "float32"},
                            "running": {"table": "coil", "address": 0, "type": "bool"},
                        },
                    }
                },
                "alarms": alarms,
                **({"alarm_flood": flood} if flood else {}),
            }
        )
    )


def accepted(e: ComputeEngine, payload: dict[str, Any], t_ns: int) -> list[Any]:
    records, error = e.command(payload, t_ns)
    assert error is None
    return records


def refused(e: ComputeEngine, payload: dict[str, Any], t_ns: int) -> str:
    _, error = e.command(payload, t_ns)
    assert error is not None
    return error


def feed(e: ComputeEngine, t: float, **values: Any) -> list[Any]:
    return [r for r in e.ingest(SampleBatch("plc", int(t * S), values, {})) if r.kind == "alarm"]


def test_isa_18_2_transitions_and_commands() -> None:
    e = engine([{"id": "hot", "type": "limit", "tag": "plc.x", "high": 80}])
    feed(e, 0, x=50.0)
    assert [r.body["state"] for r in feed(e, 1, x=90.0)] == ["unack_active"]
    [ack] = accepted(e, {"command": "ack", "id": "hot", "user": "li.wei"}, 2 * S)
    assert (ack.body["state"], ack.body["event"], ack.body["acked"]) == ("ack_active", "ack", True)
    assert [r.body["state"] for r in feed(e, 3, x=50.0)] == ["normal"]  # acked and cleared
    feed(e, 4, x=90.0)
    assert [r.body["state"] for r in feed(e, 5, x=50.0)] == ["unack_rtn"]
    [ack] = accepted(e, {"command": "ack", "id": "hot"}, 6 * S)
    assert ack.body["state"] == "normal"
    assert re.search("nothing to acknowledge", refused(e, {"command": "ack", "id": "hot"}, 7 * S))
    assert re.search("unknown alarm 'cold'", refused(e, {"command": "ack", "id": "cold"}, 7 * S))
    assert re.search("unknown command", refused(e, {"command": "silence", "id": "hot"}, 7 * S))
    assert re.search("a command is", refused(e, {"cmd": "ack"}, 7 * S))
    assert e.alarms.alarms["hot"].state == "normal"  # the bad commands changed nothing


def test_shelving_expires_back_into_an_unacknowledged_alarm() -> None:
    e = engine([{"id": "hot", "type": "limit", "tag": "plc.x", "high": 80}])
    feed(e, 0, x=50.0)
    [shelved] = accepted(
        e, {"command": "shelve", "id": "hot", "duration_s": 60, "reason": "sensor swap"}, 1 * S
    )
    assert (
        shelved.body["state"] == "shelved"
        and shelved.body["shelved_until"] == "1970-01-01T00:01:01.000Z"
    )
    assert feed(e, 10, x=90.0) == []  # active behind the shelf: nothing announced
    expired = [r for r in e.advance(70 * S) if r.kind == "alarm"]
    assert [(r.ts_ns // S, r.body["state"]) for r in expired] == [(61, "unack_active")]
    assert re.search("duration_s", refused(e, {"command": "shelve", "id": "hot"}, 71 * S))


def test_suppressed_by_design_and_out_of_service() -> None:
    e = engine(
        [
            {
                "id": "hot",
                "type": "limit",
                "tag": "plc.x",
                "high": 80,
                "suppress_when": "plc.running == 0",
            }
        ]
    )
    assert [r.body["state"] for r in feed(e, 0, x=90.0, running=False)] == ["suppressed"]
    assert [r.body["state"] for r in feed(e, 1, x=90.0, running=True)] == ["unack_active"]
    [oos] = accepted(e, {"command": "out_of_service", "id": "hot", "reason": "WO-7"}, 2 * S)
    assert oos.body["state"] == "out_of_service"
    [back] = accepted(e, {"command": "in_service", "id": "hot"}, 3 * S)
    assert back.body["state"] == "unack_active"


def test_reset_of_a_maintenance_counter() -> None:
    e = engine(
        [{"id": "service", "type": "run_hours", "running": "plc.running", "interval_h": 0.001}]
    )
    feed(e, 0, running=True)
    assert [r.body["state"] for r in feed(e, 4, running=True)] == [
        "unack_active"
    ]  # 3.6 s is 0.001 h
    [reset] = accepted(e, {"command": "reset", "id": "service"}, 5 * S)
    assert (reset.body["state"], reset.body["value"]) == ("unack_rtn", 0.0)
    hot = engine([{"id": "hot", "type": "limit", "tag": "plc.x", "high": 1}])
    assert "reset applies to" in refused(hot, {"command": "reset", "id": "hot"}, 0)


def test_a_refused_command_keeps_what_time_did() -> None:
    """Regression: an ack for an unknown id arrived just after an on-delay ran out. The engine
    moved time (activating the alarm), then refused the command and threw the activation away;
    the retained MQTT state stayed 'normal' while the page showed 'unack_active'."""
    e = engine([{"id": "hot", "type": "limit", "tag": "plc.x", "high": 80, "on_delay_s": 10}])
    feed(e, 0, x=90.0)  # over the limit from 0 s: active at 10 s if nothing comes in between
    records, error = e.command({"command": "ack", "id": "nosuch"}, 11 * S)
    assert error is not None and "unknown alarm 'nosuch'" in error
    assert [(r.ts_ns // S, r.body["state"]) for r in records if r.kind == "alarm"] == [
        (10, "unack_active")
    ]
    assert e.alarms.alarms["hot"].state == "unack_active"


def test_flood_is_one_record_not_hundreds() -> None:
    """12 alarms activate within a second with max_activations 10 in 600 s: the 11th activation
    opens a flood; alarm records are held back (only the flood record goes out) until the window
    has emptied, 600 s after the first activation; then a flood end and one record per alarm."""
    alarms = [{"id": f"a{i}", "type": "limit", "tag": "plc.x", "high": float(i)} for i in range(12)]
    e = engine(alarms, {"max_activations": 10, "window_s": 600})
    feed(e, 0, x=-1.0)
    burst = e.ingest(SampleBatch("plc", 1 * S, {"x": 100.0}, {}))
    kinds = [r.kind for r in burst]
    assert kinds.count("alarm_flood") == 1 and kinds.count("alarm") == 0
    assert burst[0].body["phase"] == "begin" and burst[0].body["activations"] == 12
    assert [
        r for r in e.ingest(SampleBatch("plc", 2 * S, {"x": -1.0}, {})) if r.kind == "alarm"
    ] == []
    end = e.advance(700 * S)
    assert [r.kind for r in end][:1] == ["alarm_flood"] and end[0].body["phase"] == "end"
    assert sorted(r.key for r in end if r.kind == "alarm") == sorted(f"a{i}" for i in range(12))
    assert {r.body["state"] for r in end if r.kind == "alarm"} == {"unack_rtn"}


def test_samples_are_judged_only_when_the_operating_rule_holds() -> None:
    """`when: plc.running == 1`: 90 while stopped is not judged; 90 while running activates."""
    e = engine(
        [{"id": "hot", "type": "limit", "tag": "plc.x", "high": 80, "when": "plc.running == 1"}]
    )
    assert [r.body["state"] for r in feed(e, 0, x=90.0, running=False)] == ["normal"]
    assert [r.body["state"] for r in feed(e, 1, x=90.0, running=True)] == ["unack_active"]
