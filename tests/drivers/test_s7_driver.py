"""The S7 driver over real sockets.

Against python-snap7's S7 server (an independent implementation, not ours): every type and address
form, merged reads counted on the wire, strings larger than one answer, a DB that does not exist, a
CPU switched off, one that stops answering, and the simulated press. Against a few lines of our own
in this file, only what that server cannot do: refuse a request in the header (PUT/GET not
permitted), and show the TSAPs a connection asks for.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from snap7.server import Server
from snap7.type import SrvArea

from drivers.s7.config import S7DeviceConfig
from drivers.s7.driver import S7Driver
from drivers.s7.sim import PRESS_TAGS, press_reader, serve_press
from drivers.sim.press import FAULTS, PressModel
from edge_agent.errors import ConnectError
from tests.support.s7_relay import S7Relay
from tests.support.servers import free_port
from tests.support.split_reads import two_polls


def _db1() -> bytearray:
    """DB1 as a CPU holds it, written with struct, not with the driver's codec."""
    db = bytearray(60)
    db[0] = 0b1010_0101  # DBX0.0, 0.2, 0.5, 0.7 set
    db[1] = 200
    struct.pack_into(">h", db, 2, -1234)
    struct.pack_into(">H", db, 4, 0xBEEF)
    struct.pack_into(">i", db, 6, -123456789)
    struct.pack_into(">I", db, 10, 4_000_000_000)
    struct.pack_into(">f", db, 14, 25.5)
    struct.pack_into(">i", db, 18, -90_500)  # TIME T#-1M30S500MS
    db[22] = ord("Z")
    db[24:36] = bytes([10, 7]) + b"Press 1" + bytes(3)  # STRING[10]
    db[36:48] = struct.pack(">HH", 4, 4) + "冲床P2".encode("utf-16-be")  # WSTRING[4]
    struct.pack_into(">f", db, 48, float("nan"))
    struct.pack_into(">h", db, 52, 215)
    return db


def _db2() -> bytearray:
    """A STRING[254] (256 bytes: more than one answer carries at PDU 240) and an INT after it."""
    db = bytearray(300)
    text = ("0123456789" * 20).encode()
    db[0:256] = bytes([254, len(text)]) + text.ljust(254, b"\x00")
    struct.pack_into(">h", db, 256, 4242)
    return db


def _areas() -> dict[tuple[SrvArea, int], bytearray]:
    flags = bytearray(64)
    flags[10] = 0b10
    flags[11] = 7
    struct.pack_into(">h", flags, 20, -2)
    struct.pack_into(">f", flags, 30, 3.25)
    struct.pack_into(">d", flags, 40, -0.125)  # LREAL, 8 bytes from MB40
    struct.pack_into(">q", flags, 48, -(2**40))  # LINT
    struct.pack_into(">q", flags, 56, 2_500_000_000)  # LTIME, ns
    inputs = bytearray(128)
    inputs[0], inputs[1] = 0b1, 0x5A
    struct.pack_into(">i", inputs, 4, 100_000)
    struct.pack_into(">h", inputs, 64, 27648)
    outputs = bytearray(16)
    outputs[0] = 0b1000_0001
    struct.pack_into(">h", outputs, 2, 1000)
    return {
        (SrvArea.DB, 1): _db1(),
        (SrvArea.DB, 2): _db2(),
        (SrvArea.MK, 0): flags,
        (SrvArea.PE, 0): inputs,
        (SrvArea.PA, 0): outputs,
    }


