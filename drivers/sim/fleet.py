"""Start simulated presses, one Modbus TCP port each, as `edge-agent simulate` and the demo do."""

from __future__ import annotations

__all__ = ["Fleet", "start_presses"]

import logging
import time
from dataclasses import dataclass

from pymodbus.server import ModbusTcpServer

from drivers.sim.image import RegisterImage
from drivers.sim.press import PressModel
from drivers.sim.server import SimulatedDevice, serve_tcp


@dataclass
class Fleet:
    models: list[PressModel]
    servers: list[ModbusTcpServer]
    ports: list[int]

    async def stop(self) -> None:
        for server in self.servers:
            await server.shutdown()


async def start_presses(
    count: int,
    host: str = "127.0.0.1",
    base_port: int = 5020,
    seed: int = 1,
    wear_per_hour: tuple[float, ...] = (),
) -> Fleet:
    """Presses on ports base_port, base_port+1, ...; press i wears by wear_per_hour[i] (default 0)."""
    # pymodbus logs its own deprecation notes and every refused request; the simulator is quiet.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    fleet = Fleet([], [], [])
    for i in range(count):
        wear = wear_per_hour[i] if i < len(wear_per_hour) else 0.0
        model = PressModel(seed=seed + i, wear_per_hour=wear, start_s=time.time())
        image = RegisterImage()
        model.write(image)

        def refresh(now_s: float, model: PressModel = model, image: RegisterImage = image) -> None:
            model.advance(now_s)
            model.write(image)

        port = base_port + i
        fleet.servers.append(await serve_tcp([SimulatedDevice(image, 1, refresh)], host, port))
        fleet.models.append(model)
        fleet.ports.append(port)
    return fleet
