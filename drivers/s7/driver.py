"""S7 driver: S7-300/400/1200/1500, S7-200 SMART and LOGO! over S7comm (ISO-on-TCP), via python-snap7.

Read-only by design: it sends the connection setup and "read variable" jobs, nothing else.
python-snap7's asyncio client opens the connection (COTP with the TSAPs, PDU negotiation) and
carries the PDUs; the read jobs are built and checked in `wire`, so that every item keeps its own
return code. Each request waits at most `timeout_s`: a CPU that stops answering costs that much,
is closed, and becomes a ConnectError, while other devices go on in their own tasks (the client is
native asyncio, no thread is held).

Tags close together are read as one range. When the CPU answers a range with "address out of
range" (0x05), one of its tags lies past the end of its DB or area: its tags are then read apart,
from that poll on, so that only the tag at fault is bad and its neighbours keep their values.
"""

from __future__ import annotations

__all__ = ["S7Driver"]

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterable

from snap7 import AsyncClient
from snap7.error import S7Error, S7TimeoutError

from drivers.apart import split_refused
from drivers.base import Reading
from drivers.s7.address import S7Location
from drivers.s7.codec import DecodeError, decode
from drivers.s7.config import S7DeviceConfig
from drivers.s7.plan import ReadRange, ReadRequest, TagSpan, merge_ranges, pack_requests
from drivers.s7.wire import (
    ItemResult,
    MalformedAnswer,
    RefusedRequest,
    item_failure,
    parse_read_answer,
    read_request,
)
from edge_agent.errors import ConnectError

# The item code one tag of a range can cause by itself (a DB that does not exist, 0x0A, or one
# that may not be read, 0x03, fails every tag of the range alike).
_OUT_OF_RANGE = 0x05


class S7Driver:
    """One S7 CPU on one connection, one request in flight."""

    def __init__(self, name: str, config: S7DeviceConfig) -> None:
        self.name = name
        self.config = config
        self.ranges = build_ranges(config)
        self._layouts = [_layout(r, config) for r in self.ranges]
        self.requests: list[ReadRequest] = []  # planned at each connect, for the PDU it gets
        self.pdu_size: int | None = None
        self._client: AsyncClient | None = None
        self._sequence = 0

    @property
    def endpoint(self) -> str:
        c = self.config
        if c.remote_tsap is not None:
            return f"{c.host}:{c.port} TSAP {c.remote_tsap}"
        return f"{c.host}:{c.port} rack {c.rack} slot {c.slot}"

    @property
    def tag_names(self) -> list[str]:
        return list(self.config.tags)

    async def connect(self) -> None:
        await self.close()
        client = self._new_client()
        local, remote = self.config.tsaps
        try:
            # python-snap7 derives the remote TSAP as type << 8 | rack << 5 | slot; any TSAP
            # splits that way, so a LOGO!'s 20.00 is "type" 0x20, rack 0, slot 0.
            client.set_connection_type(remote >> 8)
            client.local_tsap = local
            await asyncio.wait_for(
                client.connect(
                    self.config.host, (remote >> 5) & 0x07, remote & 0x1F, self.config.port
                ),
                self.config.timeout_s,
            )
            pdu_size = client.get_pdu_length()
            self.requests = pack_requests(self.ranges, pdu_size)
        except (TimeoutError, S7Error, OSError, ValueError) as exc:
            await _close(client, self.config.timeout_s)
            raise ConnectError(
                f"cannot connect to {self.endpoint}: {_connect_failure(exc)}"
            ) from None
        except asyncio.CancelledError:  # the agent stops during the connect: no socket left
            await asyncio.shield(_close(client, self.config.timeout_s))
            raise
        if client.connection is not None:
            client.connection.timeout = self.config.timeout_s
        self._client, self.pdu_size = client, pdu_size

    async def read(self) -> Reading:
        client = self._client
        if client is None or not client.get_connected() or _closed_by_peer(client):
            await self.connect()
        reading, out_of_range = await self._read_ranges()
        if out_of_range and self._read_apart(out_of_range):
            reading, _ = await self._read_ranges()
        return reading

    async def _read_ranges(self) -> tuple[Reading, set[int]]:
        """What every range gave, and the ranges answered with "address out of range"."""
        chunks: dict[int, dict[int, bytes]] = {}  # range -> first byte -> bytes read there
        failures: dict[int, str] = {}  # range -> why it could not be read
        out_of_range: set[int] = set()
        for request in self.requests:
            results = await self._exchange(request)
            for i, item in enumerate(request.items):
                if isinstance(results, str):  # the whole request was refused
                    failures.setdefault(item.range_index, results)
                elif results[i].ok:
                    chunks.setdefault(item.range_index, {})[item.start] = results[i].data
                else:
                    text = item_failure(results[i].code, item.area, item.db)
                    failures.setdefault(item.range_index, text)
                    if results[i].code == _OUT_OF_RANGE:
                        out_of_range.add(item.range_index)
        reading = Reading()
        for index, read_range in enumerate(self.ranges):
            if index in failures:
                text = f"{read_range.describe()}: {failures[index]}"
                reading.failed.update((name, text) for name, _ in read_range.tags)
            else:
                _decode(self._layouts[index], chunks[index], reading)
        return reading, out_of_range

    def _read_apart(self, indices: set[int]) -> bool:
        """Split these ranges into one per tag; False when none could be split."""
        ranges, new = split_refused(
            self.ranges,
            indices,
            lambda read_range: _apart(read_range, self.config),
            lambda read_range: (
                f"{self.name}: {read_range.describe()} is past the end of its area (0x05): its "
                f"{len(read_range.tags)} tags are read apart from now on, so that only the one "
                "at fault is bad"
            ),
        )
        if new:
            assert self.pdu_size is not None  # connected: the ranges were just read
            self.ranges = ranges
            self._layouts = [_layout(r, self.config) for r in ranges]
            self.requests = pack_requests(ranges, self.pdu_size)
        return bool(new)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await _close(client, self.config.timeout_s)

    async def _exchange(self, request: ReadRequest) -> list[ItemResult] | str:
        """One request and its answer: a result per item, or why the CPU refused them all."""
        assert self._client is not None
        self._sequence = self._sequence % 0xFFFF + 1
        pdu = read_request(self._sequence, request.items)
        try:
            answer = await asyncio.wait_for(
                self._client.iso_exchange_buffer(bytearray(pdu)), self.config.timeout_s
            )
            return parse_read_answer(bytes(answer), self._sequence, request.items)
        except RefusedRequest as exc:
            return str(exc)
        except (TimeoutError, S7TimeoutError):
            await self.close()
            raise ConnectError(
                f"{self.endpoint}: no answer within {self.config.timeout_s:g} s (timeout)"
            ) from None
        except (S7Error, OSError, MalformedAnswer) as exc:
            await self.close()  # what else arrives on this connection cannot be trusted either
            raise ConnectError(f"{self.endpoint}: {_short(exc)}") from None

    def _new_client(self) -> AsyncClient:
        client = AsyncClient()
        client.pdu_length = self.config.pdu_size  # asked for; the CPU may answer less
        return client


