"""The demo's promise, checked in simulated time: the agent warns before the worn bearing fails.

The simulated press1 wears its bearing (6 mm/s per running hour) until it stops on fault 5 at
7.1 mm/s. Fed through the compute engine with configs/demo.yaml, second by second, the trend
and the vibration zone alarms must be active before that fault.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.modbus.codec import decode
from drivers.sim.image import RegisterImage
from drivers.sim.press import PressModel
from edge_agent.compute.engine import ComputeEngine
from edge_agent.config import load_config
from edge_agent.samples import SampleBatch

DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
START_S = 1_795_000_000.0


def test_trend_and_zone_alarms_come_before_the_bearing_fault(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("MQTT_HOST", "INFLUX_URL"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(DEMO)
    engine = ComputeEngine(config)
    tags = config.devices["press1"].tags
    press = PressModel(seed=1, wear_per_hour=6.0, start_s=START_S)
    image = RegisterImage()
    first_active: dict[str, float] = {}
    for step in range(1, 4 * 3600):
        now = START_S + step
        press.advance(now)
        press.write(image)
        if press.fault_code == 5:
            break
        values = {
            name: bool(image.tables[tag.table][tag.address])
            if tag.table in ("coil", "discrete_input")
            else decode(tag, image.tables[tag.table][tag.address : tag.address + tag.size])
            for name, tag in tags.items()
        }
        for record in engine.ingest(SampleBatch("press1", int(now * 1e9), values, {})):
            if record.kind == "alarm" and record.body["active"]:
                first_active.setdefault(record.key, step)
    else:
        pytest.fail("the simulated bearing never failed within 4 hours")
    fault_s = step
    assert first_active["press1_bearing_trend"] < fault_s - 1800  # at least half an hour ahead
    assert first_active["press1_vibration_zone"] < fault_s - 1800
