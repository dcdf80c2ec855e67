"""FINS/UDP and FINS/TCP links: one request in flight, its answer found by SID, stale ones dropped.

A link raises `ConnectError` (without the endpoint; the driver adds it) when the path to the PLC
failed: nothing listens, no answer in time, the connection closed, or bytes that are not FINS.
"""

from __future__ import annotations

__all__ = ["FinsLink", "Sids", "TcpLink", "UdpLink", "open_link"]

import asyncio
import dataclasses
import errno
import logging
import socket
import struct
from typing import Protocol

from drivers.fins.config import FinsDeviceConfig
from drivers.fins.end_codes import describe_tcp_error
from drivers.fins.frames import (
    TCP_CLIENT_NODE,
    TCP_FRAME,
    TCP_FRAME_ERROR,
    TCP_HEADER_SIZE,
    TCP_SERVER_NODE,
    FinsHeader,
    FinsResponse,
    MalformedFrame,
    parse_response,
    parse_tcp_header,
    tcp_frame,
)
from edge_agent.errors import ConnectError

_log = logging.getLogger(__name__)

UDP_ATTEMPTS = 3  # sends of one request over UDP, spread over timeout_s
_QUEUED_DATAGRAMS = 64


class FinsLink(Protocol):
    route: FinsHeader  # addresses of every command (its sid is unused)
    discarded: int  # answers that were not the one awaited (late, duplicated, not FINS)

    async def request(self, code: int, parameters: bytes) -> FinsResponse: ...

    @property
    def closed_by_peer(self) -> bool: ...

    def close(self) -> None: ...


async def open_link(config: FinsDeviceConfig, sids: Sids) -> FinsLink:
    if config.transport == "tcp":
        return await TcpLink.open(config, sids)
    return await UdpLink.open(config, sids)


class Sids:
    """Service ids 1..255 in turn, so an answer to an earlier request never matches a later one.

    One counter per device, kept across reconnects: a new UDP socket on the same local port (see
    local_port) still receives late answers to the old one's requests.
    """

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = self._last % 255 + 1
        return self._last


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | Exception] = asyncio.Queue(_QUEUED_DATAGRAMS)
        self.dropped = 0

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._put(data)

    def error_received(self, exc: Exception) -> None:
        self._put(exc)  # e.g. ICMP port unreachable: ConnectionRefusedError

    def connection_lost(self, exc: Exception | None) -> None:
        self._put(exc or ConnectionError("socket closed"))

    def _put(self, item: bytes | Exception) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1  # nobody awaits this many: they are stale by now


