"""A simulated Omron PLC answering FINS over UDP and TCP, written from the specification.

It serves word areas (CIO, W, H, A, D, EM banks, timer and counter present values), answers
memory area read (0101, words and bits) and multiple memory area read (0104), refuses writes and
other commands with end codes as a PLC gives them, and does the FINS/TCP node address exchange.
`serve_press` serves the simulated press (map in PRESS_MAP). For tests it counts what it served
and can be told to answer late, not at all, or differently (`delays`, `silent`, `mangle`).
"""

from __future__ import annotations

__all__ = [
    "PRESS_MAP",
    "FinsMemory",
    "FinsServer",
    "ServedRead",
    "fins_press_reader",
    "serve_press",
    "write_press",
]

import asyncio
import contextlib
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from drivers.fins.codec import decode, encode
from drivers.fins.config import FinsDeviceConfig, FinsTagConfig
from drivers.fins.frames import (
    MEMORY_AREA_READ,
    TCP_CLIENT_NODE,
    TCP_FRAME,
    TCP_HEADER_SIZE,
    TCP_SERVER_NODE,
    MalformedFrame,
    parse_command,
    parse_tcp_header,
    tcp_frame,
)
from drivers.fins.memory import FinsMemory
from drivers.sim.press import PressModel
from edge_agent.samples import Value

MULTIPLE_MEMORY_AREA_READ = 0x0104
_WRITES = {0x0102, 0x0103, 0x0105}  # memory area write, fill, transfer
_MAX_WORDS = 999
_MAX_MULTIPLE_ITEMS = 167
# Bit access codes and the word areas they address (W227): CIO, W, H, A, D, EM banks 0-F.
_BIT_CODES = {0x30: 0xB0, 0x31: 0xB1, 0x32: 0xB2, 0x33: 0xB3, 0x02: 0x82}
_BIT_CODES.update({0x20 + bank: 0xA0 + bank for bank in range(16)})
# TCP error codes (W421) the handshake can answer.
_TCP_NOT_SUPPORTED = 0x03
_TCP_NODE_IN_USE = 0x21
_TCP_NODE_RANGE = 0x23
_TCP_SAME_NODE = 0x24

# The press, as the simulator serves it: tag -> (address, type), CJ word order (low word first).
PRESS_MAP: dict[str, tuple[str, str]] = {
    "running": ("CIO0.00", "bool"),
    "door_closed": ("CIO0.01", "bool"),
    "fault_code": ("D0", "uint16"),
    "total_count": ("D2", "uint32"),
    "good_count": ("D4", "uint32"),
    "stroke_counter16": ("D6", "uint16"),
    "spindle_temp_c": ("D10", "float32"),
    "vibration_mm_s": ("D12", "float32"),
    "motor_current_da": ("D14", "uint16"),
    "stroke_counter_bcd": ("C0", "bcd16"),
}


@dataclass(frozen=True, slots=True)
class ServedRead:
    """One read the server answered (or refused), for tests to count."""

    code: int  # command code
    area_code: int
    first: int  # word address on the wire
    count: int
    sid: int
    end_code: int
    source_node: int  # SA1 of the command
    dest_node: int  # DA1


