"""A MELSEC PLC, simulated: an asyncio MC protocol server (3E binary frame over TCP).

Written from the MELSEC Communication Protocol Reference Manual (SH-080008) for the tests and for
`edge-agent simulate`. It serves device memory, `memory[device] = words` (bit devices 16 points a
word, point n in bit n % 16 of word n // 16), and answers batch reads (command 0401) in word and
bit units, in the Q form (subcommands 0000/0001) and, with series iqr, the iQ-R form
(0002/0003) too. Like the agent it is read-only: any other command, writes included, gets end
code 0xC059. Reads outside the memory get 0xC056, too many points 0xC051 (bits) or 0xC052
(words), a device it does not have 0xC05C, a body whose size does not fit 0xC061. A frame that
does not start with 50 00 closes the connection, as a PLC's Ethernet port ignores it.

`serve_press` serves the simulated press (map in PRESS_MAP; README section "Mitsubishi").
"""

from __future__ import annotations

__all__ = [
    "PRESS_MAP",
    "McSimulator",
    "SeenRequest",
    "mc_press_reader",
    "press_memory",
    "serve_press",
]

import asyncio
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.mc.address import DEVICES, Device, Series
from drivers.mc.codec import decode
from drivers.mc.config import McDeviceConfig, tag_words
from drivers.sim.press import PressModel, PressReadings
from edge_agent.samples import Value

_BY_CODE = {device.code: device for device in DEVICES.values()}
_MAX_WORDS = 960
_MAX_BITS = 7168
_OK = 0x0000
_BIT_POINTS = 0xC051
_WORD_POINTS = 0xC052
_OUT_OF_RANGE = 0xC056
_UNSUPPORTED = 0xC059
_REFUSED = 0xC05C
_LENGTH = 0xC061

# Where the simulated press keeps its data; configs read the same map.
PRESS_MAP: dict[str, tuple[str, str]] = {
    "running": ("M0", "bool"),
    "door_closed": ("X0", "bool"),
    "fault_code": ("D0", "uint16"),
    "total_count": ("D2", "uint32"),
    "good_count": ("D4", "uint32"),
    "stroke_counter16": ("D6", "uint16"),
    "spindle_temp_c": ("D10", "float32"),
    "vibration_mm_s": ("D12", "float32"),
    "motor_current_da": ("D14", "uint16"),  # 0.1 A
}


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """A read the simulator answered: device, head number, points, unit, end code."""

    device: str
    head: int
    points: int
    bit_units: bool
    end_code: int


