"""A TCP relay whose far side outlives the near one: a link that died without the server noticing.

Bytes go both ways as on a direct connection. When a client goes away (closes, or is killed), its
connection to the upstream server stays open and is no longer read or written: to the server it
is a peer gone silent, as after a power cut or a pulled cable, until its own timeout (for an MQTT
broker: 1.5 keep-alives, then the client's last will).
"""

from __future__ import annotations

import asyncio
import contextlib


class DeadLinkRelay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._upstreams: list[asyncio.StreamWriter] = []  # kept open until close()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for writer in self._upstreams:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._upstreams.append(up_writer)
        back = asyncio.create_task(_pump(up_reader, writer))
        self._tasks.add(back)
        await _pump(reader, up_writer)  # until the client is gone
        back.cancel()  # nothing the server sends is read any more; its side stays open
        writer.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
