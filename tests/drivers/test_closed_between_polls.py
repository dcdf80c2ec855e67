"""A device (or a gateway) that closes an idle connection between two polls, or restarts: the
next poll connects again before it reads, over every TCP driver, instead of failing on the closed
connection and showing a good device as down for a poll (a 通讯中断 that never was).

Each driver reads its protocol's simulated press through a relay that the test cuts (both sides
closed, as a device does on an idle timeout) and opens again before the next poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from drivers import create_driver, plugin
from drivers.sim.press import PressModel
from drivers.sim.server import SimulatedDevice, serve_tcp
from tests.support.fixed_device import fixed_image
from tests.support.servers import free_port
from tests.support.switched_link import SwitchedLink

# One tag each, where the simulated press (or the fixed Modbus image) has it.
DEVICES: dict[str, dict[str, Any]] = {
    "modbus": {"tags": {"w": {"address": 0, "type": "int16"}}},
    "s7": {"tags": {"w": {"address": "DB1.DBW2"}}},
    "mc": {"tags": {"w": {"address": "D0"}}},
    "fins": {"transport": "tcp", "tags": {"w": {"address": "D0"}}},
}


@asynccontextmanager
async def served(driver: str) -> AsyncIterator[int]:
    """The press (for Modbus, the fixed image) on a free port."""
    port = free_port()
    stop: Callable[[], Awaitable[None]]
    if driver == "modbus":
        server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
        stop = server.shutdown
    else:
        simulator = plugin(driver).simulator
        assert simulator is not None
        press = PressModel(seed=1, start_s=time.time())
        stop, _ = await simulator.serve(press, "127.0.0.1", port)
    try:
        yield port
    finally:
        await stop()


@pytest.mark.parametrize("driver", sorted(DEVICES))
async def test_a_connection_closed_between_polls_is_opened_again_first(
    driver: str, tmp_path: Path
) -> None:
    async with served(driver) as port:
        link = SwitchedLink(port)
        await link.start()
        spec = {"driver": driver, "host": "127.0.0.1", "port": link.port, "timeout_s": 1}
        config = plugin(driver).device_config.model_validate({**spec, **DEVICES[driver]})
        device = create_driver("press", config, agent_id="test", pki=tmp_path)
        try:
            first = await device.read()
            assert set(first.values) == {"w"} and not first.failed
            await link.cut()
            await link.restore()
            await asyncio.sleep(0.5)  # the end of the stream arrives before the next poll
            again = await device.read()
            assert set(again.values) == {"w"} and not again.failed
        finally:
            await device.close()
            await link.close()