@dataclass
class McSimulator:
    """Device memory served over the MC protocol; `refresh(now_s)` runs before every answer."""

    memory: dict[str, list[int]]
    series: Series = "q"
    refresh: Callable[[float], None] | None = None
    seen: list[SeenRequest] = field(default_factory=list, init=False)
    _server: asyncio.Server | None = field(default=None, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set, init=False)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop every connection, as a PLC that is switched off."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    def set_words(self, device: str, number: int, words: list[int]) -> None:
        memory = self.memory[device]
        memory[number : number + len(words)] = words

    def set_bit(self, device: str, number: int, on: bool) -> None:
        memory = self.memory[device]
        word, bit = divmod(number, 16)
        memory[word] = memory[word] | (1 << bit) if on else memory[word] & ~(1 << bit)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                header = await reader.readexactly(9)
                if header[:2] != b"\x50\x00":
                    return
                (length,) = struct.unpack_from("<H", header, 7)
                body = await reader.readexactly(length)
                writer.write(self._answer(header[2:7], body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()

    def _answer(self, route: bytes, body: bytes) -> bytes:
        if len(body) < 6:
            end_code, data, command = _LENGTH, b"", body[2:6]
        else:
            command = body[2:6]
            end_code, data = self._execute(body)
        if end_code != _OK:
            data = route + command.ljust(4, b"\x00")
        payload = struct.pack("<H", end_code) + data
        return b"\xd0\x00" + route + struct.pack("<H", len(payload)) + payload

    def _execute(self, body: bytes) -> tuple[int, bytes]:
        command, subcommand = struct.unpack_from("<HH", body, 2)
        accepted = (0, 1, 2, 3) if self.series == "iqr" else (0, 1)
        if command != 0x0401 or subcommand not in accepted:
            return _UNSUPPORTED, b""
        long_form = subcommand in (2, 3)
        spec = body[6:]
        if len(spec) != (8 if long_form else 6):
            return _LENGTH, b""
        if long_form:
            head, code, points = struct.unpack("<IHH", spec)
        else:
            head, code, points = int.from_bytes(spec[:3], "little"), spec[3], spec[4] | spec[5] << 8
        bit_units = subcommand in (1, 3)
        device = _BY_CODE.get(code)
        end_code, data = self._read(device, head, points, bit_units)
        name = device.name if device is not None else f"0x{code:X}"
        self.seen.append(SeenRequest(name, head, points, bit_units, end_code))
        return end_code, data

    def _read(
        self, device: Device | None, head: int, points: int, bit_units: bool
    ) -> tuple[int, bytes]:
        if device is None or device.name not in self.memory or (bit_units and not device.bits):
            return _REFUSED, b""
        if not 1 <= points <= (_MAX_BITS if bit_units else _MAX_WORDS):
            return (_BIT_POINTS if bit_units else _WORD_POINTS), b""
        if self.refresh is not None:
            self.refresh(time.time())
        memory = self.memory[device.name]
        size = len(memory) * 16 if device.bits else len(memory)
        span = points if bit_units or not device.bits else points * 16
        if head + span > size:
            return _OUT_OF_RANGE, b""
        if bit_units:
            return _OK, _pack_nibbles([_bit(memory, head + i) for i in range(points)])
        if device.bits:
            words = [_bits_word(memory, head + 16 * i) for i in range(points)]
        else:
            words = memory[head : head + points]
        return _OK, struct.pack(f"<{points}H", *words)


def _bit(memory: list[int], point: int) -> int:
    return memory[point // 16] >> (point % 16) & 1


def _bits_word(memory: list[int], first: int) -> int:
    if first % 16 == 0:
        return memory[first // 16]
    return sum(_bit(memory, first + i) << i for i in range(16))


def _pack_nibbles(bits: list[int]) -> bytes:
    """Bit units: two points a byte, the first in the high nibble (SH-080008)."""
    padded = [*bits, 0] if len(bits) % 2 else bits
    return bytes(padded[i] << 4 | padded[i + 1] for i in range(0, len(padded), 2))


def press_memory(
    readings: PressReadings, memory: dict[str, list[int]] | None = None
) -> dict[str, list[int]]:
    """The press's readings written into device memory at PRESS_MAP's addresses."""
    memory = memory if memory is not None else {"M": [0] * 64, "X": [0] * 64, "D": [0] * 1024}
    words = memory["D"]
    memory["M"][0] = int(readings["running"])
    memory["X"][0] = int(readings["door_closed"])
    words[0] = readings["fault_code"] & 0xFFFF
    counts = (readings["total_count"] & 0xFFFFFFFF, readings["good_count"] & 0xFFFFFFFF)
    words[2:6] = struct.unpack("<4H", struct.pack("<II", *counts))
    words[6] = readings["total_count"] % 65536
    floats = (readings["spindle_temp_c"], readings["vibration_mm_s"])
    words[10:14] = struct.unpack("<4H", struct.pack("<ff", *floats))
    words[14] = min(0xFFFF, round(readings["motor_current_a"] * 10))
    return memory


async def serve_press(
    press: PressModel, host: str = "127.0.0.1", port: int = 5000, *, series: Series = "q"
) -> McSimulator:
    """The press served over the MC protocol until `stop()`; values as fresh as each request."""
    simulator = McSimulator(press_memory(press.readings()), series=series)

    def refresh(now_s: float) -> None:
        press.advance(now_s)
        press_memory(press.readings(), simulator.memory)

    simulator.refresh = refresh
    await simulator.start(host, port)
    return simulator


def mc_press_reader(device: McDeviceConfig) -> Callable[[PressModel], dict[str, Value]]:
    """What `device`'s tags read from a press, without a socket (for the demo's history)."""
    tags = [(name, tag, tag.parsed(device.series)) for name, tag in device.tags.items()]

    def read(press: PressModel) -> dict[str, Value]:
        memory = press_memory(press.readings())  # what the server would answer with
        values: dict[str, Value] = {}
        for name, tag, address in tags:
            count = tag_words(tag)
            words = memory.get(address.device.name, [])[address.word : address.word + count]
            raw = struct.pack(f"<{count}H", *words, *[0] * (count - len(words)))
            values[name] = decode(tag, raw, address.bit_in_word or 0)
        return values

    return read
