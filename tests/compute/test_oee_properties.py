"""Properties of the OEE engine over generated shifts of samples (hypothesis)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.config_models import AgentFile
from edge_agent.replay import replay
from edge_agent.samples import Quality, SampleBatch

S = 1_000_000_000
DAY0 = 1_772_431_200 * S  # 2026-03-02T06:00:00+01:00, a shift start
STEP_S = 300

CONFIG = {
    "agent": {"id": "p"},
    "devices": {
        "plc": {
            "driver": "modbus",
            "host": "h",
            "tags": {
                "running": {"table": "coil", "address": 0, "type": "bool"},
                "fault": {"address": 0},
                "total": {"address": 1},
                "reject": {"address": 2},
            },
        }
    },
    "calendars": {
        "main": {
            "timezone": "Europe/Berlin",
            "shifts": [
                {"name": "early", "start": "06:00", "end": "14:00"},
                {
                    "name": "late",
                    "start": "14:00",
                    "end": "22:00",
                    "breaks": [{"start": "18:00", "end": "18:30"}],
                },
            ],
        }
    },
    "machines": {
        "m": {
            "calendar": "main",
            "ideal_cycle_time_s": 2.0,
            "micro_stop_s": 400,
            "oee_interval_s": 900,
            "startup_s": 600,
            "state": {"running": "plc.running", "fault": "plc.fault != 0", "reason": "plc.fault"},
            "counters": {"total": "plc.total", "reject": "plc.reject", "modulus": 65536},
            "reasons": {"1": "Die jam", "2": {"text": "Changeover", "category": "setup"}},
        }
    },
    "alarms": [
        {
            "id": "jam",
            "type": "limit",
            "tag": "plc.fault",
            "high": 0.5,
            "on_delay_s": 400,
            "off_delay_s": 200,
        },
        {"id": "scrap", "type": "ewma", "tag": "plc.reject", "baseline_samples": 10},
        {
            "id": "output",
            "type": "trend",
            "tag": "plc.total",
            "limit": 65000,
            "window_s": 1800,
            "warn_before_s": 3600,
        },
        {"id": "service", "type": "run_hours", "running": "plc.running", "interval_h": 2},
        {"id": "strokes", "type": "cycles", "tag": "plc.total", "interval": 500, "modulus": 65536},
    ],
    "alarm_flood": {"max_activations": 1, "window_s": 1800},
}

# One step of STEP_S seconds: (state, share of the ideal rate, rejected share, link ok)
steps = st.lists(
    st.tuples(
        st.sampled_from(["run", "run", "run", "idle", "jam", "setup"]),
        st.floats(0.0, 1.0),
        st.floats(0.0, 0.3),
        st.booleans().map(lambda b: b or False) | st.just(True),
    ),
    min_size=20,
    max_size=200,
)


def generate(plan: list[tuple[str, float, float, bool]]) -> list[SampleBatch]:
    """A sample every STEP_S seconds. Parts are counted only for running steps outside the break,
    at most one per ideal cycle, so the true performance is at most 1."""
    batches, total, reject = [], 60000, 0
    break_start, break_end = DAY0 + (12 * 3600) * S, DAY0 + (12 * 3600 + 1800) * S
    for i, (state, rate, rejected, link_ok) in enumerate(plan):
        t = DAY0 + i * STEP_S * S
        values: dict[str, Any] = {
            "running": state == "run",
            "fault": {"jam": 1, "setup": 2}.get(state, 0),
            "total": total % 65536,
            "reject": reject,
        }
        quality = {} if link_ok else {"running": Quality.BAD}
        if not link_ok:
            values["running"] = None
        batches.append(SampleBatch("plc", t, values, quality))
        in_break = break_start <= t < break_end or break_start < t + STEP_S * S <= break_end
        if state == "run" and link_ok and not in_break:
            made = int(STEP_S / 2.0 * rate)
            total += made
            reject += int(made * rejected)
    return batches


def run(
    batches: list[SampleBatch], until_ns: int, state_file: Path | None = None
) -> list[dict[str, Any]]:
    out = io.StringIO()
    replay(AgentFile.model_validate(CONFIG), batches, out, until_ns=until_ns, state_file=state_file)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def alarming(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] in ("alarm", "condition", "alarm_flood")]


def closed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "oee" and r["final"]]


@settings(max_examples=40, deadline=None)
@given(steps)
def test_ratios_stay_within_0_and_1_when_the_ideal_cycle_is_right(
    plan: list[tuple[str, float, float, bool]],
) -> None:
    batches = generate(plan)
    records = run(batches, batches[-1].ts_ns + STEP_S * S)
    for r in closed(records):
        assert r["availability"] is None or 0.0 <= r["availability"] <= 1.0
        assert r["quality"] is None or 0.0 <= r["quality"] <= 1.0
        assert r["oee"] is None or 0.0 <= r["oee"] <= 1.0
        assert r["planned_busy_time_s"] >= 0
        parts = r["run_time_s"] + r["down_time_s"] + r["idle_time_s"] + r["unknown_time_s"]
        assert abs(parts - r["planned_busy_time_s"]) < 1e-6  # every busy second is classified once
        if r["window"] == "shift":
            # Counts reach a shift with the sample after they were made, never outside it here.
            assert r["performance"] is None or 0.0 <= r["performance"] <= 1.0 + 1e-9


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps, st.floats(0.0, 1.0))
def test_restart_at_any_instant_gives_the_same_closed_windows(
    tmp_path: Path, plan: list[tuple[str, float, float, bool]], where: float
) -> None:
    batches = generate(plan)
    end = batches[-1].ts_ns + STEP_S * S
    split = DAY0 + int((end - DAY0) * where) // S * S
    whole_records = run(batches, end)
    state = tmp_path / f"state-{split}.json"
    state.unlink(missing_ok=True)
    first = run([b for b in batches if b.ts_ns <= split], split, state)
    second = run([b for b in batches if b.ts_ns > split], end, state)
    assert closed(first) + closed(second) == closed(whole_records)
    # Alarms, their conditions and floods continue as if there had been no restart.
    assert alarming(first) + alarming(second) == alarming(whole_records)
