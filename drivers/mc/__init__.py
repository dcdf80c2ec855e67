"""Mitsubishi MELSEC PLCs over the MC protocol (SLMP), 3E binary frame on TCP: read-only."""

from __future__ import annotations

__all__ = ["PLUGIN", "McDeviceConfig", "McTagConfig"]

from collections.abc import Awaitable, Callable
from typing import Any

from drivers.base import Driver
from drivers.mc.config import McDeviceConfig, McTagConfig
from drivers.plugin import DriverPlugin, SimulatedPress


def _create(name: str, config: Any, **_context: Any) -> Driver:
    from drivers.mc.driver import McDriver

    return McDriver(name, config)


_PRESS_MAP = """\
Mitsubishi press (--mc-port P; MC protocol 3E binary, Q series addressing):
  M0 running, X0 door_closed, D0 fault_code, D2-D3 total_count (uint32, low word first),
  D4-D5 good_count, D6 stroke_counter16, D10-D11 spindle_temp_c (float32),
  D12-D13 vibration_mm_s (float32), D14 motor current (0.1 A)
"""


async def _serve_press(
    press: Any, host: str, port: int
) -> tuple[Callable[[], Awaitable[None]], str]:
    from drivers.mc.sim import serve_press

    mc = await serve_press(press, host, port)
    return mc.stop, f"MC protocol {host}:{port}"


PLUGIN = DriverPlugin(
    name="mc",
    title="Mitsubishi MC protocol",
    device_config=McDeviceConfig,
    reference=(("devices.<name>.tags.<name> (mc)", McTagConfig),),
    create=_create,
    tag_type=lambda tag: tag.value_type,
    simulator=SimulatedPress("the Mitsubishi MC protocol", _PRESS_MAP, _serve_press),
)
