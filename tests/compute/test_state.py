"""Machine state from tag rules: pure, driven by batches and explicit times."""

from __future__ import annotations

from edge_agent.compute.engine import ComputeEngine
from edge_agent.config_models import AgentFile
from edge_agent.records import Record
from edge_agent.samples import Quality, SampleBatch

S = 1_000_000_000


def engine() -> ComputeEngine:
    return ComputeEngine(
        AgentFile.model_validate(
            {
                "agent": {"id": "t"},
                "devices": {
                    "plc": {
                        "driver": "modbus",
                        "host": "h",
                        "tags": {
                            "run": {"table": "coil", "address": 0, "type": "bool"},
                            "code": {"address": 1},
                            "speed": {"address": 2, "type": "float32"},
                        },
                    }
                },
                "machines": {
                    "m": {
                        "ideal_cycle_time_s": 1,
                        "state": {
                            "running": "plc.run and plc.speed > 10",
                            "fault": "plc.code != 0",
                            "reason": "plc.code",
                        },
                        "reasons": {1: "Die jam"},
                    }
                },
            }
        )
    )


def states(e: ComputeEngine, b: SampleBatch) -> list[Record]:
    """The state records of one batch (the engine also reports OEE windows)."""
    return [r for r in e.ingest(b) if r.kind == "state"]


def batch(ts_s: float, quality: dict[str, Quality] | None = None, **values: object) -> SampleBatch:
    return SampleBatch("plc", int(ts_s * S), values, quality or {})  # type: ignore[arg-type]


def test_running_idle_down_with_reasons_and_periods() -> None:
    e = engine()
    [r] = states(e, batch(0, run=True, code=0, speed=20.0))
    assert (r.kind, r.key, r.body["state"], r.body["ended"]) == ("state", "m", "running", None)
    assert states(e, batch(1, run=True, code=0, speed=25.0)) == []  # no change, no record
    [r] = states(e, batch(10, run=True, code=0, speed=5.0))
    assert r.body["state"] == "idle"
    assert r.body["ended"] == {
        "state": "running",
        "reason": None,
        "start": "1970-01-01T00:00:00.000Z",
        "end": "1970-01-01T00:00:10.000Z",
        "duration_s": 10.0,
    }
    [r] = states(e, batch(12.5, run=True, code=1, speed=20.0))  # fault wins over running
    assert (r.body["state"], r.body["reason"], r.body["reason_code"]) == ("down", "Die jam", "1")
    assert r.body["ended"]["duration_s"] == 2.5
    [r] = states(e, batch(13, run=False, code=7, speed=0.0))  # another code: a new down period
    assert (r.body["state"], r.body["reason"]) == ("down", "fault 7")


def test_bad_quality_or_missing_data_is_unknown_never_idle() -> None:
    e = engine()
    [r] = states(e, batch(0, run=True, code=0))  # speed never seen
    assert r.body["state"] == "unknown"
    [r] = states(e, batch(1, run=True, code=0, speed=50.0))
    assert r.body["state"] == "running"
    [r] = states(e, batch(2, {"speed": Quality.BAD}, run=True, code=0, speed=None))
    assert r.body["state"] == "unknown"


def test_uncertain_values_are_still_used() -> None:
    e = engine()
    [r] = states(e, batch(0, {"speed": Quality.UNCERTAIN}, run=True, code=0, speed=50.0))
    assert r.body["state"] == "running"


def test_float_fault_code_reads_as_whole_number() -> None:
    e = engine()
    [r] = states(e, batch(0, run=False, code=1.0, speed=0.0))
    assert (r.body["reason"], r.body["reason_code"]) == ("Die jam", "1")


def test_rule_that_cannot_be_evaluated_gives_unknown() -> None:
    e = engine()
    [r] = states(e, batch(0, run=True, code=0, speed="fast"))  # str > int raises TypeError
    assert r.body["state"] == "unknown"
    [r] = states(e, batch(1, run=True, code=0, speed=11.0))
    assert r.body["state"] == "running"


def test_batches_of_other_devices_do_not_touch_the_machine() -> None:
    e = engine()
    assert states(e, SampleBatch("other", 0, {"x": 1}, {})) == []