# name: (tag as written in the configuration, value the driver must read)
EVERY_TYPE: dict[str, tuple[dict[str, object], object]] = {
    "db_x0_0": ({"address": "DB1.DBX0.0"}, True),
    "db_x0_1": ({"address": "DB1.DBX 0.1"}, False),
    "db_x0_2": ({"address": "%DB1.DBX0.2", "type": "bool"}, True),
    "db_x0_7": ({"address": "db1.dbx0.7"}, True),
    "db_byte": ({"address": "DB1.DBB1"}, 200),
    "db_usint": ({"address": "DB1.DBB1", "type": "usint"}, 200),
    "db_sint": ({"address": "DB1.DBB1", "type": "sint"}, -56),
    "db_int": ({"address": "DB1.DBW2"}, -1234),
    "db_uint": ({"address": "DB1.DBW4", "type": "uint"}, 48879),
    "db_word": ({"address": "DB1.DBW4", "type": "word"}, 48879),
    "db_dint": ({"address": "DB1.DBD6", "type": "dint"}, -123456789),
    "db_udint": ({"address": "DB1.DBD10", "type": "udint"}, 4_000_000_000),
    "db_dword": ({"address": "DB1.DBD10", "type": "dword"}, 4_000_000_000),
    "db_real": ({"address": "DB1.DBD14", "type": "real"}, 25.5),
    "db_time": ({"address": "DB1.DBD18", "type": "time"}, -90.5),
    "db_char": ({"address": "DB1.DBB22", "type": "char"}, "Z"),
    "db_string": ({"address": "DB1.DBS24", "length": 10}, "Press 1"),
    "db_string_b": ({"address": "DB1.DBB24", "type": "string", "length": 10}, "Press 1"),
    "db_wstring": ({"address": "DB1.DBB36", "type": "wstring", "length": 4}, "冲床P2"),
    "db_scaled": ({"address": "DB1.DBW52", "scale": 0.1, "offset": 1.0}, 22.5),
    "v_word": ({"address": "VW2"}, -1234),
    "v_bit": ({"address": "V0.5"}, True),
    "m_bit": ({"address": "M10.1"}, True),
    "m_byte": ({"address": "MB11"}, 7),
    "m_word": ({"address": "MW20"}, -2),
    "m_real": ({"address": "MD30", "type": "real"}, 3.25),
    "m_lreal": ({"address": "MB40", "type": "lreal"}, -0.125),
    "m_lint": ({"address": "MB48", "type": "lint"}, -(2**40)),
    "m_ltime": ({"address": "MB56", "type": "ltime"}, 2.5),
    "i_bit": ({"address": "I0.0"}, True),
    "e_bit": ({"address": "E0.0"}, True),
    "i_byte": ({"address": "IB1"}, 0x5A),
    "e_byte": ({"address": "EB1"}, 0x5A),
    "i_dint": ({"address": "ID4", "type": "dint"}, 100_000),
    "i_word": ({"address": "IW64"}, 27648),
    "e_word": ({"address": "EW64"}, 27648),
    "q_bit": ({"address": "Q0.7"}, True),
    "a_bit": ({"address": "A0.0"}, True),
    "q_bit_off": ({"address": "Q0.1"}, False),
    "q_word": ({"address": "QW2"}, 1000),
    "a_word": ({"address": "AW2"}, 1000),
}
EXPECTED = {name: value for name, (_, value) in EVERY_TYPE.items()}


@pytest.fixture(scope="module")
def plc() -> Iterator[int]:
    """python-snap7's S7 server with the areas above; yields its port."""
    logging.getLogger("snap7").setLevel(logging.CRITICAL)  # it warns on each missing DB read
    server = Server(log=False)
    for (area, number), data in _areas().items():
        server.register_area(area, number, data)
    port = free_port()
    server.start_to("127.0.0.1", port)
    yield port
    server.stop()


@pytest.fixture
async def relay(plc: int) -> AsyncIterator[S7Relay]:
    relay = S7Relay(plc)
    await relay.start()
    yield relay
    await relay.close()


def device(port: int, **kw: object) -> S7DeviceConfig:
    tags = kw.pop("tags", {name: spec for name, (spec, _) in EVERY_TYPE.items()})
    return S7DeviceConfig.model_validate(
        {"driver": "s7", "host": "127.0.0.1", "port": port, "timeout_s": 1, "tags": tags, **kw}
    )


