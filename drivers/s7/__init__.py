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

from typing import Any

from drivers.base import Driver
from drivers.plugin import DriverPlugin
from drivers.s7.config import S7DeviceConfig, S7TagConfig


def _create(name: str, config: Any, **_context: Any) -> Driver:
    from drivers.s7.driver import S7Driver

    return S7Driver(name, config)


PLUGIN = DriverPlugin(
    name="s7",
    title="Siemens S7",
    device_config=S7DeviceConfig,
    reference=(("devices.<name>.tags.<name> (s7)", S7TagConfig),),
    create=_create,
    tag_type=lambda tag: tag.location.type,
)
