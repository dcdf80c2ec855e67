"""Regression: NaN and ±infinity never reach a detector's state, the tag table or a saved state.

Before the fix one NaN made an EWMA's z NaN for good (every later comparison false: the alarm
was blind), and a learning baseline or a rate window took it in the same way; a saved state
holding NaN (written by an older version) was restored as it was.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest

from edge_agent.compute.detectors import Verdict, make_detector
from edge_agent.compute.engine import ComputeEngine
from edge_agent.compute.expression import Expression, ExpressionError
from edge_agent.compute.tags import TagTable
from edge_agent.samples import Quality, SampleBatch, Value
from tests.compute.test_alarms import engine

S = 1_000_000_000
NON_FINITE = (math.nan, math.inf, -math.inf)

# Each detector with a series that makes it alarm once (the same numbers as test_alarms.py).
Series = list[tuple[float, float]]
CASES: dict[str, tuple[dict[str, Any], Series, int]] = {
    "ewma": (
        {"mean": 10, "sigma": 1, "lambda": 0.2, "L": 3},
        [(float(t), 10.0) for t in range(20)] + [(float(t), 12.0) for t in range(20, 30)],
        23,  # active at the 4th shifted sample
    ),
    "ewma_learnt": (
        {"type": "ewma", "baseline_samples": 10},
        [(float(t), 9.0 if t % 2 else 11.0) for t in range(20)]
        + [(float(t), 14.0) for t in range(20, 30)],
        21,
    ),
    "cusum": (
        {"mean": 10, "sigma": 1, "k": 0.5, "h": 5},
        [(float(t), 10.0) for t in range(5)] + [(float(t), 11.0) for t in range(5, 25)],
        15,
    ),
    "rate": (
        {"window_s": 60, "max_rate": 0.5, "direction": "rising"},
        [(float(t), 0.6 * t) for t in range(0, 100, 5)],
        30,
    ),
    "trend": (
        {"window_s": 300, "limit": 8, "warn_before_s": 300, "report_interval_s": 60},
        [(float(t), 2 + 0.01 * t) for t in range(0, 400, 10)],
        310,
    ),
}


def alarm(name: str) -> dict[str, Any]:
    settings, _, _ = CASES[name]
    return {"id": name, "type": name, "tag": "plc.x", **settings}


def with_non_finite(points: Series) -> Series:
    """The series with NaN, +inf and -inf, each with good quality, between its samples."""
    dirty = []
    for i, (t, value) in enumerate(points):
        dirty.append((t, value))
        if i % 3 == 1:
            dirty.append((t + 0.5, NON_FINITE[i % len(NON_FINITE)]))
    return dirty


def run(e: ComputeEngine, points: Series) -> list[tuple[float, str, str]]:
    out = []
    for t, value in points:
        for r in e.ingest(SampleBatch("plc", int(t * S), {"x": value}, {})):
            if r.kind in ("alarm", "condition"):
                out.append((r.ts_ns / S, r.kind, json.dumps(r.body, allow_nan=False)))
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_non_finite_samples_change_no_alarm(name: str) -> None:
    """Through the engine: the alarm and condition records are those of the clean series."""
    _, points, active_s = CASES[name]
    clean = run(engine([alarm(name)]), points)
    assert (float(active_s), "alarm") in [(t, kind) for t, kind, body in clean if "unack" in body]
    e = engine([alarm(name)])
    assert run(e, with_non_finite(points)) == clean
    json.dumps(e.to_state(), allow_nan=False)  # the state the agent saves holds none either


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_detector_ignores_non_finite_input(name: str) -> None:
    """The detector alone (no tag table in front): the same verdicts, the same state."""
    e = engine([alarm(name)])
    config = e.alarms.alarms[name].config
    clean, dirty = make_detector(config), make_detector(config)  # type: ignore[arg-type]
    _, points, _ = CASES[name]
    verdicts: list[tuple[Verdict, Verdict]] = []
    for t, value in with_non_finite(points):
        if math.isfinite(value):
            verdicts.append((clean.update(int(t * S), value), dirty.update(int(t * S), value)))
        else:
            dirty.update(int(t * S), value)
    assert [a for a, _ in verdicts] == [b for _, b in verdicts]
    assert any(v.active for v, _ in verdicts)
    assert dirty.to_state() == clean.to_state()


def test_a_saved_state_holding_nan_is_not_restored(caplog: pytest.LogCaptureFixture) -> None:
    """A state file of an older version: the EWMA's z is NaN (json.loads reads `NaN`)."""
    _, points, active_s = CASES["ewma"]
    before = engine([alarm("ewma"), alarm("cusum")])
    run(before, points[:10])
    saved = before.to_state()
    saved["alarms"]["alarms"]["ewma"]["detector"]["z"] = math.nan
    saved["alarms"]["alarms"]["ewma"]["value"] = math.nan
    saved["alarms"]["alarms"]["ewma"]["statistic"] = math.inf
    cusum_state = saved["alarms"]["alarms"]["cusum"]["detector"]
    old_file = json.loads(json.dumps(saved))
    after = engine([alarm("ewma"), alarm("cusum")])
    with caplog.at_level(logging.WARNING):
        after.restore(old_file)
    ewma = after.alarms.alarms["ewma"]
    fresh = make_detector(ewma.config)  # type: ignore[arg-type]
    assert ewma.detector.to_state() == fresh.to_state()  # discarded: it starts afresh
    assert (ewma.value, ewma.statistic) == (None, None)
    assert after.alarms.alarms["cusum"].detector.to_state() == cusum_state  # the others are kept
    assert any(
        "ewma" in r.getMessage() and "NaN" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )
    json.dumps(after.to_state(), allow_nan=False)
    records = run(after, [(t + 1000, v) for t, v in points])
    assert (active_s + 1000, "alarm") in [(t, k) for t, k, body in records if "unack" in body]


def test_the_tag_table_stores_non_finite_as_bad() -> None:
    table = TagTable()
    values: dict[str, Value] = {"a": math.nan, "b": math.inf, "c": -math.inf, "d": 1.5, "e": None}
    table.ingest(SampleBatch("plc", 0, values, {"c": Quality.UNCERTAIN, "e": Quality.BAD}))
    assert table.values["plc"] == {"a": None, "b": None, "c": None, "d": 1.5, "e": None}
    assert table.quality["plc"] == {
        "a": Quality.BAD,
        "b": Quality.BAD,
        "c": Quality.BAD,
        "d": Quality.GOOD,
        "e": Quality.BAD,
    }
    assert not table.usable("plc.a") and table.usable("plc.d")


@pytest.mark.parametrize(
    "text",
    [
        "plc.a * plc.b",  # overflows to inf
        "plc.a * plc.b - plc.a * plc.b > 0",  # inf - inf: NaN inside a comparison
        "plc.nan",  # a value that did not pass through the tag table
    ],
)
def test_an_expression_with_a_non_finite_result_cannot_be_evaluated(text: str) -> None:
    values = {"plc": {"a": 1e200, "b": 1e200, "nan": math.nan}}
    with pytest.raises(ArithmeticError, match="not a finite number"):
        Expression(text).evaluate(values)
    assert Expression("plc.a / plc.b > 0.5").evaluate(values) is True


def test_an_expression_with_an_infinite_constant_is_refused() -> None:
    with pytest.raises(ExpressionError, match="not a finite number"):
        Expression("plc.x < 1e999")
