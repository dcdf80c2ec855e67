"""A simulated press served over S7comm by python-snap7's S7 server, for the demo and the tests.

The server is python-snap7's, not ours: the driver's tests against it are against an independent
implementation. What it serves (DB1 with standard, not optimized, access):

| address     | type       | value                                       |
|-------------|------------|---------------------------------------------|
| DB1.DBX0.0  | bool       | running                                     |
| DB1.DBX0.1  | bool       | door closed                                 |
| DB1.DBW2    | int        | fault code (0 none, 1-5)                    |
| DB1.DBD4    | dint       | total count                                 |
| DB1.DBD8    | dint       | good count                                  |
| DB1.DBD12   | real       | spindle temperature, °C                     |
| DB1.DBD16   | real       | vibration, mm/s                             |
| DB1.DBW20   | int        | motor current in 0.1 A (scale: 0.1)         |
| DB1.DBB22   | string[32] | fault text, empty without a fault           |
| I0.1        | bool       | door closed (the safety switch's input)     |
| Q0.0        | bool       | running (the main drive's output)           |

DB1 is 56 bytes long: reading past it answers "address out of range" (0x05), any other DB
"object does not exist" (0x0A). M has 64 bytes, I and Q 16 each. The values are brought up to
date every `update_s` (0.1 s). Port 102 needs root; the simulator takes any port.
"""

from __future__ import annotations

__all__ = ["PRESS_TAGS", "S7Press", "press_image", "press_reader", "serve_press"]

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snap7.error import S7ConnectionError
from snap7.server import Server
from snap7.type import SrvArea

from drivers.s7.address import S7Location, locate
from drivers.s7.codec import decode, encode
from drivers.s7.config import S7DeviceConfig
from drivers.sim.press import FAULTS, PressModel
from edge_agent.samples import Value

# The press's tags as a device's `tags:` block reads them (the table above).
PRESS_TAGS: dict[str, dict[str, Any]] = {
    "running": {"address": "DB1.DBX0.0"},
    "door_closed": {"address": "DB1.DBX0.1"},
    "fault_code": {"address": "DB1.DBW2"},
    "total_count": {"address": "DB1.DBD4", "type": "dint"},
    "good_count": {"address": "DB1.DBD8", "type": "dint"},
    "spindle_temp_c": {"address": "DB1.DBD12", "type": "real", "unit": "°C"},
    "vibration_mm_s": {"address": "DB1.DBD16", "type": "real", "unit": "mm/s"},
    "motor_current_a": {"address": "DB1.DBW20", "scale": 0.1, "unit": "A"},
    "fault_text": {"address": "DB1.DBB22", "type": "string", "length": 32},
    "door_switch": {"address": "I0.1"},
    "drive_on": {"address": "Q0.0"},
}
# Bytes of each served area: (area, DB number) -> size.
_SIZES = {("DB", 1): 56, ("M", 0): 64, ("I", 0): 16, ("Q", 0): 16}
_SERVER_AREAS = {"DB": SrvArea.DB, "M": SrvArea.MK, "I": SrvArea.PE, "Q": SrvArea.PA}


def _locations() -> dict[str, S7Location]:
    return {
        name: locate(spec["address"], spec.get("type"), spec.get("length"))
        for name, spec in PRESS_TAGS.items()
    }


_LOCATIONS = _locations()


def press_image(press: PressModel) -> dict[tuple[str, int], bytearray]:
    """The press's memory now, as the CPU would hold it: (area, DB number) -> bytes."""
    r = press.readings()
    values: dict[str, Value] = {
        "running": r["running"],
        "door_closed": r["door_closed"],
        "fault_code": r["fault_code"],
        "total_count": r["total_count"],
        "good_count": r["good_count"],
        "spindle_temp_c": r["spindle_temp_c"],
        "vibration_mm_s": r["vibration_mm_s"],
        "motor_current_a": round(r["motor_current_a"], 1),
        "fault_text": FAULTS.get(r["fault_code"], ""),
        "door_switch": r["door_closed"],
        "drive_on": r["running"],
    }
    image = {key: bytearray(size) for key, size in _SIZES.items()}
    for name, location in _LOCATIONS.items():
        spec = PRESS_TAGS[name]
        data = encode(location, values[name], spec.get("scale", 1.0), spec.get("offset", 0.0))
        area = image[(location.area, location.db)]
        if location.type == "bool":  # bits share their byte
            area[location.start] |= data[0]
        else:
            area[location.start : location.start + location.size] = data
    return image