async def test_every_type_and_address_form_in_one_request(relay: S7Relay) -> None:
    driver = S7Driver("plc", device(relay.port))
    try:
        reading = await driver.read()
        assert reading.failed == {}
        assert reading.values == pytest.approx(EXPECTED)
        assert {k: type(v) for k, v in reading.values.items()} == {
            k: type(v) for k, v in EXPECTED.items()
        }
        # 41 tags in DB1, M, I (twice: IW64 is 58 bytes past ID4) and Q: 5 items, 1 request
        assert driver.pdu_size == 480  # the server's most
        assert [len(r.items) for r in driver.requests] == [5]
        jobs_before = relay.log.read_jobs
        await driver.read()
        assert relay.log.read_jobs - jobs_before == 1  # per poll, counted on the wire
    finally:
        await driver.close()
    # read-only on the wire: the connection's setup (0xF0), then reads (0x04), nothing else
    assert set(relay.log.functions) == {0xF0, 0x04}


async def test_without_gaps_more_items_still_one_request(relay: S7Relay) -> None:
    driver = S7Driver("plc", device(relay.port, max_gap_bytes=0))
    try:
        reading = await driver.read()
    finally:
        await driver.close()
    assert reading.failed == {} and reading.values == pytest.approx(EXPECTED)
    # DB1 0-22, 24-47, 52-53; M 10-11, 20-21, 30-33, 40-63; I 0-1, 4-7, 64-65; Q 0, 2-3
    assert [len(r.items) for r in driver.requests] == [12]
    assert relay.log.items_asked == 12


async def test_pdu_240_splits_a_long_string_and_every_answer_fits(relay: S7Relay) -> None:
    tags = {name: spec for name, (spec, _) in EVERY_TYPE.items()}
    tags["long_text"] = {"address": "DB2.DBS0", "length": 254}
    tags["after_text"] = {"address": "DB2.DBW256"}
    driver = S7Driver("plc", device(relay.port, pdu_size=240, tags=tags))
    try:
        reading = await driver.read()
    finally:
        await driver.close()
    assert reading.failed == {}
    assert reading.values["long_text"] == "0123456789" * 20
    assert reading.values["after_text"] == 4242
    assert {k: reading.values[k] for k in EXPECTED} == pytest.approx(EXPECTED)
    assert driver.pdu_size == 240
    # DB2 0-257 is 222 + 36 bytes; the 222 fill an answer alone, the rest shares one with
    # DB1, M, I (2) and Q
    assert [len(r.items) for r in driver.requests] == [6, 1]
    assert relay.log.read_jobs == 2
    assert relay.log.max_answer_pdu == 240  # exactly full, never over
    assert relay.log.max_request_pdu <= 240


async def test_missing_db_and_reads_past_the_end_fail_only_their_tags(relay: S7Relay) -> None:
    tags = {
        "count": {"address": "DB1.DBD6", "type": "dint"},
        "ghost": {"address": "DB9.DBW0"},
        "ghost_bit": {"address": "DB9.DBX2.0"},
        "past_end": {"address": "DB1.DBW100"},
        "flag": {"address": "M10.1"},
    }
    driver = S7Driver("plc", device(relay.port, tags=tags))
    try:
        reading = await driver.read()
        assert reading.values == {"count": -123456789, "flag": True}
        assert reading.failed["ghost"] == (
            "DB9 bytes 0-2: DB9 does not exist in the CPU (0x0A): check the DB number"
        )
        assert reading.failed["ghost_bit"] == reading.failed["ghost"]
        assert reading.failed["past_end"].startswith(
            "DB1 bytes 100-101: address out of range (0x05): the area is shorter than this read"
        )
        assert "untick 'Optimized block access'" in reading.failed["past_end"]
        assert len(driver.requests) == 1  # all in one request; the CPU answers item by item
        assert (await driver.read()).values == reading.values  # the connection stays usable
    finally:
        await driver.close()