class UdpLink:
    """FINS/UDP from one local socket connected to the PLC's address and port."""

    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        datagrams: _Datagrams,
        route: FinsHeader,
        timeout_s: float,
        sids: Sids,
    ) -> None:
        self._transport = transport
        self._datagrams = datagrams
        self.route = route
        self._timeout_s = timeout_s
        self._sids = sids
        self.discarded = 0

    @classmethod
    async def open(cls, config: FinsDeviceConfig, sids: Sids) -> UdpLink:
        loop = asyncio.get_running_loop()
        local = ("0.0.0.0", config.local_port) if config.local_port else None
        try:
            transport, datagrams = await asyncio.wait_for(
                loop.create_datagram_endpoint(
                    _Datagrams,
                    local_addr=local,
                    remote_addr=(config.host, config.port),
                    family=socket.AF_INET,  # FINS/UDP is IPv4; node numbers come from its octets
                ),
                config.timeout_s,
            )
        except TimeoutError:
            raise ConnectError(f"cannot resolve {config.host} (timeout)") from None
        except OSError as exc:
            raise ConnectError(_os_error(exc, config.local_port)) from None
        try:
            route = FinsHeader(
                dna=config.dest_network,
                da1=_node(config.dest_node, transport.get_extra_info("peername")[0], "dest_node"),
                da2=config.dest_unit,
                sna=config.src_network,
                sa1=_node(config.src_node, transport.get_extra_info("sockname")[0], "src_node"),
                sa2=0,
            )
        except ConnectError:
            transport.close()
            raise
        return cls(transport, datagrams, route, config.timeout_s, sids)

    async def request(self, code: int, parameters: bytes) -> FinsResponse:
        loop = asyncio.get_running_loop()
        self._drain()  # whatever waits now answers an earlier request
        deadline = loop.time() + self._timeout_s
        sids: set[int] = set()
        for attempt in range(1, UDP_ATTEMPTS + 1):
            sid = self._sids.next()
            sids.add(sid)
            frame = dataclasses.replace(self.route, sid=sid).command(code, parameters)
            self._transport.sendto(frame)
            resend_at = loop.time() + self._timeout_s / UDP_ATTEMPTS
            until = deadline if attempt == UDP_ATTEMPTS else min(deadline, resend_at)
            # An answer to any send of this request will do: they asked the same question.
            response = await self._answer(sids, code, until)
            if response is not None:
                return response
        raise ConnectError(
            f"no answer (timeout {self._timeout_s:g} s, {UDP_ATTEMPTS} sends): check host, port "
            "and the PLC's FINS/UDP settings (node numbers, IP address conversion)"
        )

    @property
    def closed_by_peer(self) -> bool:
        return False  # nothing to close on UDP: a PLC that restarted answers the next datagram

    def close(self) -> None:
        self._transport.close()

    async def _answer(self, sids: set[int], code: int, until: float) -> FinsResponse | None:
        try:
            async with asyncio.timeout_at(until):
                while True:
                    item = await self._datagrams.queue.get()
                    if isinstance(item, Exception):
                        raise ConnectError(_os_error(item, 0))
                    try:
                        response = parse_response(item)
                    except MalformedFrame as exc:
                        self._discard(f"not a FINS response: {exc}")
                        continue
                    if response.header.sid in sids and response.code == code:
                        return response
                    self._discard(f"SID {response.header.sid}, command {response.code:04X}")
        except TimeoutError:
            return None

    def _drain(self) -> None:
        while not self._datagrams.queue.empty():
            item = self._datagrams.queue.get_nowait()
            if not isinstance(item, Exception):
                self._discard("answer after its request had timed out")

    def _discard(self, why: str) -> None:
        self.discarded += 1
        _log.debug("FINS/UDP: discarded a datagram (%s)", why)


