"""A TCP relay in front of an S7 server that reads the frames going by, and can break the link.

It counts the read jobs a client sends, records every S7 function it asks for (the agent must only
set up the connection and read), and the largest PDU each way, so tests can check requests per poll
and that answers stay within the negotiated PDU. `freeze()` stops passing bytes either way (a CPU
that stops answering, the TCP link still up); `cut()` closes every connection and stops listening
(a CPU switched off); `restore()` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

_JOB = 0x01
_READ_VAR = 0x04


@dataclass
class WireLog:
    functions: list[int] = field(default_factory=list)  # S7 functions of the client's jobs
    read_jobs: int = 0
    items_asked: int = 0
    max_request_pdu: int = 0
    max_answer_pdu: int = 0


class S7Relay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.log = WireLog()
        self.frozen = False
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        self.frozen = True

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def restore(self) -> None:
        self.frozen = False
        await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]
        back = asyncio.create_task(self._pump(up_reader, writer, upstream=False))
        forth = asyncio.create_task(self._pump(reader, up_writer, upstream=True))
        self._tasks |= {back, forth}
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({back, forth}, return_when=asyncio.FIRST_COMPLETED)
        for task in (back, forth):
            task.cancel()
            self._tasks.discard(task)
        writer.close()
        up_writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                header = await reader.readexactly(4)
                (length,) = struct.unpack_from(">H", header, 2)
                body = await reader.readexactly(length - 4)
                while self.frozen:  # held, never passed on: the peer waits in vain
                    await asyncio.sleep(3600)
                self._note(body, upstream)
                writer.write(header + body)
                await writer.drain()

    def _note(self, cotp: bytes, upstream: bool) -> None:
        if len(cotp) < 3 or cotp[1] != 0xF0:  # only data transfers carry S7 PDUs
            return
        pdu = cotp[1 + cotp[0] :]
        if upstream:
            self.log.max_request_pdu = max(self.log.max_request_pdu, len(pdu))
            if len(pdu) > 10 and pdu[1] == _JOB:
                function = pdu[10]
                self.log.functions.append(function)
                if function == _READ_VAR:
                    self.log.read_jobs += 1
                    self.log.items_asked += pdu[11]
        else:
            self.log.max_answer_pdu = max(self.log.max_answer_pdu, len(pdu))
