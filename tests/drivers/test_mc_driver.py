"""The MC protocol driver against our simulator (drivers/mc/sim.py) over real sockets.

The same memory is read from an independent implementation in test_mc_peer.py. Here: every type,
the request plan as the server counts it, end codes for part of the tags, and a link that is
refused, silent, garbled or cut.
"""

from __future__ import annotations

import asyncio
import random
import string
import struct
import time
from collections.abc import AsyncIterator, Callable

import pytest

from drivers.mc import McDeviceConfig, McTagConfig
from drivers.mc.address import DEVICES, format_address
from drivers.mc.codec import encode
from drivers.mc.config import tag_words
from drivers.mc.driver import McDriver
from drivers.mc.sim import PRESS_MAP, McSimulator, serve_press
from drivers.sim.press import PressModel
from edge_agent.errors import ConnectError
from edge_agent.samples import Value
from tests.support.mc_fixed import EXPECTED, TAGS, memory
from tests.support.servers import free_port
from tests.support.split_reads import two_polls


def device(port: int, **kw: object) -> McDeviceConfig:
    tags = kw.pop("tags", TAGS)
    return McDeviceConfig.model_validate(
        {"driver": "mc", "host": "127.0.0.1", "port": port, "timeout_s": 1, "tags": tags, **kw}
    )


@pytest.fixture
async def plc() -> AsyncIterator[McSimulator]:
    simulator = McSimulator(memory())
    await simulator.start()
    yield simulator
    await simulator.stop()


async def read_once(config: McDeviceConfig) -> tuple[dict[str, Value], dict[str, str]]:
    driver = McDriver("plc", config)
    try:
        reading = await driver.read()
    finally:
        await driver.close()
    return reading.values, reading.failed


async def test_every_type_in_few_requests(plc: McSimulator) -> None:
    config = device(plc.port)
    values, failed = await read_once(config)
    assert set(failed) == set()
    assert values == EXPECTED
    # 29 tags on 13 devices: one request per device, D0-D51 read across its gaps (default 128).
    assert [(r.device, r.head, r.points) for r in plc.seen] == [
        ("X", 0, 2),
        ("Y", 0, 1),
        ("M", 0, 7),
        ("L", 0, 1),
        ("B", 16, 1),
        ("SM", 400, 1),
        ("D", 0, 52),
        ("W", 0x1A, 1),
        ("R", 5, 1),
        ("ZR", 0x10, 1),
        ("SD", 100, 1),
        ("TN", 5, 1),
        ("CN", 3, 1),
    ]
    assert not any(r.bit_units for r in plc.seen)


async def test_without_gaps_more_requests(plc: McSimulator) -> None:
    values, failed = await read_once(device(plc.port, max_gap_words=0))
    assert values == EXPECTED and failed == {}
    d_reads = [(r.head, r.points) for r in plc.seen if r.device == "D"]
    assert d_reads == [(0, 7), (10, 4), (20, 4), (30, 1), (40, 1), (50, 2)]
    assert [(r.head, r.points) for r in plc.seen if r.device == "M"] == [(0, 1), (96, 1)]


async def test_words_per_request_limit_splits(plc: McSimulator) -> None:
    tags = {f"d{i}": {"address": f"D{i}", "type": "uint16"} for i in range(0, 1000, 10)}
    values, failed = await read_once(device(plc.port, tags=tags, max_words_per_request=500))
    assert failed == {} and len(values) == 100
    assert [(r.head, r.points) for r in plc.seen] == [(0, 491), (500, 491)]
    # at the 3E limit of 960 words: two requests, the second from D960
    plc.seen.clear()
    await read_once(device(plc.port, tags=tags))
    assert [(r.head, r.points) for r in plc.seen] == [(0, 951), (960, 31)]