async def test_a_tag_past_the_end_of_its_db_leaves_its_neighbours_good(
    relay: S7Relay, caplog: pytest.LogCaptureFixture
) -> None:
    """DB1 is 60 bytes. A tag at byte 60 touches the last word and joins its read; the CPU
    refuses the whole read (0x05), and the driver reads those tags apart from then on."""
    tags = {
        "count": {"address": "DB1.DBD6", "type": "dint"},
        "scaled": {"address": "DB1.DBW52"},
        "speed": {"address": "DB1.DBD56", "type": "real"},  # the last 4 bytes, zero
        "past_end": {"address": "DB1.DBW60"},
        "flag": {"address": "M10.1"},
    }
    driver = S7Driver("plc", device(relay.port, tags=tags, max_gap_bytes=0))
    reading, again, said = await two_polls(driver, caplog)
    try:
        expected = {"count": -123456789, "scaled": 215, "speed": 0.0, "flag": True}
        assert reading.values == again.values == expected
        assert set(reading.failed) == set(again.failed) == {"past_end"}
        assert reading.failed["past_end"].startswith("DB1 bytes 60-61: address out of range (0x05)")
        assert said == [
            "plc: DB1 bytes 56-61 is past the end of its area (0x05): its 2 tags are read apart "
            "from now on, so that only the one at fault is bad"
        ]
        assert [r.describe() for r in driver.ranges] == [
            "DB1 bytes 6-9",
            "DB1 bytes 52-53",
            "DB1 bytes 56-59",
            "DB1 bytes 60-61",
            "M byte 10",
        ]
        assert set((await driver.read()).failed) == {"past_end"}  # kept apart after a reconnect
    finally:
        await driver.close()


async def test_nan_is_no_value(relay: S7Relay) -> None:
    tags = {"nan": {"address": "DB1.DBD48", "type": "real"}, "w": {"address": "DB1.DBW52"}}
    driver = S7Driver("plc", device(relay.port, tags=tags))
    try:
        reading = await driver.read()
    finally:
        await driver.close()
    assert reading.values == {"w": 215}
    assert reading.failed == {"nan": "DB1.DBD48: real is nan"}


async def test_refused_connection_then_recovery() -> None:
    port = free_port()
    driver = S7Driver("plc", device(port, tags={"w": {"address": "DB1.DBW2"}}))
    with pytest.raises(ConnectError, match=f"cannot connect to 127.0.0.1:{port} rack 0 slot 1"):
        await driver.read()
    server = Server(log=False)
    server.register_area(SrvArea.DB, 1, _db1())
    server.start_to("127.0.0.1", port)
    try:
        assert (await driver.read()).values == {"w": -1234}
    finally:
        await driver.close()
        await asyncio.to_thread(server.stop)


async def test_cpu_switched_off_then_back(relay: S7Relay) -> None:
    driver = S7Driver("plc", device(relay.port, tags={"w": {"address": "DB1.DBW2"}}))
    try:
        assert (await driver.read()).values == {"w": -1234}
        await relay.cut()
        with pytest.raises(ConnectError, match=r"127\.0\.0\.1"):
            await driver.read()
        with pytest.raises(ConnectError, match="cannot connect"):
            await driver.read()
        await relay.restore()
        assert (await driver.read()).values == {"w": -1234}
    finally:
        await driver.close()


async def test_cpu_that_stops_answering_times_out_and_stalls_no_one(
    relay: S7Relay, plc: int
) -> None:
    """The TCP link stays up, the answer never comes; another device on the same loop goes on."""
    silent = S7Driver("silent", device(relay.port, timeout_s=0.5))
    healthy = S7Driver("healthy", device(plc))
    await silent.read()
    relay.freeze()
    polls: list[float] = []

    async def poll_healthy(until: asyncio.Task[object]) -> None:
        while not until.done():
            assert (await healthy.read()).failed == {}
            polls.append(time.monotonic())
            await asyncio.sleep(0.01)

    loop = asyncio.get_running_loop()
    started = loop.time()
    hung = asyncio.create_task(silent.read())
    try:
        await poll_healthy(hung)
        with pytest.raises(ConnectError, match=r"no answer within 0\.5 s \(timeout\)"):
            await hung
        elapsed = loop.time() - started
    finally:
        await silent.close()
        await healthy.close()
    assert 0.45 <= elapsed < 1.0
    assert len(polls) >= 10  # every 10 ms or so while the other waited
    assert max(b - a for a, b in itertools.pairwise(polls)) < 0.2