def press_reader(device: S7DeviceConfig) -> Callable[[PressModel], dict[str, Value]]:
    """What `device` reads from a press, without a socket: its tags decoded from the image.

    A tag outside what the simulator serves is a ValueError now, not a failure later.
    """
    for name, tag in device.tags.items():
        location = tag.location
        size = _SIZES.get((location.area, location.db))
        if size is None or location.start + location.size > size:
            raise ValueError(
                f"tag {name}: {tag.address} is not served by the simulated press "
                f"(DB1 bytes 0-55, M 0-63, I 0-15, Q 0-15)"
            )

    def read(press: PressModel) -> dict[str, Value]:
        image = press_image(press)
        values: dict[str, Value] = {}
        for name, tag in device.tags.items():
            location = tag.location
            area = image[(location.area, location.db)]
            data = bytes(area[location.start : location.start + location.size])
            values[name] = decode(location, data, tag.scale, tag.offset, tag.encoding or "latin-1")
        return values

    return read


@dataclass
class S7Press:
    """A running simulated press; `stop()` ends it."""

    server: Server
    model: PressModel
    host: str
    port: int
    areas: dict[tuple[str, int], bytearray]
    items_served: int = 0  # read items answered with data, counted by the server's events
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def refresh(self, now_s: float) -> None:
        """Bring the served memory up to the press's state at now_s."""
        self.model.advance(now_s)
        for (area, db), data in press_image(self.model).items():
            self.server.lock_area(_SERVER_AREAS[area], db)
            try:
                self.areas[(area, db)][:] = data
            finally:
                self.server.unlock_area(_SERVER_AREAS[area], db)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        # The server's stop joins its threads (up to a second each): not in the event loop.
        await asyncio.to_thread(self.server.stop)


async def serve_press(
    press: PressModel, host: str = "127.0.0.1", port: int = 102, *, update_s: float = 0.1
) -> S7Press:
    """Serve `press` on host:port until `stop()`; OSError if the port cannot be had."""
    # The server logs every client and every read of a missing DB: the simulator is quiet.
    logging.getLogger("snap7").setLevel(logging.CRITICAL)
    server = Server(log=False)
    areas = press_image(press)
    for (area, db), data in areas.items():
        server.register_area(
            _SERVER_AREAS[area], db, data
        )  # served in place: refresh writes into it
    sim = S7Press(server, press, host, port, areas)
    server.set_read_events_callback(lambda _event: _count(sim))
    if port:
        _check_free(host, port)
    try:
        server.start_to(host, port)
    except S7ConnectionError as exc:
        cause = exc.__context__
        raise cause if isinstance(cause, OSError) else OSError(str(exc)) from None
    if port == 0 and server.server_socket is not None:
        sim.port = server.server_socket.getsockname()[1]
    sim.refresh(time.time())
    sim.task = asyncio.create_task(_run(sim, update_s), name="s7 press")
    return sim


def _check_free(host: str, port: int) -> None:
    """OSError if host:port is taken. The server binds with SO_REUSEPORT, so a second simulator
    on the same port would share it with the first instead of failing; a plain bind does fail."""
    with socket.socket() as probe:
        probe.bind((host, port))


def _count(sim: S7Press) -> None:
    sim.items_served += 1


async def _run(sim: S7Press, update_s: float) -> None:
    while True:
        await asyncio.sleep(update_s)
        sim.refresh(time.time())
