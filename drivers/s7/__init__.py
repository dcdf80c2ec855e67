"""Siemens S7 driver (S7comm over ISO-on-TCP, port 102), read-only.

address.py  DB1.DBW2, MW20, I0.0 … and the types they hold → where the bytes are
config.py   S7DeviceConfig, S7TagConfig (driver: s7)
plan.py     tags → merged ranges → items and requests within the negotiated PDU
wire.py     the "read variable" job and its answer, item by item
codec.py    bytes ↔ values
driver.py   S7Driver, on python-snap7's asyncio client
sim.py      the simulated press on python-snap7's S7 server

Importing this package loads neither python-snap7 nor the driver: the configuration models
are needed where no PLC is read (validate, schema, docs).
"""

from __future__ import annotations

__all__ = ["PLUGIN", "S7DeviceConfig", "S7TagConfig"]

from collections.abc import Awaitable, Callable
from typing import Any

from drivers.base import Driver
from drivers.plugin import DriverPlugin, SimulatedPress
from drivers.s7.config import S7DeviceConfig, S7TagConfig


def _create(name: str, config: Any, **_context: Any) -> Driver:
    from drivers.s7.driver import S7Driver

    return S7Driver(name, config)


_PRESS_MAP = """\
Siemens S7 press (--s7-port P; rack 0, slot 1; README "S7" has its tags: block):
  DB1.DBX0.0 running, DB1.DBX0.1 door_closed, DB1.DBW2 fault_code (INT),
  DB1.DBD4 total_count (DINT), DB1.DBD8 good_count (DINT), DB1.DBD12 spindle_temp_c (REAL),
  DB1.DBD16 vibration_mm_s (REAL), DB1.DBW20 motor current (0.1 A), DB1.DBB22 fault text
  (STRING[32]), I0.1 door switch, Q0.0 drive on
"""


async def _serve_press(
    press: Any, host: str, port: int
) -> tuple[Callable[[], Awaitable[None]], str]:
    from drivers.s7.sim import serve_press

    s7 = await serve_press(press, host, port)
    return s7.stop, f"S7 {host}:{s7.port} (rack 0, slot 1)"


PLUGIN = DriverPlugin(
    name="s7",
    title="Siemens S7",
    device_config=S7DeviceConfig,
    reference=(("devices.<name>.tags.<name> (s7)", S7TagConfig),),
    create=_create,
    tag_type=lambda tag: tag.location.type,
    simulator=SimulatedPress("Siemens S7", _PRESS_MAP, _serve_press),
)
