"""The FINS driver against our simulated PLC over real UDP and TCP sockets on loopback.

The simulator is our own code, written from the specification; that it speaks FINS as another
implementation understands it is shown in test_fins_peer.py (npm omron-fins reads from it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest

from drivers.fins import FinsDeviceConfig
from drivers.fins.driver import FinsDriver
from drivers.fins.frames import parse_response, parse_tcp_header, tcp_frame
from drivers.fins.sim import PRESS_MAP, FinsServer, fins_press_reader, serve_press
from drivers.sim.press import PressModel
from edge_agent.errors import ConnectError
from edge_agent.samples import Value
from tests.support.fins_fixed import FIXED_TAGS, fixed_memory
from tests.support.split_reads import two_polls

EXPECTED = {name: value for name, (_, value) in FIXED_TAGS.items()}
TRANSPORTS = pytest.mark.parametrize("transport", ["udp", "tcp"])


@pytest.fixture
async def plc() -> AsyncIterator[FinsServer]:
    server = FinsServer(fixed_memory(), node=1)  # answers node 1 only, as 127.0.0.1 implies
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


def device(port: int, transport: str, **kw: object) -> FinsDeviceConfig:
    tags = kw.pop("tags", {name: spec for name, (spec, _) in FIXED_TAGS.items()})
    return FinsDeviceConfig.model_validate(
        {
            "driver": "fins",
            "host": "127.0.0.1",
            "port": port,
            "transport": transport,
            "timeout_s": 1,
            "tags": tags,
            **kw,
        }
    )


def port_of(server: FinsServer, transport: str) -> int:
    return server.udp_port if transport == "udp" else server.tcp_port


def free_udp_and_tcp_port() -> int:
    """A port number free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")


async def read_once(config: FinsDeviceConfig) -> tuple[dict[str, Value], dict[str, str], int]:
    driver = FinsDriver("plc", config)
    try:
        reading = await driver.read()
    finally:
        await driver.close()
    return reading.values, reading.failed, len(driver.requests)


def rewrite(change: Callable[[bytearray], None]) -> Callable[[bytes], list[bytes]]:
    def mangle(response: bytes) -> list[bytes]:
        frame = bytearray(response)
        change(frame)
        return [bytes(frame)]

    return mangle


# ------------------------------------------------------------------------- values and plan


@TRANSPORTS
async def test_every_type_bits_bcd_and_strings(plc: FinsServer, transport: str) -> None:
    values, failed, requests = await read_once(device(port_of(plc, transport), transport))
    assert failed == {}
    assert values == EXPECTED
    # 24 tags in 8 areas: D0-D20 in one read (holes within max_gap_words 16), CIO0 and CIO100
    # apart (99 unused words), one each for W, H, A, E0, T and C. 9 reads, not 24.
    assert requests == 9
    assert len(plc.served) == 9
    assert all(read.end_code == 0 and read.code == 0x0101 for read in plc.served)


@TRANSPORTS
async def test_reads_on_the_server_are_the_planned_merged_ones(
    plc: FinsServer, transport: str
) -> None:
    config = device(port_of(plc, transport), transport, max_gap_words=0, max_words_per_request=4)
    driver = FinsDriver("plc", config)
    try:
        reading = await driver.read()
    finally:
        await driver.close()
    assert reading.values == EXPECTED and reading.failed == {}
    served = [(r.area_code, r.first, r.count) for r in plc.served]
    # DM in reads of at most 4 words without holes: D0-2, D3-4, D5-8, D9-11, D12-15, D16-18, D20.
    assert served[:7] == [
        (0x82, 0, 3),
        (0x82, 3, 2),
        (0x82, 5, 4),
        (0x82, 9, 3),
        (0x82, 12, 4),
        (0x82, 16, 3),
        (0x82, 20, 1),
    ]
    # then by area code: C and T share 89 (counters from 8000 hex), EM bank 0 A0, CIO B0 ...
    assert served[7:] == [
        (0x89, 5, 1),
        (0x89, 0x8007, 1),
        (0xA0, 100, 2),
        (0xB0, 0, 1),
        (0xB0, 100, 1),
        (0xB1, 20, 1),
        (0xB2, 5, 2),
        (0xB3, 100, 1),
    ]