async def test_an_end_code_fails_only_its_request(
    plc: McSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The simulated PLC has D0-D1023. A read past the end (C056) is split into one read per
    tag, in that poll, so that the last word before the end keeps its value."""
    tags = {
        "ok": {"address": "D0"},
        "last": {"address": "D1023", "type": "uint16"},
        "beyond": {"address": "D1024"},
        "beyond_too": {"address": "D1025", "type": "uint16"},
        "flag": {"address": "M10"},
    }
    driver = McDriver("plc", device(plc.port, tags=tags))
    first, second, said = await two_polls(driver, caplog)
    assert first.values == second.values == {"ok": -1234, "last": 0, "flag": True}
    assert set(first.failed) == set(second.failed) == {"beyond", "beyond_too"}
    assert first.failed["beyond"] == (
        "D1024: end code 0xC056: read past the last address of the device "
        "(check the address and the PLC's device sizes)"
    )
    assert [r.text for r in driver.requests] == ["M0-M15", "D0", "D1023", "D1024", "D1025"]
    [line] = said
    assert line.startswith("plc: D1023-D1025 is past the end of the device (end code 0xC056)")


async def test_nan_is_a_failed_value_not_a_number(plc: McSimulator) -> None:
    tags = {
        "nan": {"address": "D60", "type": "float32"},
        "ok": {"address": "D3", "type": "float32"},
    }
    values, failed = await read_once(device(plc.port, tags=tags))
    assert values == {"ok": 3.5}
    assert failed == {"nan": "D3-D61: float32 is nan"}


@pytest.mark.parametrize("seed", range(20))
async def test_random_tags_read_back_what_was_stored(seed: int) -> None:
    """Random tags of every type at random places, encoded into memory, read back over TCP."""
    rng = random.Random(seed)
    simulator = McSimulator({"D": [0] * 4096, "W": [0] * 4096, "M": [0] * 256, "X": [0] * 256})
    await simulator.start()
    tags, expected, next_free = {}, {}, {"D": 0, "W": 0, "M": 0, "X": 0}
    for i in range(rng.randint(1, 60)):
        area = rng.choice(list(next_free))
        bits = area in ("M", "X")
        kind = (
            "bool"
            if bits
            else rng.choice(
                ["int16", "uint16", "int32", "uint32", "float32", "float64", "string", "bool"]
            )
        )
        number = next_free[area] + rng.randint(0, 200)
        spec: dict[str, object] = {
            "address": format_address(DEVICES[area], number),
            "type": kind,
        }
        if kind == "bool" and not bits:
            spec["address"] = f"{spec['address']}.{rng.randint(0, 15):X}"
        if kind == "string":
            spec["length"] = rng.randint(1, 40)
        config = McTagConfig.model_validate(spec)
        value = _random_value(rng, config)
        if bits:
            simulator.set_bit(area, number, bool(value))
        else:
            bit = config.parsed("q").bit_in_word or 0
            simulator.set_words(area, number, encode(config, value, bit))
        next_free[area] = number + (1 if bits else tag_words(config))
        tags[f"t{i}"], expected[f"t{i}"] = spec, value
    try:
        limits = {
            "max_gap_words": rng.randint(0, 300),
            "max_words_per_request": rng.randint(50, 960),
        }
        values, failed = await read_once(device(simulator.port, tags=tags, **limits))
    finally:
        await simulator.stop()
    assert failed == {} and values == expected


def _random_value(rng: random.Random, config: McTagConfig) -> Value:
    kind = config.value_type
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "string":
        return "".join(
            rng.choice(string.ascii_letters + string.digits) for _ in range(config.length or 0)
        )
    if kind.startswith("float"):
        number = rng.uniform(-1e6, 1e6)
        return struct.unpack("<f", struct.pack("<f", number))[0] if kind == "float32" else number
    signed = not kind.startswith("u")
    width = 16 if kind.endswith("16") else 32
    low, high = (-(2 ** (width - 1)), 2 ** (width - 1) - 1) if signed else (0, 2**width - 1)
    return rng.randint(low, high)


async def test_iqr_frames() -> None:
    simulator = McSimulator(memory(), series="iqr")
    await simulator.start()
    try:
        values, failed = await read_once(device(simulator.port, series="iqr"))
    finally:
        await simulator.stop()
    assert failed == {} and values == EXPECTED


async def test_iqr_frames_to_a_q_cpu_name_the_setting(plc: McSimulator) -> None:
    values, failed = await read_once(device(plc.port, series="iqr", tags={"a": {"address": "D0"}}))
    assert values == {}
    assert failed == {
        "a": "D0: end code 0xC059: command or subcommand not supported by this CPU "
        "(check series: iqr only for iQ-R)"
    }


async def test_iqf_numbers_x_and_y_in_octal() -> None:
    simulator = McSimulator({"X": [0] * 4})
    simulator.set_bit("X", 15, True)  # the 16th input: X17 in GX Works3 on an FX5
    await simulator.start()
    try:
        tags = {"x17": {"address": "X17"}, "x16": {"address": "X16"}}
        values, failed = await read_once(device(simulator.port, series="iqf", tags=tags))
    finally:
        await simulator.stop()
    assert failed == {} and values == {"x17": True, "x16": False}


async def test_monitoring_timer_and_route_are_sent() -> None:
    frames: list[bytes] = []

    def answer(request: bytes) -> bytes:
        frames.append(request)
        return respond(request, 0, b"\x07\x00")

    async with scripted(answer) as port:
        config = device(
            port,
            tags={"a": {"address": "D0"}},
            timeout_s=2.5,
            network_no=1,
            pc_no=2,
            module_io=0x03E0,
            module_station=3,
        )
        values, _ = await read_once(config)
    assert values == {"a": 7}
    # 50 00 | network 1 | PC 2 | I/O 03E0 | station 3 | length 12 | timer 9 (2.25 s, inside the
    # 2.5 s timeout) | 0401 0000 | D0: number 000000, code A8 | 1 point
    assert frames == [bytes.fromhex("5000 01 02 e003 03 0c00 0900 0104 0000 000000 a8 0100")]


async def test_answers_in_pieces_one_request_in_flight() -> None:
    """Answers that arrive a byte at a time; the next request only after the last answer."""
    tags = {"a": {"address": "D0"}, "b": {"address": "W0"}, "c": {"address": "M3"}}
    server = scripted(lambda r: respond(r, 0, b"\x08\x00"), trickle=True)
    async with server as port:
        values, failed = await read_once(device(port, tags=tags))
    assert failed == {} and values == {"a": 8, "b": 8, "c": True}
    assert len(server.arrived) == len(server.sent) == 3
    assert all(server.arrived[i + 1] > server.sent[i] for i in range(2))


async def test_refused_then_recovers_when_the_plc_comes_back() -> None:
    port = free_port()
    driver = McDriver("plc", device(port, tags={"a": {"address": "D0"}}))
    with pytest.raises(ConnectError, match="cannot connect"):
        await driver.read()
    simulator = McSimulator(memory())
    await simulator.start(port=port)
    try:
        assert (await driver.read()).values == {"a": -1234}
        await simulator.stop()  # switched off mid-run: the open connection is cut
        with pytest.raises(ConnectError):
            await driver.read()
        await simulator.start(port=port)
        assert (await driver.read()).values == {"a": -1234}
    finally:
        await driver.close()
        await simulator.stop()


async def test_silent_plc_times_out_within_timeout_s() -> None:
    async with scripted(lambda request: None) as port:
        driver = McDriver("plc", device(port, timeout_s=0.3))
        started = time.monotonic()
        with pytest.raises(ConnectError, match=r"X0-X1F: no answer within 0.3 s \(timeout\)"):
            await driver.read()
        assert time.monotonic() - started < 0.6
        await driver.close()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            lambda r: b"HTTP/1.1 400 Bad Request\r\n\r\n",
            r"not a 3E binary answer \(subheader 48 54",
        ),
        (
            lambda r: b"\xd0\x00\x00\xff\xff\x03\x00\x06\x00\x00\x00\x01\x00\x02\x00",
            "holds 4 data bytes, expected 2",
        ),
        (
            lambda r: b"\xd0\x00\x00\xff\xff\x03\x00\xff\xff",
            "an answer of 65535 bytes to a read of 2 bytes",
        ),
        (
            lambda r: b"\xd0\x00\x00\xff\xff\x03\x00\x04\x00\x00\x00",
            "closed the connection after 11 bytes of an answer",
        ),
        (lambda r: b"\xd0\x00\x00\xff", "closed the connection after 4 bytes"),
        (lambda r: b"", "closed the connection without answering"),
        (lambda r: b"\xd0\x00\x00\xff\xff\x03\x00\x01\x00\x00", "has no end code"),
    ],
)
async def test_garbage_is_a_connect_error_and_the_connection_is_dropped(
    answer: Callable[[bytes], bytes], message: str
) -> None:
    connections: list[int] = []

    def garbled(request: bytes) -> bytes:
        connections.append(1)
        return answer(request)

    async with scripted(garbled, close_after=True) as port:
        driver = McDriver("plc", device(port, tags={"a": {"address": "D0"}}))
        for _ in range(2):  # a fresh connection each time, never a stale answer
            with pytest.raises(ConnectError, match=message):
                await driver.read()
        await driver.close()
    assert len(connections) == 2


async def test_cpu_timeout_end_code_is_a_link_failure() -> None:
    async with scripted(lambda r: respond(r, 0xC05E, r[2:7] + r[11:15])) as port:
        with pytest.raises(ConnectError, match="0xC05E: the Ethernet module got no answer"):
            await read_once(device(port, tags={"a": {"address": "D0"}}))


async def test_writes_are_refused_by_the_simulator(plc: McSimulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", plc.port)
    # batch write (1401) of one word to D0
    body = bytes.fromhex("0400 0114 0000 000000 a8 0100 3412")
    writer.write(bytes.fromhex("5000 00 ff ff03 00") + struct.pack("<H", len(body)) + body)
    answer = await reader.readexactly(20)
    writer.close()
    assert answer[:2] == b"\xd0\x00"
    assert struct.unpack_from("<HH", answer, 7) == (11, 0xC059)
    assert memory()["D"][0] == plc.memory["D"][0] == 0xFB2E


async def test_bit_units_read(plc: McSimulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", plc.port)
    # M9-M11 in bit units: 0 1 0 -> nibbles 0 1 | 0 (pad)
    body = bytes.fromhex("0400 0104 0100 090000 90 0300")
    writer.write(bytes.fromhex("5000 00 ff ff03 00") + struct.pack("<H", len(body)) + body)
    answer = await reader.readexactly(13)
    writer.close()
    assert answer[9:] == bytes.fromhex("0000 01 00")


async def test_press_over_mc() -> None:
    press = PressModel(seed=4, start_s=time.time() - 600)
    simulator = await serve_press(press, port=0)
    try:
        tags = {name: {"address": a, "type": t} for name, (a, t) in PRESS_MAP.items()}
        values, failed = await read_once(device(simulator.port, tags=tags))
    finally:
        await simulator.stop()
    assert failed == {}
    readings = press.readings()
    assert values["total_count"] == readings["total_count"] > 0
    assert values["good_count"] == readings["good_count"]
    assert values["running"] is readings["running"]
    assert values["door_closed"] is readings["door_closed"]
    assert 20 < values["spindle_temp_c"] < 90  # type: ignore[operator]
    assert len(simulator.seen) == 3  # X0-XF, M0-M15, D0-D14


# ------------------------------------------------------------------ a PLC that misbehaves on cue


def respond(request: bytes, end_code: int, data: bytes) -> bytes:
    """A 3E answer to `request` (its route echoed) with `end_code` and `data`."""
    payload = struct.pack("<H", end_code) + data
    return b"\xd0\x00" + request[2:7] + struct.pack("<H", len(payload)) + payload


class scripted:  # an async context manager, named as the call reads
    """A TCP server answering each 3E request with `answer(request)` (None: stay silent)."""

    def __init__(
        self,
        answer: Callable[[bytes], bytes | None],
        close_after: bool = False,
        trickle: bool = False,
    ) -> None:
        self.answer = answer
        self.close_after = close_after
        self.trickle = trickle  # send answers a byte at a time
        self.arrived: list[float] = []  # when each request was complete
        self.sent: list[float] = []  # when each answer was out

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(9)
                body = await reader.readexactly(struct.unpack_from("<H", header, 7)[0])
                self.arrived.append(time.monotonic())
                reply = self.answer(header + body)
                if reply is not None:
                    await self._send(writer, reply)
                    self.sent.append(time.monotonic())
                if self.close_after:
                    break
            await asyncio.sleep(0.05)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, reply: bytes) -> None:
        for i, chunk in enumerate([bytes([b]) for b in reply] if self.trickle else [reply]):
            if i:
                await asyncio.sleep(0.002)
            writer.write(chunk)
            await writer.drain()