async def test_tcp_accepted_but_no_iso_connection_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        driver = S7Driver("plc", device(listener.getsockname()[1], timeout_s=0.3))
        started = time.monotonic()
        with pytest.raises(ConnectError, match=r"cannot connect.*timeout"):
            await driver.read()
        assert time.monotonic() - started < 1.0


# ------------------------------------------------------ our own few lines: what snap7 cannot do


class FakeCpu:
    """Accepts the ISO connection (recording its TSAPs), negotiates PDU 240, refuses reads.

    With `wrong_slot` it closes the connection at the request, as CPUs do for a wrong rack/slot.
    """

    def __init__(self, refusal: int = 0x8104, *, wrong_slot: bool = False) -> None:
        self.refusal = refusal
        self.wrong_slot = wrong_slot
        self.tsaps: list[tuple[int, int]] = []  # (calling, called) of each connection request
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeCpu:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            cr = await self._frame(reader)
            self.tsaps.append(_tsaps(cr))
            if self.wrong_slot:
                writer.close()
                return
            cc = bytes([6 + 3, 0xD0, 0, 1, 0, 1, 0, 0xC0, 1, 0x0A])  # confirm, TPDU 1024
            writer.write(_tpkt(cc))
            while True:
                pdu = (await self._frame(reader))[3:]
                reference = struct.unpack_from(">H", pdu, 4)[0]
                if pdu[10] == 0xF0:  # setup communication: PDU 240
                    answer = struct.pack(">BBHHHHH", 0x32, 3, 0, reference, 8, 0, 0)
                    answer += struct.pack(">BBHHH", 0xF0, 0, 1, 1, 240)
                else:
                    answer = struct.pack(">BBHHHHH", 0x32, 3, 0, reference, 0, 0, self.refusal)
                writer.write(_tpkt(bytes([2, 0xF0, 0x80]) + answer))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    @staticmethod
    async def _frame(reader: asyncio.StreamReader) -> bytes:
        header = await reader.readexactly(4)
        return await reader.readexactly(struct.unpack_from(">H", header, 2)[0] - 4)


def _tpkt(payload: bytes) -> bytes:
    return struct.pack(">BBH", 3, 0, len(payload) + 4) + payload


def _tsaps(cr: bytes) -> tuple[int, int]:
    found: dict[int, int] = {}
    at = 7
    while at + 2 <= len(cr):
        code, size = cr[at], cr[at + 1]
        if size == 2:
            found[code] = struct.unpack_from(">H", cr, at + 2)[0]
        at += 2 + size
    return found[0xC1], found[0xC2]


async def test_put_get_not_permitted_fails_the_tags_not_the_link() -> None:
    async with FakeCpu(refusal=0x8104) as cpu:
        driver = S7Driver("plc", device(cpu.port, tags={"w": {"address": "DB1.DBW2"}}))
        try:
            reading = await driver.read()
            assert reading.values == {}
            assert reading.failed["w"].startswith(
                "DB1 bytes 2-3: the CPU refused the read (0x8104): PUT/GET is not permitted: "
                "in TIA Portal tick 'Permit access with PUT/GET communication"
            )
            await driver.read()
            assert len(cpu.tsaps) == 1  # one connection for both polls
        finally:
            await driver.close()