@TRANSPORTS
async def test_a_tag_past_the_end_of_its_area_leaves_its_neighbours_good(
    plc: FinsServer, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The simulated CPU's A area ends at A959: a read of A958-A960 runs past it (1104) and is
    split into one read per tag, in that poll, so that A958 and A959 keep their values."""
    tags = {
        "a958": {"address": "A958", "type": "uint16"},
        "a959": {"address": "A959", "type": "uint16"},
        "beyond": {"address": "A960", "type": "uint16"},
        "ok": {"address": "D0"},
    }
    driver = FinsDriver("plc", device(port_of(plc, transport), transport, tags=tags))
    first, second, said = await two_polls(driver, caplog)
    assert first.values == second.values
    assert set(first.values) == {"a958", "a959", "ok"} and first.values["ok"] == -1234
    assert set(first.failed) == set(second.failed) == {"beyond"}
    assert first.failed["beyond"].startswith("A960: end code 1103")
    assert said == [
        "plc: A958-A960 runs beyond its area: its 3 tags are read apart from now on, so that "
        "only a tag at fault is bad"
    ]
    assert len(driver.requests) == 4


@TRANSPORTS
async def test_an_end_code_marks_only_the_tags_of_that_read(
    plc: FinsServer, transport: str
) -> None:
    tags = {
        "ok": {"address": "D0"},
        "beyond": {"address": "A1000"},  # the simulated CPU's A area ends at A959
        "no_bank": {"address": "E5_0"},  # it has EM banks 0 to 2
        "not_bcd": {"address": "D200", "type": "bcd16"},
        "also_ok": {"address": "CIO100", "type": "uint16"},
    }
    values, failed, _ = await read_once(device(port_of(plc, transport), transport, tags=tags))
    assert values == {"ok": -1234, "also_ok": 0x1234}
    assert failed == {
        "beyond": "A1000: end code 1103 address range error (the first word is beyond the area)",
        "no_bank": "E5_0: end code 1101 no such area in this PLC",
        "not_bcd": "D200: D200 is not BCD (0x12AF)",
    }


@TRANSPORTS
async def test_cpu_error_flags_leave_the_data_good(
    plc: FinsServer, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    plc.mangle = rewrite(lambda frame: frame.__setitem__(13, frame[13] | 0x40))  # end code 0040
    with caplog.at_level(logging.WARNING, logger="drivers.fins.driver"):
        values, failed, _ = await read_once(device(port_of(plc, transport), transport))
    assert values == EXPECTED and failed == {}
    assert "the PLC reports a non-fatal CPU error" in caplog.text


# ----------------------------------------------------------------------- answers not taken


async def test_a_late_udp_answer_to_the_previous_request_is_not_taken(plc: FinsServer) -> None:
    """Two one-word reads of the same command: only the SID tells their answers apart.

    timeout 1.5 s: sends at 0, 0.5, 1.0 s. The first read's first answer is held back until
    0.8 s, its resend is answered at once (0.5 s), so the second read starts at 0.5 s; its first
    send is answered at 1.2 s, its resend at once (1.0 s). The D0 answer arriving at 0.8 s falls
    into the CIO100 read and must be discarded.
    """
    plc.delays.extend([0.8, 0.0, 0.7])
    tags = {"d0": {"address": "D0"}, "cio": {"address": "CIO100", "type": "uint16"}}
    driver = FinsDriver("plc", device(plc.udp_port, "udp", tags=tags, timeout_s=1.5))
    try:
        reading = await driver.read()
        assert reading.values == {"d0": -1234, "cio": 0x1234}
        assert driver.discarded_answers == 1
        await asyncio.sleep(0.5)  # the CIO100 read's held-back answer arrives too
        reading = await driver.read()
        assert reading.values == {"d0": -1234, "cio": 0x1234}
        assert driver.discarded_answers == 2
    finally:
        await driver.close()


async def test_late_answers_after_a_timeout_are_not_taken_on_a_new_socket(
    plc: FinsServer,
) -> None:
    """With a fixed local port (old units answer only to 9600) the next socket gets them too."""
    tags = {"d0": {"address": "D0", "type": "uint16"}}
    config = device(
        plc.udp_port, "udp", tags=tags, timeout_s=1.2, local_port=free_udp_and_tcp_port()
    )
    # First read: sends at 0, 0.4, 0.8 s, answered at 1.4, 1.8, 2.2 s: too late. Second read:
    # sends at 1.2, 1.6, 2.0 s, the first answered at 2.0 s; the old answers of 1.4 and 1.8 s
    # (the old value) arrive while it waits.
    plc.delays.extend([1.4, 1.4, 1.4, 0.8, 0.8, 0.8])
    driver = FinsDriver("plc", config)
    try:
        with pytest.raises(ConnectError, match=r"no answer \(timeout 1.2 s, 3 sends\)"):
            await driver.read()
        plc.memory.write("D0", (2).to_bytes(2, "big"))
        reading = await driver.read()
        assert reading.values == {"d0": 2}
        assert driver.discarded_answers >= 2
    finally:
        await driver.close()


@TRANSPORTS
async def test_an_answer_with_an_earlier_sid_before_each_answer(
    plc: FinsServer, transport: str
) -> None:
    def earlier_sid_first(response: bytes) -> list[bytes]:
        stale = bytearray(response)
        stale[9] = (stale[9] - 1) % 256
        stale[14:] = b"\xff" * (len(stale) - 14)  # other data: taken, it would show
        return [bytes(stale), response]

    plc.mangle = earlier_sid_first
    driver = FinsDriver("plc", device(port_of(plc, transport), transport))
    try:
        reading = await driver.read()
    finally:
        await driver.close()
    assert reading.values == EXPECTED and reading.failed == {}
    assert driver.discarded_answers == 9


@TRANSPORTS
async def test_an_answer_of_the_wrong_length_is_a_connect_error(
    plc: FinsServer, transport: str
) -> None:
    plc.mangle = rewrite(lambda frame: frame.__delitem__(slice(15, None)))
    driver = FinsDriver("plc", device(port_of(plc, transport), transport))
    try:
        with pytest.raises(ConnectError, match=r"D0-D20: malformed answer: 1 bytes for 21 words"):
            await driver.read()
        plc.mangle = None
        assert (await driver.read()).values == EXPECTED
    finally:
        await driver.close()


async def test_fins_tcp_frames_split_into_small_pieces(plc: FinsServer) -> None:
    """A proxy passes the PLC's bytes on 3 at a time: the driver reassembles the frames."""

    async def relay(source: asyncio.StreamReader, sink: asyncio.StreamWriter, step: int) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while data := await source.read(4096):
                for i in range(0, len(data), step):
                    sink.write(data[i : i + step])
                    await sink.drain()
                    await asyncio.sleep(0.001)
        sink.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", plc.tcp_port)
        await asyncio.gather(relay(reader, up_writer, 4096), relay(up_reader, writer, 3))

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = proxy.sockets[0].getsockname()[1]
        values, failed, _ = await read_once(device(port, "tcp"))
    finally:
        proxy.close()
    assert values == EXPECTED and failed == {}


# ---------------------------------------------------------------------- nodes and handshake


async def test_udp_nodes_default_to_the_last_number_of_the_ip_addresses() -> None:
    server = FinsServer(fixed_memory(), node=5)
    await server.start("127.0.0.5", 0, "udp")  # a PLC at x.x.x.5 is node 5
    try:
        config = device(server.udp_port, "udp", host="127.0.0.5", tags={"t": {"address": "D0"}})
        values, failed, _ = await read_once(config)
    finally:
        await server.stop()
    assert values == {"t": -1234} and failed == {}
    assert (server.served[0].dest_node, server.served[0].source_node) == (5, 1)  # from 127.0.0.1


async def test_configured_nodes_are_sent(plc: FinsServer) -> None:
    config = device(plc.udp_port, "udp", dest_node=1, src_node=42, tags={"t": {"address": "D0"}})
    await read_once(config)
    assert (plc.served[0].dest_node, plc.served[0].source_node) == (1, 42)


async def test_tcp_nodes_come_from_the_handshake(plc: FinsServer) -> None:
    await read_once(device(plc.tcp_port, "tcp", tags={"t": {"address": "D0"}}))
    await read_once(device(plc.tcp_port, "tcp", src_node=9, tags={"t": {"address": "D0"}}))
    # the PLC chose node 254 for the first client, the second asked for 9
    assert [(r.dest_node, r.source_node) for r in plc.served] == [(1, 254), (1, 9)]


@TRANSPORTS
async def test_a_wrong_destination_node_is_a_connect_error(plc: FinsServer, transport: str) -> None:
    config = device(port_of(plc, transport), transport, dest_node=7)
    with pytest.raises(ConnectError, match="end code 0201 destination node not in network"):
        await read_once(config)


async def test_tcp_handshake_refusals_are_connect_errors(plc: FinsServer) -> None:
    with pytest.raises(ConnectError, match="00000024: the client and the server use the same"):
        await read_once(device(plc.tcp_port, "tcp", src_node=1))
    holder = FinsDriver("holder", device(plc.tcp_port, "tcp", src_node=5))
    await holder.connect()
    try:
        with pytest.raises(ConnectError, match="00000021: the specified node is already connected"):
            await read_once(device(plc.tcp_port, "tcp", src_node=5))
    finally:
        await holder.close()


@pytest.mark.parametrize(
    ("command", "error_code", "message"),
    [
        (2, 0x03, "FINS/TCP error 00000003: the command is not supported"),
        (2, 0x02, "FINS/TCP error 00000002: the data length is too long"),
        (3, 0x00, r"could not deliver the FINS frame \(FINS/TCP command 3\)"),
        (7, 0x00, "unexpected FINS/TCP command 7"),
    ],
)
async def test_fins_tcp_errors_in_answers_are_connect_errors(
    command: int, error_code: int, message: str
) -> None:
    """A PLC that does the handshake, then answers the first frame with a FINS/TCP error."""

    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readexactly(20)  # node address request
            writer.write(tcp_frame(1, bytes.fromhex("000000fe00000001")))
            header = parse_tcp_header(await reader.readexactly(16))
            await reader.readexactly(header.length - 8)
            writer.write(tcp_frame(command, b"", error_code))
            await writer.drain()
            await reader.read()  # until the driver hangs up
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectError, match=message):
            await read_once(device(port, "tcp", tags={"t": {"address": "D0"}}))
        await asyncio.wait_for(done.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()


# -------------------------------------------------------------------- dead and silent PLCs


@TRANSPORTS
async def test_dead_plc_is_a_connect_error_and_recovery_follows(transport: str) -> None:
    port = free_udp_and_tcp_port()
    driver = FinsDriver("plc", device(port, transport, tags={"t": {"address": "D0"}}))
    try:
        with pytest.raises(ConnectError, match="refused"):
            await driver.read()
        server = FinsServer(fixed_memory(), node=1)
        await server.start("127.0.0.1", port, transport)  # type: ignore[arg-type]
        try:
            assert (await driver.read()).values == {"t": -1234}
            await server.stop()  # the PLC goes away while connected
            with pytest.raises(ConnectError):
                await driver.read()
            await server.start("127.0.0.1", port, transport)  # type: ignore[arg-type]
            assert (await driver.read()).values == {"t": -1234}
        finally:
            await server.stop()
    finally:
        await driver.close()


@TRANSPORTS
async def test_a_plc_that_never_answers_times_out_within_timeout_s(
    plc: FinsServer, transport: str
) -> None:
    driver = FinsDriver("plc", device(port_of(plc, transport), transport, timeout_s=0.5))
    try:
        await driver.connect()  # the TCP handshake is answered
        plc.silent = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ConnectError, match=r"D0-D20: no answer \(timeout 0.5 s"):
            await driver.read()
        assert 0.45 <= loop.time() - started < 0.8
    finally:
        await driver.close()


