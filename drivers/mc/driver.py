"""Mitsubishi MELSEC driver: MC protocol, 3E binary frame over TCP, our own framing on asyncio.

Read-only by design: the only command it sends is 0401 (batch read, word units). The frames of a
poll are built once, when the driver is made; a poll sends them one after another and decodes
each answer with a precompiled layout. A read of several tags that the PLC refuses as past the
end of a device (end code C056) is split into one read per tag (see drivers.apart).
"""

from __future__ import annotations

__all__ = ["McDriver"]

from drivers.apart import split_refused
from drivers.base import Reading
from drivers.mc.codec import RequestDecoder
from drivers.mc.config import McDeviceConfig
from drivers.mc.connection import McConnection
from drivers.mc.frame import LINK_END_CODES, describe_end_code
from drivers.mc.plan import McRequest, build_plan, plan_apart, tag_bits
from edge_agent.errors import ConnectError

_PAST_THE_END = 0xC056  # a read that runs past the last address of a device


class McDriver:
    """One MELSEC PLC (one route: network, PC, module I/O, station) on one TCP connection."""

    def __init__(self, name: str, config: McDeviceConfig) -> None:
        self.name = name
        self.config = config
        self._bits = tag_bits(config)
        self._plan(build_plan(config))
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
        refused = [
            index
            for index, (request, decoder) in enumerate(
                zip(self.requests, self._decoders, strict=True)
            )
            if await self._read_request(request, decoder, reading) == _PAST_THE_END
        ]
        if refused:
            plan, new = split_refused(
                self.requests,
                refused,
                lambda request: plan_apart(self.config, request),
                lambda request: (
                    f"{self.name}: {request.text} is past the end of the device (end code "
                    f"0x{_PAST_THE_END:04X}): its {len(request.tags)} tags are read apart from now "
                    "on, so that only a tag at fault is bad"
                ),
            )
            if new:
                self._plan(plan)
            for index in new:
                for name, _ in plan[index].tags:
                    del reading.failed[name]  # the refusal of the read they were in
                await self._read_request(plan[index], self._decoders[index], reading)
        return reading

    def _plan(self, requests: list[McRequest]) -> None:
        self.requests = requests
        self._decoders = [RequestDecoder(r.tags, self.config.tags, self._bits) for r in requests]

    async def close(self) -> None:
        await self._connection.close()

    async def _read_request(
        self, request: McRequest, decoder: RequestDecoder, reading: Reading
    ) -> int:
        """Read one request into `reading`; its end code."""
        end_code, data = await self._connection.exchange(
            request.frame, request.words * 2, request.text
        )
        if end_code in LINK_END_CODES:
            raise ConnectError(f"{self.endpoint}: {request.text}: {describe_end_code(end_code)}")
        if end_code != 0:
            text = f"{request.text}: {describe_end_code(end_code)}"
            for name, _ in request.tags:
                reading.failed[name] = text
            return end_code
        decoder.decode(data, reading.values, reading.failed, request.text)
        return 0
