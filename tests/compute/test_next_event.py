"""When time alone next makes something happen: what the agent's compute timer sleeps until."""

from __future__ import annotations

from pathlib import Path

from edge_agent.compute.engine import ComputeEngine
from edge_agent.samples import SampleBatch
from tests.unit.test_stop_reasons import DAY, MIN, S, config

HOUR = 60 * MIN


def batch(t_ns: int, run: bool = True) -> SampleBatch:
    return SampleBatch("plc", t_ns, {"run": run, "fault": 0, "total": 0, "good": 0}, {})


def test_the_next_event_is_the_running_figure_or_the_hour_end(tmp_path: Path) -> None:
    engine = ComputeEngine(config(tmp_path))
    assert engine.next_event_ns() is None  # nothing seen yet: nothing to wake for
    engine.ingest(batch(DAY + 10 * MIN + 5 * S))
    # The running figure is due every oee_interval_s (60 s) on whole intervals.
    assert engine.next_event_ns() == DAY + 11 * MIN
    engine.advance(DAY + 59 * MIN + 30 * S)
    assert engine.next_event_ns() == DAY + HOUR  # the hour ends


def test_a_window_held_open_by_a_sample_at_its_end_is_due_at_once(tmp_path: Path) -> None:
    engine = ComputeEngine(config(tmp_path))
    engine.ingest(batch(DAY + 30 * MIN))
    records = engine.ingest(batch(DAY + HOUR))  # stamped exactly at the hour's end
    assert not [r for r in records if r.kind == "oee" and r.body["final"]]
    assert engine.next_event_ns() == DAY + HOUR + 1
    closed = [r for r in engine.advance(DAY + HOUR + 1) if r.kind == "oee" and r.body["final"]]
    assert [r.body["window"] for r in closed] == ["hour"]
    assert engine.next_event_ns() > DAY + HOUR + 1


def test_a_stop_across_a_window_end_is_due_when_it_counts_as_a_stop(tmp_path: Path) -> None:
    engine = ComputeEngine(config(tmp_path))
    engine.ingest(batch(DAY + 30 * MIN))
    engine.ingest(batch(DAY + 59 * MIN + 50 * S, run=False))  # idle 10 s before the hour ends
    engine.advance(DAY + HOUR + 5 * S)
    # Micro-stop or stop is known 60 s (micro_stop_s) after the stop began.
    assert engine.next_event_ns() == DAY + 59 * MIN + 50 * S + 60 * S
