"""Misbehaving Modbus TCP endpoints on real sockets, for fault tests.

`HangingProxy` stands in front of a healthy server and can be told to hang: it keeps accepting
connections, keeps the established ones open and keeps reading requests, but never answers again,
as a gateway does whose serial side has died.

`MalformedServer` answers read-holding-registers requests itself, either correctly (every register
holds `register_value`) or with one of several kinds of broken frame (`Fault`).

Frames are built here byte by byte, not with pymodbus, so the tests do not check pymodbus against
itself.
"""

from __future__ import annotations

__all__ = ["Fault", "HangingProxy", "MalformedServer", "read_frame"]

import asyncio
import random
import struct
from collections import Counter
from enum import StrEnum

_MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length (unit id onwards), unit id
READ_HOLDING = 3


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """One whole Modbus TCP frame; raises `asyncio.IncompleteReadError` when the peer closes."""
    header = await reader.readexactly(_MBAP.size)
    _, _, length, _ = _MBAP.unpack(header)
    return header + await reader.readexactly(max(length - 1, 0))


class _TcpServer:
    """A listener on a free loopback port whose `close()` also ends the established connections.

    asyncio's `Server.close()` (Python 3.11) leaves accepted connections and their handler tasks
    running, and a test must leave no socket or task behind for the next one.
    """

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.connections = 0  # accepted so far
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Closing every stream (not cancelling) lets each handler end on EOF, which asyncio's
        # stream callback in 3.11 handles quietly; a cancelled handler is logged as an error.
        for writer in list(self._writers):
            writer.close()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    def _track(self, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._track(writer)
        try:
            await self.serve(self.connections, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the agent closed its end: normal after every failed poll
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()

    async def serve(
        self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        raise NotImplementedError


class HangingProxy(_TcpServer):
    """Forwards each request to an upstream Modbus TCP server and its answer back, until `hang()`."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self.hanging = False
        self.connections_at_hang = 0
        self.forwarded = 0
        self.swallowed = 0
        self.swallowed_on_established = 0  # on a connection accepted before `hang()`

    def hang(self) -> None:
        """From now on, on every connection old or new, requests are read and dropped."""
        self.hanging = True
        self.connections_at_hang = self.connections

    async def serve(
        self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._track(up_writer)
        try:
            while True:
                request = await read_frame(reader)
                answer = None
                if not self.hanging:
                    up_writer.write(request)
                    await up_writer.drain()
                    answer = await read_frame(up_reader)
                if answer is None or self.hanging:  # hung while upstream answered: lost as well
                    # Reading on (not closing, not leaving data unread) keeps the TCP link healthy:
                    # the agent sees an open connection that never answers, not a reset.
                    self.swallowed += 1
                    if number <= self.connections_at_hang:
                        self.swallowed_on_established += 1
                    continue
                writer.write(answer)
                await writer.drain()
                self.forwarded += 1
        finally:
            self._writers.discard(up_writer)
            up_writer.close()


class Fault(StrEnum):
    """Kinds of broken answer to a read-holding-registers request.

    garbage: 40 random bytes whose protocol-id field is not 0, so no Modbus frame hides in them.
    wrong_tid: a well-formed answer for another transaction (never tid 0, which pymodbus takes
        as matching any request).
    length_too_short: the MBAP length covers unit, function code and byte count only; the
        registers follow anyway.
    length_too_long: the MBAP length claims 10 bytes more than are sent.
    truncated: the first 5 bytes of a well-formed answer, then silence.
    wrong_function: a well-formed read-input-registers answer (function code 4) to a read of
        holding registers (3).
    unknown_function: function code 0x41, which no Modbus PDU has.
    bad_exception_code: exception frame 0x83 with exception code 0, which means no exception.
    short_exception: exception frame 0x83 without its exception code byte.
    """

    GARBAGE = "garbage"
    WRONG_TID = "wrong_tid"
    LENGTH_TOO_SHORT = "length_too_short"
    LENGTH_TOO_LONG = "length_too_long"
    TRUNCATED = "truncated"
    WRONG_FUNCTION = "wrong_function"
    UNKNOWN_FUNCTION = "unknown_function"
    BAD_EXCEPTION_CODE = "bad_exception_code"
    SHORT_EXCEPTION = "short_exception"


class MalformedServer(_TcpServer):
    """Answers function code 3 with `register_value` in every register, or, while `faults` is not
    empty, with a broken frame of each of its kinds in turn, one kind per answer. Other function
    codes get exception 1 (illegal function).

    `answered` counts the answers sent, by fault (`"ok"` for correct ones).
    """

    def __init__(self, register_value: int, wrong_value: int) -> None:
        super().__init__()
        self.register_value = register_value
        # Broken answers that still carry registers carry this value, so a test can tell whether
        # the agent took one for data.
        self.wrong_value = wrong_value
        self.faults: tuple[Fault, ...] = ()
        self._turn = 0
        self.answered: Counter[str] = Counter()
        self._rng = random.Random(1234)  # the same garbage every run

    async def serve(
        self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            request = await read_frame(reader)
            tid, _, _, unit = _MBAP.unpack_from(request)
            function_code = request[_MBAP.size]
            fault = self._next_fault()
            if function_code != READ_HOLDING:
                writer.write(_frame(tid, unit, bytes([function_code | 0x80, 1])))
            elif fault is None:
                (count,) = struct.unpack_from(">H", request, _MBAP.size + 3)
                writer.write(
                    _frame(tid, unit, _registers_pdu(READ_HOLDING, self.register_value, count))
                )
            else:
                (count,) = struct.unpack_from(">H", request, _MBAP.size + 3)
                writer.write(self._broken(fault, tid, unit, count))
            self.answered[fault.value if fault else "ok"] += 1
            await writer.drain()

    def _next_fault(self) -> Fault | None:
        if not self.faults:
            return None
        fault = self.faults[self._turn % len(self.faults)]
        self._turn += 1
        return fault

    def _broken(self, fault: Fault, tid: int, unit: int, count: int) -> bytes:
        good = _registers_pdu(READ_HOLDING, self.wrong_value, count)
        match fault:
            case Fault.GARBAGE:
                head = bytes([self._rng.randrange(256), self._rng.randrange(256), 0x5A, 0xA5])
                return head + self._rng.randbytes(36)
            case Fault.WRONG_TID:
                return _frame(tid % 0xFFFF + 1, unit, good)
            case Fault.LENGTH_TOO_SHORT:
                return _MBAP.pack(tid, 0, 3, unit) + good
            case Fault.LENGTH_TOO_LONG:
                return _MBAP.pack(tid, 0, 1 + len(good) + 10, unit) + good
            case Fault.TRUNCATED:
                return _frame(tid, unit, good)[:5]
            case Fault.WRONG_FUNCTION:
                return _frame(tid, unit, _registers_pdu(4, self.wrong_value, count))
            case Fault.UNKNOWN_FUNCTION:
                return _frame(tid, unit, bytes([0x41]) + good[1:])
            case Fault.BAD_EXCEPTION_CODE:
                return _frame(tid, unit, bytes([READ_HOLDING | 0x80, 0x00]))
            case Fault.SHORT_EXCEPTION:
                return _frame(tid, unit, bytes([READ_HOLDING | 0x80]))


def _registers_pdu(function_code: int, value: int, count: int) -> bytes:
    return bytes([function_code, 2 * count]) + struct.pack(f">{count}H", *[value] * count)


def _frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return _MBAP.pack(tid, 0, 1 + len(pdu), unit) + pdu