class TcpLink:
    """FINS/TCP: one connection, node addresses exchanged when it opens."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        route: FinsHeader,
        timeout_s: float,
        sids: Sids,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.route = route
        self._timeout_s = timeout_s
        self._sids = sids
        self.discarded = 0

    @classmethod
    async def open(cls, config: FinsDeviceConfig, sids: Sids) -> TcpLink:
        try:
            async with asyncio.timeout(config.timeout_s):
                reader, writer = await asyncio.open_connection(
                    config.host, config.port, family=socket.AF_INET
                )
        except TimeoutError:
            raise ConnectError(f"no connection within {config.timeout_s:g} s") from None
        except OSError as exc:
            raise ConnectError(_os_error(exc, 0)) from None
        try:
            async with asyncio.timeout(config.timeout_s):
                client, server = await _handshake(reader, writer, config.src_node or 0)
        except TimeoutError:
            writer.close()
            raise ConnectError(
                f"no answer to the FINS/TCP node address request within {config.timeout_s:g} s"
            ) from None
        except BaseException:
            writer.close()
            raise
        route = FinsHeader(
            dna=config.dest_network,
            da1=server if config.dest_node is None else config.dest_node,
            da2=config.dest_unit,
            sna=config.src_network,
            sa1=client,
            sa2=0,
        )
        _log.debug("FINS/TCP %s: node %d, PLC node %d", config.host, client, server)
        return cls(reader, writer, route, config.timeout_s, sids)

    async def request(self, code: int, parameters: bytes) -> FinsResponse:
        sid = self._sids.next()
        frame = dataclasses.replace(self.route, sid=sid).command(code, parameters)
        try:
            async with asyncio.timeout(self._timeout_s):
                self._writer.write(tcp_frame(TCP_FRAME, frame))
                await self._writer.drain()
                while True:
                    response = await self._next_response()
                    if response.header.sid == sid and response.code == code:
                        return response
                    self.discarded += 1
                    _log.debug("FINS/TCP: discarded SID %d (awaiting %d)", response.header.sid, sid)
        except TimeoutError:
            raise ConnectError(f"no answer (timeout {self._timeout_s:g} s)") from None
        except asyncio.IncompleteReadError:
            raise ConnectError("the PLC closed the connection") from None
        except OSError as exc:
            raise ConnectError(_os_error(exc, 0)) from None

    @property
    def closed_by_peer(self) -> bool:
        """The PLC closed the connection since the last request (an idle timeout, a restart):
        asyncio keeps it half-open, and the next request on it would fail."""
        return self._reader.at_eof() or self._writer.is_closing()

    def close(self) -> None:
        self._writer.close()

    async def _next_response(self) -> FinsResponse:
        command, error_code, payload = await _read_tcp_frame(self._reader)
        if error_code:
            raise ConnectError(describe_tcp_error(error_code))
        if command == TCP_FRAME_ERROR:
            raise ConnectError("the PLC could not deliver the FINS frame (FINS/TCP command 3)")
        if command != TCP_FRAME:
            raise ConnectError(f"unexpected FINS/TCP command {command}")
        try:
            return parse_response(payload)
        except MalformedFrame as exc:
            raise ConnectError(f"malformed answer: {exc}") from None


async def _handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wanted: int
) -> tuple[int, int]:
    """Ask for a client node address (0: the PLC chooses); the PLC's answer and its own node."""
    try:
        writer.write(tcp_frame(TCP_CLIENT_NODE, wanted.to_bytes(4, "big")))
        await writer.drain()
        command, error_code, payload = await _read_tcp_frame(reader)
    except asyncio.IncompleteReadError:
        raise ConnectError(
            "the PLC closed the connection during the node address request"
        ) from None
    except OSError as exc:
        raise ConnectError(_os_error(exc, 0)) from None
    if error_code:
        raise ConnectError(describe_tcp_error(error_code))
    if command != TCP_SERVER_NODE or len(payload) < 8:
        raise ConnectError(
            f"malformed node address answer (command {command}, {len(payload)} bytes)"
        )
    client, server = struct.unpack_from(">II", payload)
    if not (1 <= client <= 254 and 0 <= server <= 254):
        raise ConnectError(f"the PLC gave node addresses out of range ({client}, {server})")
    return client, server


async def _read_tcp_frame(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """Command, error code and payload of the next FINS/TCP frame, however TCP splits it."""
    try:
        header = parse_tcp_header(await reader.readexactly(TCP_HEADER_SIZE))
    except MalformedFrame as exc:
        raise ConnectError(f"malformed answer: {exc}") from None
    payload = await reader.readexactly(header.length - 8)
    return header.command, header.error_code, payload


def _node(configured: int | None, ip: str, option: str) -> int:
    """The configured node, or the last number of the IPv4 address as automatic setting does."""
    if configured is not None:
        return configured
    last = int(ip.rsplit(".", 1)[-1])
    if not 1 <= last <= 254:
        raise ConnectError(f"cannot take {option} from {ip} (last number {last}): set {option}")
    return last


def _os_error(exc: BaseException, local_port: int) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused (nothing listens on that port)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror})"
    if local_port and getattr(exc, "errno", None) == errno.EADDRINUSE:
        return f"local port {local_port} is in use (by another device of this agent or a program)"
    return str(exc) or type(exc).__name__
