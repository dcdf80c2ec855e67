"""The demo's first hour raises only the alarms it is there to show.

`make demo` starts three simulated presses; press1's bearing wears fast so that its vibration
alarms (ISO zone and trend to the failure limit) come within minutes. Every other alarm must stay
quiet meanwhile: the motor current's EWMA once learnt its baseline on a current that followed the
wear and stayed active from the fourth minute on, and the spindle's limit followed the wear's heat.

Each press is read once a second, as the demo polls them, through configs/demo.yaml and the compute
engine; the sensor noise is drawn afresh for each case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.sim.press import PressModel
from drivers.sim.readings import press_reader
from edge_agent.compute.detectors import EwmaDetector
from edge_agent.compute.engine import ComputeEngine
from edge_agent.config import load_config
from edge_agent.config_models import AgentFile
from edge_agent.samples import SampleBatch

DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
START_S = 1_795_000_000.0
INTENDED = {"press1_vibration_zone", "press1_bearing_trend"}
# As the demo starts them (edge_agent/cli/running.py): seed and bearing wear in mm/s per running hour.
PRESSES = {"press1": (1, 6.0), "press2": (2, 0.0), "press3": (3, 0.0)}


@pytest.mark.parametrize("noise_seed", [0, 1, 2])
def test_only_the_bearing_alarms_become_active_in_the_first_hour(
    monkeypatch: pytest.MonkeyPatch, noise_seed: int
) -> None:
    for name in ("MQTT_HOST", "INFLUX_URL"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(DEMO)
    engine = ComputeEngine(config)
    presses = {
        name: PressModel(seed=seed, wear_per_hour=wear, start_s=START_S)
        for name, (seed, wear) in PRESSES.items()
    }
    readers = {name: press_reader(name, config.devices[name]) for name in presses}
    for press in presses.values():
        press.noise.seed(f"{noise_seed} {press.seed}")
    activated: set[str] = set()
    for step in range(1, 3601):
        now = START_S + step
        for name, press in presses.items():
            press.advance(now)
            batch = SampleBatch(name, int(now * 1e9), readers[name](press), {})
            activated |= {
                r.key for r in engine.ingest(batch) if r.kind == "alarm" and r.body["active"]
            }
    assert presses["press1"].fault_code != 5, "the bearing failed within the hour"
    assert activated == INTENDED
    drift = engine.alarms.alarms["press1_motor_current_drift"]
    assert isinstance(drift.detector, EwmaDetector) and drift.detector.mean is not None
    assert drift.detector.mean == pytest.approx(18.5, abs=0.1)  # learnt on a steady current
    assert drift.detail_key == "ewma"  # judging, not still learning


def test_a_chance_excursion_before_a_stop_does_not_ripen_during_the_stop() -> None:
    """`when: plc.running`, high 80, on_delay 60 s. 90 for one sample at 10 s, then the machine
    stops for 5 minutes: the on-delay must not run out while nothing is judged. Running again
    with 50, nothing; with 90 held from 400 s, active at 460 s."""
    tags = {
        "x": {"table": "input", "address": 0, "type": "float32"},
        "running": {"table": "coil", "address": 0, "type": "bool"},
    }
    alarm = {"id": "hot", "type": "limit", "tag": "plc.x", "high": 80, "on_delay_s": 60}
    engine = ComputeEngine(
        AgentFile.model_validate(
            {
                "agent": {"id": "t"},
                "devices": {"plc": {"driver": "modbus", "host": "h", "tags": tags}},
                "alarms": [{**alarm, "when": "plc.running"}],
            }
        )
    )
    samples = [(t, 90.0 if t == 10 or t >= 400 else 50.0, not 11 <= t < 311) for t in range(470)]
    active: list[int] = []
    for t, x, running in samples:
        batch = SampleBatch("plc", t * 1_000_000_000, {"x": x, "running": running}, {})
        records = engine.ingest(batch)
        active += [t for r in records if r.kind == "alarm" and r.body["state"] == "unack_active"]
    assert active == [460]
