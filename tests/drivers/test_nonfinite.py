"""Regression: NaN and ±infinity from a device are bad values, polled or subscribed.

Before the fix an OPC UA Double NaN went out as `{"temp": NaN}` with quality good (not even
valid JSON). The OPC UA server is the simulated press (asyncua, in process), the values written
into its nodes; Modbus (which already did this) is pinned with our simulator's register image.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

from asyncua import ua

from drivers.base import Driver
from drivers.modbus.config import ModbusDeviceConfig
from drivers.modbus.driver import ModbusDriver
from drivers.opcua.config import OpcUaDeviceConfig
from drivers.opcua.driver import OpcUaDriver
from drivers.sim.image import RegisterImage
from drivers.sim.opcua_press import NAMESPACE, OpcUaPress, serve_opcua_press
from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.metrics import Metrics
from edge_agent.polling import DevicePoller
from edge_agent.samples import Quality, SampleBatch
from tests.support.servers import free_port

NSU = f"nsu={NAMESPACE};"
NON_FINITE = (math.nan, math.inf, -math.inf)


def device(url: str, mode: str, tags: dict[str, Any]) -> OpcUaDeviceConfig:
    return OpcUaDeviceConfig.model_validate(
        {
            "driver": "opcua",
            "url": url,
            "security": "none",
            "mode": mode,
            "timeout_s": 2,
            "publishing_interval_ms": 50,
            "sampling_interval_ms": 50,
            "tags": tags,
        }
    )


async def add_node(sim: OpcUaPress, name: str, value: Any, kind: ua.VariantType) -> None:
    idx = await sim.server.get_namespace_index(NAMESPACE)
    press = await sim.server.nodes.objects.get_child([f"{idx}:Press"])
    sim.nodes[name] = await press.add_variable(
        ua.NodeId(f"Press.{name}", idx), f"{idx}:{name}", ua.Variant(value, kind)
    )


def poller(driver: Driver, batches: list[SampleBatch]) -> DevicePoller:
    return DevicePoller(
        "press",
        driver,
        timeout_s=5,
        backoff_max_s=1,
        on_batch=batches.append,
        on_record=lambda _record: None,
        metrics=Metrics(),
    )


async def test_polled_nan_and_infinity_are_bad(tmp_path: Path) -> None:
    sim = await serve_opcua_press(port=free_port())
    await add_node(sim, "Nan", math.nan, ua.VariantType.Double)
    await add_node(sim, "PlusInf", math.inf, ua.VariantType.Double)
    await add_node(sim, "MinusInf", -math.inf, ua.VariantType.Float)
    await add_node(sim, "Huge", 1e308, ua.VariantType.Double)  # finite, but not once scaled
    await add_node(sim, "Array", [1.0, math.nan], ua.VariantType.Double)
    tags = {
        "nan": {"node": f"{NSU}s=Press.Nan"},
        "plus_inf": {"node": f"{NSU}s=Press.PlusInf"},
        "minus_inf": {"node": f"{NSU}s=Press.MinusInf"},
        "huge_scaled": {"node": f"{NSU}s=Press.Huge", "scale": 10},
        "array": {"node": f"{NSU}s=Press.Array"},
        "temp": {"node": f"{NSU}s=Press.Temperature"},
    }
    driver = OpcUaDriver("press", device(sim.url, "poll", tags), agent_id="t", pki=tmp_path)
    batches: list[SampleBatch] = []
    try:
        reading = await driver.read()
        await poller(driver, batches).poll()
    finally:
        await driver.close()
        await sim.stop()
    [batch] = batches
    bad = ("nan", "plus_inf", "minus_inf", "huge_scaled", "array")
    assert batch.values == {**dict.fromkeys(bad), "temp": 71.25}
    assert batch.quality == dict.fromkeys(bad, Quality.BAD)
    # The driver says why, like a bad status code; the poller turns that into None and bad.
    assert reading.failed == {
        "nan": "Double is nan",
        "plus_inf": "Double is inf",
        "minus_inf": "Float is -inf",
        "huge_scaled": "Double is inf once scaled",
    }
    assert reading.values == {"array": None, "temp": 71.25}
    assert reading.quality == {"array": Quality.BAD}


async def test_subscribed_nan_and_infinity_are_bad(tmp_path: Path) -> None:
    sim = await serve_opcua_press(port=free_port())
    tags = {"temp": {"node": f"{NSU}s=Press.Temperature"}}
    driver = OpcUaDriver("press", device(sim.url, "subscribe", tags), agent_id="t", pki=tmp_path)
    changes: list[tuple[Any, Quality | None]] = []
    driver.listener = lambda c: changes.append((c.values["temp"], c.quality.get("temp")))
    node = sim.nodes["Temperature"]

    async def change_to(value: float) -> tuple[Any, Quality | None]:
        seen = len(changes)
        await node.write_value(ua.Variant(value, ua.VariantType.Double))
        for _ in range(100):
            if len(changes) > seen:
                return changes[-1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no data change reported after writing {value}")

    try:
        assert (await driver.read()).values == {"temp": 71.25}  # connects and subscribes
        await asyncio.sleep(0.3)  # the subscription's first report of 71.25
        results = [await change_to(v) for v in (*NON_FINITE, 20.5)]
    finally:
        await driver.close()
        await sim.stop()
    assert results == [(None, Quality.BAD)] * 3 + [(20.5, None)]


async def test_modbus_nan_and_infinity_are_bad() -> None:
    """IEEE 754 words as a PLC holds them (big-endian, first register first)."""
    words = {
        "f32_nan": (0, [0x7FC0, 0x0000], "float32"),
        "f32_plus_inf": (2, [0x7F80, 0x0000], "float32"),
        "f32_minus_inf": (4, [0xFF80, 0x0000], "float32"),
        "f64_nan": (6, [0x7FF8, 0, 0, 0], "float64"),
        "f32_ok": (10, [0x4060, 0x0000], "float32"),  # 3.5
    }
    image = RegisterImage(size=32)
    for address, registers, _ in words.values():
        image.set_words("holding", address, registers)
    image.set_words("holding", 12, [0x7F7F, 0xFFFF])  # float32 max: infinite once scaled
    tags: dict[str, Any] = {
        name: {"table": "holding", "address": address, "type": kind}
        for name, (address, _, kind) in words.items()
    }
    tags["huge_scaled"] = {"table": "holding", "address": 12, "type": "float32", "scale": 1e300}
    port = free_port()
    server = await serve_tcp([SimulatedDevice(image)], "127.0.0.1", port)
    config = ModbusDeviceConfig.model_validate(
        {"driver": "modbus", "host": "127.0.0.1", "port": port, "timeout_s": 1, "tags": tags}
    )
    driver = ModbusDriver("plc", config)
    batches: list[SampleBatch] = []
    try:
        await poller(driver, batches).poll()
    finally:
        await driver.close()
        await server.shutdown()
    [batch] = batches
    bad = ("f32_nan", "f32_plus_inf", "f32_minus_inf", "f64_nan", "huge_scaled")
    assert batch.values == {**dict.fromkeys(bad), "f32_ok": 3.5}
    assert batch.quality == dict.fromkeys(bad, Quality.BAD)
