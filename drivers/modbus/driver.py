"""Modbus driver: TCP, RTU on a serial line, and RTU framed over TCP (serial gateways), via pymodbus.

Read-only by design: it issues function codes 1 to 4 and nothing else. One request is in flight per
connection, because many devices (and pymodbus's own server) answer only the first of several
requests sent together.

Tags close together are read in one request, across a few unused addresses. A device that answers
such a request with exception 2 (illegal data address) holds no register at one of those addresses:
a tag's, or one in a gap. The request's tags are then read apart, in that poll and from then on, so
that only a tag at fault is bad and the others keep their values.
"""

from __future__ import annotations

__all__ = ["ModbusDriver"]

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from drivers.apart import split_refused
from drivers.base import Reading
from drivers.modbus.codec import RequestDecoder, register_count
from drivers.modbus.config import ModbusDeviceConfig
from drivers.modbus.plan import ReadRequest, TagSpan, plan_requests
from edge_agent.errors import ConnectError

_EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
# A gateway that cannot reach its target answers for it: the device is down, not the data.
_LINK_EXCEPTIONS = {10, 11}
_ILLEGAL_ADDRESS = 2
_BIT_TABLES = ("coil", "discrete_input")
_TABLES = ("coil", "discrete_input", "holding", "input")
_FUNCTION_CODES = {"coil": 1, "discrete_input": 2, "holding": 3, "input": 4}


class ModbusDriver:
    """One Modbus device (one unit id on one connection)."""

    def __init__(self, name: str, config: ModbusDeviceConfig) -> None:
        self.name = name
        self.config = config
        self._plan(build_plan(config))
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None

    @property
    def endpoint(self) -> str:
        c = self.config
        if c.transport == "rtu":
            return f"{c.serial_port} unit {c.unit_id}"
        return f"{c.host}:{c.port} unit {c.unit_id}"

    @property
    def tag_names(self) -> list[str]:
        return list(self.config.tags)

    async def connect(self) -> None:
        await self.close()
        client = self._new_client()
        try:
            connected = await client.connect()
        except (OSError, ModbusException) as exc:
            client.close()
            raise ConnectError(f"cannot connect to {self.endpoint}: {exc}") from None
        if not connected:
            client.close()
            raise ConnectError(f"cannot connect to {self.endpoint}")
        self._client = client

    async def read(self) -> Reading:
        if self._client is None or not self._client.connected:
            await self.connect()
        reading = Reading()
        refused = [
            index
            for index, request in enumerate(self.requests)
            if await self._read_request(index, request, reading) == _ILLEGAL_ADDRESS
        ]
        if refused and (apart := self._read_apart(refused)):
            for index, request in apart:
                for name, _ in request.tags:
                    del reading.failed[name]  # the refusal of the request they were read in
                await self._read_request(index, request, reading)
        return reading

    def _plan(self, requests: list[ReadRequest]) -> None:
        self.requests = requests
        self._decoders = [
            RequestDecoder(request.count, request.tags, self.config.tags) for request in requests
        ]

    def _read_apart(self, refused: list[int]) -> list[tuple[int, ReadRequest]]:
        """Split the refused requests: the new ones with their places in the plan."""
        plan, new = split_refused(
            self.requests,
            refused,
            lambda request: _apart(request, self.config),
            lambda request: (
                f"{self.name}: {request.describe()} answered exception 2 (illegal data address): "
                f"its {len(request.tags)} tags are read apart from now on, so that only a tag at "
                "fault is bad"
            ),
        )
        if new:
            self._plan(plan)
        return [(i, plan[i]) for i in new]

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _read_request(self, index: int, request: ReadRequest, reading: Reading) -> int:
        """Read one request into `reading`; the device's exception code, 0 without one."""
        assert self._client is not None
        call = _call_for(self._client, request.table)
        try:
            response = await call(request.start, count=request.count, device_id=self.config.unit_id)
        except (TimeoutError, ModbusException, OSError) as exc:
            await self.close()
            raise ConnectError(f"{self.endpoint}: {request.describe()}: {_short(exc)}") from None
        if (malformed := _malformed(response, request.table)) is not None:
            await self.close()  # what else arrives on this connection cannot be trusted either
            raise ConnectError(f"{self.endpoint}: {request.describe()}: {malformed}")
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            text = f"{request.describe()}: exception {code} {_EXCEPTIONS.get(code, 'unknown')}"
            if code in _LINK_EXCEPTIONS:
                raise ConnectError(f"{self.endpoint}: {text}")
            for name, _ in request.tags:
                reading.failed[name] = text
            return code
        words: list[int] | list[bool] = (
            response.bits if request.table in _BIT_TABLES else response.registers
        )
        if len(words) < request.count:
            await self.close()
            raise ConnectError(
                f"{self.endpoint}: {request.describe()}: short answer ({len(words)} values)"
            )
        self._decode_into(index, request, words, reading)
        return 0

    def _decode_into(
        self, index: int, request: ReadRequest, words: list[Any], reading: Reading
    ) -> None:
        if request.table in _BIT_TABLES:
            for name, offset in request.tags:
                reading.values[name] = bool(words[offset])
            return
        self._decoders[index].decode(words, reading.values, reading.failed, request.describe())

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        c = self.config
        # retries=0 and reconnect_delay=0: the agent's runner owns retries and backoff.
        if c.transport == "rtu":
            assert c.serial_port is not None
            return AsyncModbusSerialClient(
                c.serial_port,
                framer=FramerType.RTU,
                baudrate=c.baudrate,
                parity=c.parity,
                stopbits=c.stopbits,
                bytesize=c.bytesize,
                timeout=c.timeout_s,
                retries=0,
                reconnect_delay=0,
            )
        assert c.host is not None
        framer = FramerType.RTU if c.transport == "rtu_over_tcp" else FramerType.SOCKET
        return AsyncModbusTcpClient(
            c.host, port=c.port, framer=framer, timeout=c.timeout_s, retries=0, reconnect_delay=0
        )