async def test_a_tcp_listener_that_never_answers_the_handshake() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        config = device(listener.getsockname()[1], "tcp", timeout_s=0.4)
        started = asyncio.get_running_loop().time()
        with pytest.raises(ConnectError, match="no answer to the FINS/TCP node address request"):
            await read_once(config)
        assert asyncio.get_running_loop().time() - started < 0.8
    finally:
        listener.close()


# ---------------------------------------------------------------------------------- press


@TRANSPORTS
async def test_the_simulated_press_over_fins(transport: str) -> None:
    press = PressModel(seed=2, start_s=time.time())
    server = await serve_press(press, "127.0.0.1", 0, transport)  # type: ignore[arg-type]
    tags = {name: {"address": address, "type": kind} for name, (address, kind) in PRESS_MAP.items()}
    try:
        values, failed, requests = await read_once(
            device(port_of(server, transport), transport, tags=tags)
        )
    finally:
        await server.stop()
    assert failed == {} and set(values) == set(PRESS_MAP)
    assert requests == 3  # D0-D14, C0, CIO0
    assert isinstance(values["running"], bool) and values["door_closed"] in (True, False)
    assert 0 <= values["good_count"] <= values["total_count"]  # type: ignore[operator]
    assert values["stroke_counter16"] == values["total_count"] % 65536  # type: ignore[operator]
    assert 15.0 < values["spindle_temp_c"] < 90.0  # type: ignore[operator]
    assert 0 <= values["motor_current_da"] < 300  # type: ignore[operator]


def test_press_reader_without_sockets() -> None:
    tags = {name: {"address": address, "type": kind} for name, (address, kind) in PRESS_MAP.items()}
    read = fins_press_reader(device(9600, "udp", tags=tags))
    press = PressModel(seed=1, start_s=0.0)
    press.advance(600.0)
    values = read(press)
    assert values["total_count"] == press.total and values["good_count"] == press.good
    assert values["stroke_counter_bcd"] == press.total % 10000
    with pytest.raises(ValueError, match="does not serve E5_0"):
        fins_press_reader(device(9600, "udp", tags={"t": {"address": "E5_0"}}))


def test_responses_the_server_sends_parse() -> None:
    """The server's own answers, taken apart by the driver's parser: a write is refused."""
    server = FinsServer(fixed_memory())
    command = bytes.fromhex("800002000100000a000301028200000000010001")
    response = parse_response(server.answer(command) or b"")
    assert (response.code, response.end_code, response.header.sid) == (0x0102, 0x2101, 3)
