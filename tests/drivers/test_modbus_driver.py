"""The Modbus driver over real sockets: an independent peer, our simulator on TCP, RTU and RTU/TCP."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from pymodbus import FramerType
from pymodbus.server import ModbusTcpServer

from drivers.modbus.config import ModbusDeviceConfig
from drivers.modbus.driver import ModbusDriver
from drivers.sim.server import SimulatedDevice, serve_rtu, serve_tcp
from edge_agent.errors import ConnectError
from tests.support.fixed_device import FIXED_TAGS, fixed_image
from tests.support.servers import NodeModbusPeer, free_port, serial_pair
from tests.support.split_reads import two_polls

EXPECTED = {name: value for name, (_, value) in FIXED_TAGS.items()}


def device(**kw: object) -> ModbusDeviceConfig:
    tags = kw.pop("tags", {name: spec for name, (spec, _) in FIXED_TAGS.items()})
    return ModbusDeviceConfig.model_validate(
        {"driver": "modbus", "host": "127.0.0.1", "timeout_s": 1, "tags": tags, **kw}
    )


async def read_once(config: ModbusDeviceConfig) -> tuple[dict[str, object], dict[str, str], int]:
    driver = ModbusDriver("dev", config)
    try:
        reading = await driver.read()
    finally:
        await driver.close()
    return reading.values, reading.failed, len(driver.requests)


async def test_independent_node_peer_every_type(modbus_peer: NodeModbusPeer) -> None:
    values, failed, requests = await read_once(device(port=modbus_peer.port))
    assert failed == {}
    assert values == EXPECTED
    # 19 tags in 4 tables: one request per table, because every hole between holding tags
    # (9, 14..19, 24..29) is within the default max_gap_registers of 8. 4 requests, not 19.
    assert requests == 4


async def test_naive_plan_needs_one_request_per_tag(modbus_peer: NodeModbusPeer) -> None:
    values, failed, requests = await read_once(
        device(port=modbus_peer.port, max_gap_registers=0, max_gap_bits=0)
    )
    assert values == EXPECTED and failed == {}
    # gaps of 0: holding splits at 9, 14..19, 24..29 → 0-8, 10-13, 20-23, 30; coils 0-1 and 7; di 1-2
    assert requests == 2 + 1 + 4 + 1


async def test_exception_marks_only_that_request_bad(modbus_peer: NodeModbusPeer) -> None:
    tags = {
        "ok": {"table": "holding", "address": 0, "type": "int16"},
        "beyond": {"table": "holding", "address": 60, "type": "uint16"},  # the peer has 0..39
        "ir": {"table": "input", "address": 3, "type": "float32"},
    }
    values, failed, _ = await read_once(device(port=modbus_peer.port, tags=tags))
    assert values == {"ok": -1234, "ir": 25.0}
    assert set(failed) == {"beyond"}
    assert "exception 2 illegal data address" in failed["beyond"]


async def test_a_register_past_the_end_leaves_its_neighbours_good(
    modbus_peer: NodeModbusPeer, caplog: pytest.LogCaptureFixture
) -> None:
    """The peer has holding registers 0..39. A tag at 40 joins the read of 36..39 and the peer
    refuses all of it (exception 2): the driver reads those tags apart, in that poll already."""
    tags = {
        "a": {"table": "holding", "address": 36, "type": "int16"},
        "b": {"table": "holding", "address": 38, "type": "uint32"},
        "beyond": {"table": "holding", "address": 40, "type": "uint16"},
        "ok": {"table": "holding", "address": 0, "type": "int16"},
    }
    alone = {}
    for name in ("a", "b"):
        values, failed, _ = await read_once(device(port=modbus_peer.port, tags={name: tags[name]}))
        assert failed == {}
        alone.update(values)
    driver = ModbusDriver("dev", device(port=modbus_peer.port, tags=tags))
    assert [r.describe() for r in driver.requests] == ["holding 0-0", "holding 36-40"]
    first, second, said = await two_polls(driver, caplog)
    assert first.values == second.values == {**alone, "ok": -1234}
    assert set(first.failed) == set(second.failed) == {"beyond"}
    assert first.failed["beyond"] == "holding 40-40: exception 2 illegal data address"
    assert [r.describe() for r in driver.requests] == [
        "holding 0-0",
        "holding 36-36",
        "holding 38-39",
        "holding 40-40",
    ]
    [line] = said
    assert line.startswith("dev: holding 36-40 answered exception 2 (illegal data address): its 3")


async def test_our_simulator_over_tcp_serves_the_same_words() -> None:
    port = free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
    try:
        values, failed, _ = await read_once(device(port=port))
    finally:
        await server.shutdown()
    assert failed == {} and values == EXPECTED


async def test_rtu_over_a_serial_line(tmp_path: Path) -> None:
    with serial_pair(tmp_path) as (agent_end, device_end):
        server = await serve_rtu(
            [SimulatedDevice(fixed_image(), unit_id=7)], device_end, baudrate=38400
        )
        try:
            config = device(
                transport="rtu", host=None, serial_port=agent_end, baudrate=38400, unit_id=7
            )
            values, failed, _ = await read_once(config)
        finally:
            await server.shutdown()
    assert failed == {} and values == EXPECTED


async def test_rtu_framed_over_tcp() -> None:
    port = free_port()
    server = ModbusTcpServer(
        [SimulatedDevice(fixed_image()).sim_device()],
        address=("127.0.0.1", port),
        framer=FramerType.RTU,
    )
    await server.serve_forever(background=True)
    try:
        values, failed, _ = await read_once(device(transport="rtu_over_tcp", port=port))
    finally:
        await server.shutdown()
    assert failed == {} and values == EXPECTED


async def test_refused_connection_is_a_connect_error() -> None:
    with pytest.raises(ConnectError, match="cannot connect"):
        await read_once(device(port=free_port()))


async def test_silent_device_times_out_as_a_connect_error() -> None:
    """A device that accepts TCP and never answers (a hung gateway)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ConnectError, match="timeout"):
            await read_once(device(port=port, timeout_s=0.3))
        assert asyncio.get_running_loop().time() - started < 2.0
    finally:
        listener.close()
