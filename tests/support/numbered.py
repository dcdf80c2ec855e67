"""A simulated device that numbers every value it serves: 1, 2, 3, ... one per read request.

With one tag (a uint32 at holding register 0) a poll is one request, so the numbers a test finds
in MQTT or VictoriaMetrics tell exactly which polls arrived, which are missing, and which twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.sim.image import RegisterImage
from drivers.sim.server import SimulatedDevice


@dataclass
class NumberedDevice:
    frozen: bool = False  # true: keep serving the last number (a test's clean end)
    served: int = field(default=0, init=False)
    image: RegisterImage = field(default_factory=lambda: RegisterImage(size=8), init=False)

    def _next(self, _now_s: float) -> None:
        if not self.frozen:
            self.served += 1
            self.image.set_u32("holding", 0, self.served)

    def simulated(self) -> SimulatedDevice:
        return SimulatedDevice(self.image, refresh=self._next)


def numbered_yaml(name: str, port: int, poll_interval_s: float) -> str:
    return (
        f"  {name}:\n    driver: modbus\n    host: 127.0.0.1\n    port: {port}\n"
        f"    poll_interval_s: {poll_interval_s}\n    timeout_s: 1\n"
        "    tags:\n      n: {table: holding, address: 0, type: uint32}\n"
    )