def build_ranges(config: S7DeviceConfig) -> list[ReadRange]:
    """The device's tags merged into read ranges (the same for every PDU size)."""
    return merge_ranges(_spans(config, config.tags), max_gap=config.max_gap_bytes)


def _apart(read_range: ReadRange, config: S7DeviceConfig) -> list[ReadRange]:
    names = [name for name, _ in read_range.tags]
    return merge_ranges(_spans(config, names), max_gap=-1)  # -1: only tags sharing bytes join


def _spans(config: S7DeviceConfig, names: Iterable[str]) -> list[TagSpan]:
    spans = []
    for name in names:
        location = config.tags[name].location
        spans.append(TagSpan(name, location.area, location.db, location.start, location.size))
    return spans


# Per tag of a range: name, address as written, where its bytes are, scale, offset, encoding.
_Layout = list[tuple[str, str, S7Location, float, float, str]]


def _layout(read_range: ReadRange, config: S7DeviceConfig) -> _Layout:
    layout: _Layout = []
    for name, _ in read_range.tags:
        tag = config.tags[name]
        encoding = tag.encoding or "latin-1"
        layout.append((name, tag.address, tag.location, tag.scale, tag.offset, encoding))
    return layout


def _decode(layout: _Layout, pieces: dict[int, bytes], reading: Reading) -> None:
    """Values of one range's tags from the pieces of it that were read (keyed by first byte)."""
    data = b"".join(pieces[start] for start in sorted(pieces))
    base = min(pieces)
    for name, address, location, scale, offset, encoding in layout:
        at = location.start - base
        try:
            value = decode(location, data[at : at + location.size], scale, offset, encoding)
        except DecodeError as exc:
            reading.failed[name] = f"{address}: {exc}"
            continue
        reading.values[name] = value


def _closed_by_peer(client: AsyncClient) -> bool:
    """The CPU (or a gateway) closed the connection since the last poll: an idle timeout, a
    restart. python-snap7 would notice only when the next read fails, making a good device look
    down for a poll; the stream's end of file is known as soon as it comes."""
    reader = getattr(client.connection, "_reader", None)
    return isinstance(reader, asyncio.StreamReader) and reader.at_eof()


async def _close(client: AsyncClient, timeout_s: float) -> None:
    # A peer that stopped reading must not hold the close either.
    with contextlib.suppress(TimeoutError, S7Error, OSError):
        await asyncio.wait_for(client.disconnect(), timeout_s)


def _short(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None:  # the library wraps the socket's error in its own
        if isinstance(cause, TimeoutError | S7TimeoutError):
            return "no answer (timeout)"
        if isinstance(cause, socket.gaierror):
            return f"{cause.strerror} (the host name)"
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno)
        if isinstance(cause, asyncio.IncompleteReadError):
            return "the PLC closed the connection"
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def _connect_failure(exc: BaseException) -> str:
    text = _short(exc)
    if text == "the PLC closed the connection":  # as CPUs do when rack, slot or TSAP is wrong
        text += (
            " while connecting: check rack and slot (S7-300: 0 and 2, S7-1200/1500: 0 and 1 "
            "or 0 and 0) or, for a LOGO!, the TSAPs"
        )
    return text
