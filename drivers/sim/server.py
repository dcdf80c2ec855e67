"""Serve simulated devices over real Modbus sockets (TCP, or RTU on a serial line) with pymodbus.

Each device is a `RegisterImage` plus an optional `refresh(now_s)` hook that a model uses to bring
the image up to date just before a read is answered, so values are as fresh as a real PLC's.
"""

from __future__ import annotations

__all__ = ["SimulatedDevice", "serve_rtu", "serve_tcp"]

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from drivers.sim.image import RegisterImage

# function code -> table of the image
_TABLE_OF = {1: "coil", 5: "coil", 15: "coil", 2: "discrete_input", 4: "input"}
_TABLE_OF.update({fc: "holding" for fc in (3, 6, 16, 22, 23)})
_READS = {1, 2, 3, 4}


@dataclass
class SimulatedDevice:
    """A register image served under one unit id; `refresh` runs before every answer."""

    image: RegisterImage
    unit_id: int = 1
    refresh: Callable[[float], None] | None = None
    reads_served: int = field(default=0, init=False)

    def sim_device(self) -> SimDevice:
        n = self.image.size
        bits = [SimData(0, count=n, values=False, datatype=DataType.BITS)]
        words = [SimData(0, count=n, values=0, datatype=DataType.REGISTERS)]
        return SimDevice(
            self.unit_id, simdata=(bits, list(bits), words, list(words)), action=self._on_request
        )

    async def _on_request(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code not in _READS:
            return ExcCodes.ILLEGAL_FUNCTION  # the simulated machines are read-only, like the agent
        if self.refresh is not None:
            self.refresh(time.time())
        self.reads_served += 1
        table = _TABLE_OF[function_code]
        source = self.image.tables[table]
        if table in ("coil", "discrete_input"):
            packed = SimUtils.bitsToRegisters([bool(b) for b in source])
            registers[: len(packed)] = packed
        else:
            registers[: len(source)] = source
        return None


async def serve_tcp(devices: list[SimulatedDevice], host: str, port: int) -> ModbusTcpServer:
    """Start listening; the caller awaits `server.shutdown()` to stop."""
    server = ModbusTcpServer([d.sim_device() for d in devices], address=(host, port))
    await server.serve_forever(background=True)
    return server


async def serve_rtu(
    devices: list[SimulatedDevice], serial_port: str, baudrate: int = 19200
) -> ModbusSerialServer:
    server = ModbusSerialServer(
        [d.sim_device() for d in devices],
        framer=FramerType.RTU,
        port=serial_port,
        baudrate=baudrate,
    )
    await server.serve_forever(background=True)
    return server
