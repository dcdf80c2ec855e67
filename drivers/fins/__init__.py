"""Omron PLCs over FINS/UDP and FINS/TCP (read-only): configuration, driver and simulator."""

from __future__ import annotations

__all__ = ["PLUGIN", "FinsDeviceConfig", "FinsTagConfig"]

from collections.abc import Awaitable, Callable
from typing import Any

from drivers.base import Driver
from drivers.fins.config import FinsDeviceConfig, FinsTagConfig
from drivers.plugin import DriverPlugin, SimulatedPress


def _create(name: str, config: Any, **_context: Any) -> Driver:
    from drivers.fins.driver import FinsDriver

    return FinsDriver(name, config)


_PRESS_MAP = """\
Omron press (--fins-port P; FINS over UDP and TCP, node of the PLC: 0 = any):
  CIO0.00 running, CIO0.01 door_closed, D0 fault_code, D2-D3 total_count (UDINT, low word
  first), D4-D5 good_count, D6 stroke_counter16, D10-D11 spindle_temp_c (REAL),
  D12-D13 vibration_mm_s (REAL), D14 motor current (0.1 A), C0 stroke counter (BCD)
"""


async def _serve_press(
    press: Any, host: str, port: int
) -> tuple[Callable[[], Awaitable[None]], str]:
    from drivers.fins.sim import serve_press

    fins = await serve_press(press, host, port)
    return fins.stop, f"FINS UDP and TCP {host}:{port}"


PLUGIN = DriverPlugin(
    name="fins",
    title="Omron FINS",
    device_config=FinsDeviceConfig,
    reference=(("devices.<name>.tags.<name> (fins)", FinsTagConfig),),
    create=_create,
    tag_type=lambda tag: tag.type,
    simulator=SimulatedPress("Omron FINS", _PRESS_MAP, _serve_press),
)