def build_plan(config: ModbusDeviceConfig) -> list[ReadRequest]:
    """The device's read requests, table by table, in a fixed order."""
    spans = _spans(config, config.tags)
    requests: list[ReadRequest] = []
    for table in _TABLES:
        bits = table in _BIT_TABLES
        requests += plan_requests(
            spans,
            table=table,
            max_gap=config.max_gap_bits if bits else config.max_gap_registers,
            max_count=config.max_bits_per_request if bits else config.max_registers_per_request,
        )
    return requests


def _apart(request: ReadRequest, config: ModbusDeviceConfig) -> list[ReadRequest]:
    spans = _spans(config, [name for name, _ in request.tags])
    # max_gap -1: only tags that share addresses stay in one request.
    return plan_requests(spans, table=request.table, max_gap=-1, max_count=request.count)


def _spans(config: ModbusDeviceConfig, names: Iterable[str]) -> list[TagSpan]:
    spans = []
    for name in names:
        tag = config.tags[name]
        spans.append(TagSpan(name, tag.table, tag.address - config.addressing, register_count(tag)))
    return spans


def _call_for(
    client: AsyncModbusTcpClient | AsyncModbusSerialClient, table: str
) -> Callable[..., Awaitable[Any]]:
    return {
        "coil": client.read_coils,
        "discrete_input": client.read_discrete_inputs,
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
    }[table]


def _malformed(response: Any, table: str) -> str | None:
    """Why a decoded answer cannot be the answer to a read of `table`, or None.

    pymodbus returns any well-formed frame with the right transaction id, even an answer to
    another function or an exception frame with code 0 (which means no exception): taken at face
    value, the first is wrong data with good quality, the second an error no metric counts. Other
    codes outside the standard's list stay a failure of that request only: old devices answer 7
    (negative acknowledge) and vendors define their own.
    """
    expected = _FUNCTION_CODES[table]
    if (function_code := response.function_code & 0x7F) != expected:
        return f"malformed answer: function code {function_code}, asked {expected}"
    if response.isError() and not response.exception_code:
        return "malformed answer: an exception frame with exception code 0"
    return None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "No response received" in text or isinstance(exc, asyncio.TimeoutError):
        return "no answer (timeout)"
    return text.replace("Modbus Error: ", "").strip("[] ")
