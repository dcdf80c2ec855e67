"""A TCP relay to a server that a test can cut and restore: the network between a client and its
server failing for a while, the server itself running on.

`cut()` closes every relayed connection (both sides: the server sees its client vanish without a
goodbye, as on a broken link, and for an MQTT broker publishes the client's last will) and stops
listening, so the client's attempts to connect again are refused; `restore()` listens again on
the same port.
"""

from __future__ import annotations

import asyncio
import contextlib


class SwitchedLink:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # no new connections
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}
        back = asyncio.create_task(_pump(up_reader, writer))
        await _pump(reader, up_writer)
        back.cancel()
        for w in (writer, up_writer):
            w.close()
            self._writers.discard(w)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()