async def test_wrong_rack_or_slot_says_so() -> None:
    async with FakeCpu(wrong_slot=True) as cpu:
        driver = S7Driver("plc", device(cpu.port, slot=3, tags={"w": {"address": "MW0"}}))
        with pytest.raises(ConnectError) as exc:
            await driver.read()
    assert str(exc.value) == (
        f"cannot connect to 127.0.0.1:{cpu.port} rack 0 slot 3: the PLC closed the connection "
        "while connecting: check rack and slot (S7-300: 0 and 2, S7-1200/1500: 0 and 1 or 0 and 0) "
        "or, for a LOGO!, the TSAPs"
    )


@pytest.mark.parametrize(
    ("settings", "tsaps", "endpoint"),
    [
        ({}, (0x0100, 0x0201), "rack 0 slot 1"),  # OP, S7-1200/1500
        ({"slot": 2, "connection_type": "pg"}, (0x0100, 0x0102), "rack 0 slot 2"),  # S7-300
        ({"rack": 1, "slot": 4, "connection_type": "s7_basic"}, (0x0100, 0x0324), "rack 1 slot 4"),
        ({"local_tsap": "10.00", "remote_tsap": "20.00"}, (0x1000, 0x2000), "TSAP 20.00"),  # LOGO!
    ],
)
async def test_tsaps_on_the_wire(
    settings: dict[str, object], tsaps: tuple[int, int], endpoint: str
) -> None:
    async with FakeCpu() as cpu:
        driver = S7Driver("plc", device(cpu.port, tags={"w": {"address": "VW0"}}, **settings))
        try:
            await driver.read()
        finally:
            await driver.close()
        assert cpu.tsaps == [tsaps]
        assert driver.endpoint == f"127.0.0.1:{cpu.port} {endpoint}"


# -------------------------------------------------------------------------- the simulated press


async def test_simulated_press() -> None:
    press = PressModel(seed=5, start_s=time.time() - 3600)
    sim = await serve_press(press, port=0, update_s=0.05)
    config = device(sim.port, tags=PRESS_TAGS)
    driver = S7Driver("press", config)
    try:
        first = await driver.read()
        await asyncio.sleep(1.5)  # more than one cycle of the press
        second = await driver.read()
    finally:
        await driver.close()
        await sim.stop()
    assert first.failed == {} and second.failed == {}
    values = second.values
    assert set(values) == set(PRESS_TAGS)
    assert values["fault_text"] == FAULTS.get(int(values["fault_code"] or 0), "")
    assert values["door_switch"] == values["door_closed"]
    assert values["drive_on"] == values["running"]
    assert 20.0 < values["spindle_temp_c"] < 90.0  # type: ignore[operator]
    assert values["total_count"] >= first.values["total_count"] > 0  # type: ignore[operator]
    assert values["good_count"] <= values["total_count"]  # type: ignore[operator]
    assert len(driver.requests) == 1
    assert sim.items_served >= 6  # 3 items per poll, seen by the server


def test_press_reader_reads_what_the_driver_would() -> None:
    press = PressModel(seed=5, start_s=0.0)
    press.advance(3600.0)
    reader = press_reader(device(102, tags=PRESS_TAGS))
    values = reader(press)
    assert set(values) == set(PRESS_TAGS)
    assert values["total_count"] == press.total
    assert values["fault_code"] == press.fault_code
    with pytest.raises(ValueError, match=r"DB2\.DBW0 is not served by the simulated press"):
        press_reader(device(102, tags={"x": {"address": "DB2.DBW0"}}))
    with pytest.raises(ValueError, match=r"DB1\.DBW60 is not served"):
        press_reader(device(102, tags={"x": {"address": "DB1.DBW60"}}))


async def test_simulator_port_in_use_is_an_os_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            await serve_press(PressModel(), port=taken.getsockname()[1])
    # snap7's server binds with SO_REUSEPORT: a second one would share the port, not fail
    first = await serve_press(PressModel(start_s=time.time()), port=free_port())
    try:
        with pytest.raises(OSError, match="in use"):
            await serve_press(PressModel(start_s=time.time()), port=first.port)
    finally:
        await first.stop()