@dataclass
class FinsServer:
    """Serves `memory` over FINS/UDP and FINS/TCP; `refresh(now_s)` runs before every read.

    `node`: the PLC's FINS node; None answers whatever node a command names (handy behind NAT or
    in a demo), a number answers only commands to that node (others get end code 0201).
    """

    memory: FinsMemory = field(default_factory=FinsMemory)
    node: int | None = None
    refresh: Callable[[float], None] | None = None
    # For tests: seconds to hold back the next answers (one value per command received); a
    # server that never answers; a function turning each answer into the datagrams/frames sent.
    delays: deque[float] = field(default_factory=deque)
    silent: bool = False
    mangle: Callable[[bytes], list[bytes]] | None = None
    served: list[ServedRead] = field(default_factory=list)
    udp_port: int = 0
    tcp_port: int = 0
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.Server | None = None
    _clients: set[int] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(
        self, host: str, port: int, transport: Literal["udp", "tcp", "both"] = "both"
    ) -> None:
        """Listen on `port` (0: any free port; see udp_port and tcp_port)."""
        loop = asyncio.get_running_loop()
        if transport in ("udp", "both"):
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpServer(self), local_addr=(host, port)
            )
            self.udp_port = self._udp.get_extra_info("sockname")[1]
        if transport in ("tcp", "both"):
            self._tcp = await asyncio.start_server(self._serve_tcp, host, port)
            self.tcp_port = self._tcp.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, drop the TCP connections and every answer still held back."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
            self._tcp = None

    # ------------------------------------------------------------------ answering commands

    def answer(self, frame: bytes) -> bytes | None:
        """The response to one FINS command frame, or None for what a PLC would not answer."""
        try:
            header, code, parameters = parse_command(frame)
        except MalformedFrame:
            return None
        if self.node is not None and header.da1 != self.node:
            return header.response(code, 0x0201)  # no such node on this network
        if code == MEMORY_AREA_READ:
            end_code, data = self._memory_area_read(parameters)
        elif code == MULTIPLE_MEMORY_AREA_READ:
            end_code, data = self._multiple_read(parameters)
        elif code in _WRITES:
            end_code, data = 0x2101, b""  # read-only, like the agent
        else:
            end_code, data = 0x0401, b""  # undefined command
        area_code = parameters[0] if parameters else 0
        first, count = _first(parameters), _count(parameters)
        self.served.append(
            ServedRead(code, area_code, first, count, header.sid, end_code, header.sa1, header.da1)
        )
        return header.response(code, end_code, data)

    def _memory_area_read(self, parameters: bytes) -> tuple[int, bytes]:
        if len(parameters) != 6:
            return (0x1002 if len(parameters) < 6 else 0x1001), b""
        code, first, bit, count = struct.unpack(">BHBH", parameters)
        if count == 0:
            return 0x110C, b""
        if count > _MAX_WORDS:
            return 0x110B, b""  # response too long
        if self.refresh is not None:
            self.refresh(time.time())
        if code in _BIT_CODES:
            return self._read_bits(_BIT_CODES[code], first, bit, count)
        if bit != 0:
            return 0x110C, b""  # a word read names bit 00
        return self.memory.read_words(code, first, count)

    def _read_bits(self, code: int, word: int, bit: int, count: int) -> tuple[int, bytes]:
        """One byte (00 or 01) per bit, from `bit` of `word` on, across word boundaries."""
        if bit > 15:
            return 0x110C, b""
        end_code, data = self.memory.read_words(code, word, (bit + count + 15) // 16)
        if end_code:
            return end_code, b""
        words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        return 0, bytes((words[p // 16] >> (p % 16)) & 1 for p in range(bit, bit + count))

    def _multiple_read(self, parameters: bytes) -> tuple[int, bytes]:
        if not parameters or len(parameters) % 4:
            return 0x1002, b""
        if len(parameters) // 4 > _MAX_MULTIPLE_ITEMS:
            return 0x1001, b""
        if self.refresh is not None:
            self.refresh(time.time())
        out = bytearray()
        for i in range(0, len(parameters), 4):
            code, first, bit = struct.unpack_from(">BHB", parameters, i)
            if code in _BIT_CODES:
                end_code, data = self._read_bits(_BIT_CODES[code], first, bit, 1)
            else:
                end_code, data = self.memory.read_words(code, first, 1)
            if end_code:
                return end_code, b""
            out += bytes([code]) + data
        return 0, bytes(out)

    async def _send_later(
        self, delay_s: float, send: Callable[[bytes], None], frames: list[bytes]
    ) -> None:
        await asyncio.sleep(delay_s)
        for frame in frames:
            send(frame)

    def _dispatch(self, frame: bytes, send: Callable[[bytes], None]) -> None:
        """Answer now, later or never, as the test hooks say."""
        if self.silent:
            return
        delay_s = self.delays.popleft() if self.delays else 0.0
        response = self.answer(frame)
        if response is None:
            return
        frames = self.mangle(response) if self.mangle is not None else [response]
        if delay_s <= 0:
            for out in frames:
                send(out)
            return
        task = asyncio.get_running_loop().create_task(self._send_later(delay_s, send, frames))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ FINS/TCP

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        client = 0
        try:
            own_node = self.node or _last_octet(writer.get_extra_info("sockname")[0])
            client = await self._tcp_handshake(reader, writer, own_node)
            if not client:
                return
            while True:
                header = parse_tcp_header(await reader.readexactly(TCP_HEADER_SIZE))
                payload = await reader.readexactly(header.length - 8)
                if header.command != TCP_FRAME:
                    writer.write(tcp_frame(header.command, b"", _TCP_NOT_SUPPORTED))
                    continue
                self._dispatch(payload, lambda out: writer.write(tcp_frame(TCP_FRAME, out)))
        except (asyncio.IncompleteReadError, ConnectionError, MalformedFrame):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._clients.discard(client)
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _tcp_handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, own_node: int
    ) -> int:
        """The client's node address (0 after an error answer, which closes the connection)."""
        header = parse_tcp_header(await reader.readexactly(TCP_HEADER_SIZE))
        payload = await reader.readexactly(header.length - 8)
        if header.command != TCP_CLIENT_NODE or len(payload) != 4:
            writer.write(tcp_frame(TCP_SERVER_NODE, b"", _TCP_NOT_SUPPORTED))
            return 0
        wanted = int.from_bytes(payload, "big")
        error = 0
        if wanted > 254:
            error = _TCP_NODE_RANGE
        elif wanted and wanted == own_node:
            error = _TCP_SAME_NODE
        elif wanted in self._clients:
            error = _TCP_NODE_IN_USE
        if error:
            writer.write(tcp_frame(TCP_SERVER_NODE, b"", error))
            return 0
        client = wanted or next(
            n for n in range(254, 0, -1) if n != own_node and n not in self._clients
        )
        self._clients.add(client)
        writer.write(tcp_frame(TCP_SERVER_NODE, struct.pack(">II", client, own_node)))
        return client


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, server: FinsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        transport = self.transport
        assert transport is not None
        # Answers go back to where the command came from, as the Ethernet units do by default.
        self.server._dispatch(data, lambda out: transport.sendto(out, addr))


def _first(parameters: bytes) -> int:
    return int.from_bytes(parameters[1:3], "big") if len(parameters) >= 3 else 0


def _count(parameters: bytes) -> int:
    return int.from_bytes(parameters[4:6], "big") if len(parameters) >= 6 else 0


def _last_octet(ip: str) -> int:
    last = int(ip.rsplit(".", 1)[-1]) if ip.count(".") == 3 else 1
    return last if 1 <= last <= 254 else 1


# ---------------------------------------------------------------------------- the press


_PRESS_TAGS = {
    name: FinsTagConfig.model_validate({"address": address, "type": kind})
    for name, (address, kind) in PRESS_MAP.items()
}


def write_press(press: PressModel, memory: FinsMemory) -> None:
    """The press's readings into the PLC memory at the addresses of PRESS_MAP."""
    r = press.readings()
    values: dict[str, Value] = {
        "running": r["running"],
        "door_closed": r["door_closed"],
        "fault_code": r["fault_code"],
        "total_count": r["total_count"],
        "good_count": r["good_count"],
        "stroke_counter16": r["total_count"] % 65536,
        "spindle_temp_c": r["spindle_temp_c"],
        "vibration_mm_s": r["vibration_mm_s"],
        "motor_current_da": round(r["motor_current_a"] * 10),
        "stroke_counter_bcd": r["total_count"] % 10000,
    }
    for name, tag in _PRESS_TAGS.items():
        if tag.type == "bool":
            memory.set_bit(tag.address, bool(values[name]))
        else:
            memory.write(tag.address, encode(tag, values[name]))


async def serve_press(
    press: PressModel,
    host: str,
    port: int,
    transport: Literal["udp", "tcp", "both"] = "both",
    node: int | None = None,
) -> FinsServer:
    """Serve the press over FINS until `await server.stop()`; its memory is fresh at every read."""
    memory = FinsMemory()
    write_press(press, memory)

    def refresh(now_s: float) -> None:
        press.advance(now_s)
        write_press(press, memory)

    server = FinsServer(memory, node=node, refresh=refresh)
    await server.start(host, port, transport)
    return server


def fins_press_reader(device: FinsDeviceConfig) -> Callable[[PressModel], dict[str, Value]]:
    """What `device` reads from a press now, without sockets (for the demo's history)."""
    memory = FinsMemory()
    tags = list(device.tags.items())
    for name, tag in tags:
        where = tag.location
        end_code, _ = memory.read_words(where.area.code, where.area.base + where.word, tag.words)
        if end_code:
            raise ValueError(f"tag {name}: the simulated PLC does not serve {tag.address}")

    def read(press: PressModel) -> dict[str, Value]:
        write_press(press, memory)
        out: dict[str, Value] = {}
        for name, tag in tags:
            where = tag.location
            _, data = memory.read_words(where.area.code, where.area.base + where.word, tag.words)
            out[name] = decode(tag, data)
        return out

    return read
