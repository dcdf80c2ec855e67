"""Mitsubishi MELSEC driver: MC protocol, 3E binary frame over TCP, our own framing on asyncio.

Read-only by design: the only command it sends is 0401 (batch read, word units). The frames of a
poll are built once, when the driver is made; a poll sends them one after another and decodes
each answer with a precompiled layout.
"""

from __future__ import annotations

__all__ = ["McDriver"]

from drivers.base import Reading
from drivers.mc.codec import RequestDecoder
from drivers.mc.config import McDeviceConfig
from drivers.mc.connection import McConnection
from drivers.mc.frame import LINK_END_CODES, describe_end_code
from drivers.mc.plan import McRequest, build_plan, tag_bits
from edge_agent.errors import ConnectError


class McDriver:
    """One MELSEC PLC (one route: network, PC, module I/O, station) on one TCP connection."""

    def __init__(self, name: str, config: McDeviceConfig) -> None:
        self.name = name
        self.config = config
        self.requests = build_plan(config)
        bits = tag_bits(config)
        self._decoders = [RequestDecoder(r.tags, config.tags, bits) for r in self.requests]
        self._connection = McConnection(config.host, config.port, config.timeout_s)

    @property
    def endpoint(self) -> str:
        return self._connection.endpoint

    @property
    def tag_names(self) -> list[str]:
        return list(self.config.tags)

    async def connect(self) -> None:
        await self._connection.open()

    async def read(self) -> Reading:
        if not self._connection.is_open:
            await self._connection.open()
        reading = Reading()
        for request, decoder in zip(self.requests, self._decoders, strict=True):
            await self._read_request(request, decoder, reading)
        return reading

    async def close(self) -> None:
        await self._connection.close()

    async def _read_request(
        self, request: McRequest, decoder: RequestDecoder, reading: Reading
    ) -> None:
        end_code, data = await self._connection.exchange(
            request.frame, request.words * 2, request.text
        )
        if end_code in LINK_END_CODES:
            raise ConnectError(f"{self.endpoint}: {request.text}: {describe_end_code(end_code)}")
        if end_code != 0:
            text = f"{request.text}: {describe_end_code(end_code)}"
            for name, _ in request.tags:
                reading.failed[name] = text
            return
        decoder.decode(data, reading.values, reading.failed, request.text)
