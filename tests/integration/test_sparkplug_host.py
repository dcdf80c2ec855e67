"""The Sparkplug B sink as a host application sees it, on a real mosquitto: every payload is read
by an independent decoder (Eclipse Tahu's npm sparkplug-payload, see tests/support/sparkplug_host).

Births with every metric, data by exception, seq 0-255 without a gap across NDATA and DDATA,
bdSeq matching between the NBIRTH and the NDEATH (the node's own at a clean stop, the broker's
will after kill -9), a rebirth on request, a primary host's STATE, and the records buffered while
there was no session delivered afterwards as history with their own times, before live data.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.web.view_model import page_state
from tests.integration.test_kill9 import start_agent
from tests.integration.test_pipeline import running, write_config
from tests.support.fixed_device import FIXED_TAGS, device_yaml, fixed_image
from tests.support.mqtt_capture import Received
from tests.support.numbered import NumberedDevice, numbered_yaml
from tests.support.servers import Mosquitto, free_port
from tests.support.sparkplug_host import HostApp, Seen, publish_state
from tests.support.switched_link import SwitchedLink

pytestmark = pytest.mark.integration

GROUP = "Plant1"
EXPECTED = {name: value for name, (_, value) in FIXED_TAGS.items()}
TAG_TYPES = {
    "bool": "Boolean",
    "int16": "Int16",
    "uint16": "UInt16",
    "uint32": "UInt32",
    "float32": "Float",
    "float64": "Double",
    "string": "String",
}


def sink_yaml(port: int, extra: str = "") -> str:
    return (
        "sinks:\n  uns:\n    type: sparkplug\n    host: 127.0.0.1\n"
        f"    port: {port}\n    group_id: {GROUP}\n    keepalive_s: 5\n{extra}"
    )


MACHINE = (
    "machines:\n  m1:\n    ideal_cycle_time_s: 1\n    oee_interval_s: 1\n"
    "    state: {running: 'plc.coil0'}\n"
    "alarms:\n  - {id: hot, type: limit, tag: plc.ir_f32, high: 20, machine: m1}\n"
)


def of_node(seen: list[Seen], node: str) -> list[Seen]:
    return [s for s in seen if s.node == node]


def count(kind: str, node: str, at_least: int) -> Callable[[list[Received]], bool]:
    """At least so many messages of `kind` (any kind: "") of the node, its devices' included."""

    def enough(messages: list[Received]) -> bool:
        parts = (m.topic.split("/") for m in messages)
        found = sum(1 for p in parts if p[1] == GROUP and p[3:4] == [node] and kind in ("", p[2]))
        return found >= at_least

    return enough


def bd_seq(message: Seen) -> int:
    return int(message.values()["bdSeq"])


def counter_values(
    seen: list[Seen], kinds: tuple[str, ...] = ("DBIRTH", "DDATA")
) -> list[tuple[int, int, bool]]:
    """(value, timestamp, historical) of the counter device's n, in the order they arrived."""
    return [
        (int(m.value), m.timestamp, m.historical)
        for s in seen
        if s.device == "counter" and s.kind in kinds
        for m in s.metrics
        if m.name == "n" and m.value is not None
    ]


@asynccontextmanager
async def press_line(
    broker_port: int, tmp_path: Path, sink_extra: str = ""
) -> AsyncIterator[tuple[Path, str, HostApp, NumberedDevice]]:
    """A machine on two devices (the fixed image, a counter polled 50 times a second) with an
    alarm, a Sparkplug sink, and a host reading it: (config, node, host, counter)."""
    plc_port, counter_port = free_port(), free_port()
    counter = NumberedDevice()
    servers = [
        await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", plc_port),
        await serve_tcp([counter.simulated()], "127.0.0.1", counter_port),
    ]
    path, node = write_config(
        tmp_path,
        "devices:\n"
        + device_yaml("plc", plc_port)
        + numbered_yaml("counter", counter_port, 0.02)
        + MACHINE
        + sink_yaml(broker_port, sink_extra),
    )
    host = HostApp(broker_port, GROUP, f"host-{node}")
    try:
        yield path, node, host, counter
    finally:
        host.close()
        for server in servers:
            await server.shutdown()


def newest_node_metrics(seen: list[Seen]) -> dict[str, object]:
    """Each node metric's last value in NBIRTH and NDATA messages."""
    metrics: dict[str, object] = {}
    for s in seen:
        if s.kind in ("NBIRTH", "NDATA"):
            metrics |= {m.name: m.value for m in s.metrics if m.value is not None}
    return metrics


async def test_births_data_by_exception_seq_and_a_clean_death(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with press_line(mosquitto.port, tmp_path) as (path, node, host, _counter):
        async with running(path):
            # Past 256 messages: seq wraps at least once.
            await asyncio.to_thread(host.capture.wait_for, count("", node, 300), 30)
        await asyncio.to_thread(host.capture.wait_for, count("NDEATH", node, 1), 5)
        seen = of_node(host.seen(), node)

    nbirth, *rest = seen
    assert (nbirth.kind, nbirth.seq) == ("NBIRTH", 0)
    assert {(s.kind, s.device, s.seq) for s in rest[:2]} == {
        ("DBIRTH", "plc", 1),
        ("DBIRTH", "counter", 2),
    }
    # The NBIRTH declares every node metric with its data type and an alias.
    declared = {m.name: m.datatype for m in nbirth.metrics}
    assert declared["bdSeq"] == "Int64" and declared["Node Control/Rebirth"] == "Boolean"
    assert nbirth.values()["Node Control/Rebirth"] is False
    for name, datatype in {
        "machines/m1/state": "String",
        "machines/m1/state_code": "Int32",
        "machines/m1/last_stop/duration_s": "Double",
        "machines/m1/oee/hour/oee": "Double",
        "machines/m1/oee/hour/total_count": "Int64",
        "machines/m1/oee/hour/start": "DateTime",
        "alarms/hot/state": "String",
        "alarms/hot/active": "Boolean",
        "alarms/hot/severity": "Int32",
        "alarm_flood/active": "Boolean",
    }.items():
        assert declared[name] == datatype, name
    assert all(m.alias is not None for m in nbirth.metrics if m.name != "Node Control/Rebirth")
    # The DBIRTH declares every tag, typed as configured (scaled ones as Double).
    dbirth = next(s for s in rest if s.kind == "DBIRTH" and s.device == "plc")
    tags = {m.name: m.datatype for m in dbirth.metrics}
    for tag, (spec, _) in FIXED_TAGS.items():
        scaled = "scale" in spec
        assert tags[tag] == ("Double" if scaled else TAG_TYPES[str(spec["type"])]), tag

    # seq counts every message of the session, NBIRTH to the last data, and wraps after 255.
    session = [s for s in seen if s.kind != "NDEATH"]
    assert [s.seq for s in session] == [i % 256 for i in range(len(session))]
    assert len(session) > 256

    # Data by exception: each poll's new number once, nothing lost; the fixed values once.
    numbers = [n for n, _, historical in counter_values(seen) if not historical]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    plc: dict[str, object] = {}
    for s in seen:
        if s.device == "plc" and s.kind in ("DBIRTH", "DDATA"):
            plc |= {m.name: m.value for m in s.metrics if m.value is not None}
    assert plc == EXPECTED
    plc_data = [s for s in seen if s.device == "plc" and s.kind == "DDATA"]
    assert len(plc_data) <= 1  # the fixed values never change: sent once, after the birth

    node_metrics = newest_node_metrics(seen)
    assert node_metrics["machines/m1/state"] == "running"
    assert node_metrics["alarms/hot/active"] is True
    assert node_metrics["alarms/hot/state"] == "unack_active"
    assert node_metrics["machines/m1/oee/hour/total_count"] == 0

    # A clean stop: the node's own NDEATH, with the bdSeq of the NBIRTH and no seq.
    death = seen[-1]
    assert death.kind == "NDEATH" and death.seq is None and bd_seq(death) == bd_seq(nbirth)


async def test_include_leaves_the_devices_and_oee_out_of_a_running_agent(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """`include: [machines, alarms]` from the file: the node is born with machine and alarm
    metrics only, and devices polled 50 times a second send nothing."""
    include = "    include: [machines, alarms]\n"
    async with press_line(mosquitto.port, tmp_path, include) as (path, node, host, counter):
        async with running(path):
            await asyncio.to_thread(host.capture.wait_for, count("NBIRTH", node, 1), 20)
            polls = counter.served
            while counter.served < polls + 50:
                await asyncio.sleep(0.05)
        await asyncio.to_thread(host.capture.wait_for, count("NDEATH", node, 1), 5)
        seen = of_node(host.seen(), node)

    assert not [s for s in seen if s.device is not None]  # no DBIRTH, DDATA or DDEATH
    nbirth = seen[0]
    assert nbirth.kind == "NBIRTH"
    declared = {m.name for m in nbirth.metrics}
    assert {"machines/m1/state", "machines/m1/last_stop/reason", "alarms/hot/state"} <= declared
    assert "alarm_flood/active" in declared
    assert not [name for name in declared if "/oee/" in name]
    node_metrics = newest_node_metrics(seen)
    assert node_metrics["machines/m1/state"] == "running"
    assert node_metrics["alarms/hot/active"] is True
    session = [s for s in seen if s.kind != "NDEATH"]
    assert [s.seq for s in session] == list(range(len(session)))


async def test_kill9_leaves_the_will_with_the_births_bdseq(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The NDEATH registered as the will carries the bdSeq of the session's NBIRTH: after kill -9
    the broker publishes it. The next start counts on from the bdSeq kept in the buffer file."""
    counter = NumberedDevice()
    port = free_port()
    server = await serve_tcp([counter.simulated()], "127.0.0.1", port)
    path, node = write_config(
        tmp_path, "devices:\n" + numbered_yaml("counter", port, 0.1) + sink_yaml(mosquitto.port)
    )
    host = HostApp(mosquitto.port, GROUP, f"host-{node}")
    log = tmp_path / "agent.log"
    try:
        births = []
        for run in range(2):
            agent = await start_agent(path, log)
            try:
                await asyncio.to_thread(host.capture.wait_for, count("NBIRTH", node, run + 1), 20)
                await asyncio.to_thread(host.capture.wait_for, count("DDATA", node, 3 * run + 3))
            finally:
                agent.send_signal(signal.SIGKILL)
                await agent.wait()
            await asyncio.to_thread(host.capture.wait_for, count("NDEATH", node, run + 1), 10)
            seen = of_node(host.seen(), node)
            births.append(bd_seq([s for s in seen if s.kind == "NBIRTH"][-1]))
            death = [s for s in seen if s.kind == "NDEATH"][-1]
            assert bd_seq(death) == births[-1], (births, log.read_text()[-2000:])
        assert births[1] == births[0] + 1
    finally:
        host.close()
        await server.shutdown()


@asynccontextmanager
async def counting_node(
    broker_port: int, tmp_path: Path, counter: NumberedDevice
) -> AsyncIterator[tuple[str, HostApp]]:
    """A running agent whose node publishes a counter polled every 0.1 s, and a host reading it."""
    port = free_port()
    server = await serve_tcp([counter.simulated()], "127.0.0.1", port)
    path, node = write_config(
        tmp_path, "devices:\n" + numbered_yaml("counter", port, 0.1) + sink_yaml(broker_port)
    )
    host = HostApp(broker_port, GROUP, f"host-{node}")
    try:
        async with running(path):
            await asyncio.to_thread(host.capture.wait_for, count("DDATA", node, 5))
            yield node, host
    finally:
        host.close()
        await server.shutdown()


async def test_a_rebirth_request_sends_the_births_again(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    counter = NumberedDevice()
    async with counting_node(mosquitto.port, tmp_path, counter) as (node, host):
        await asyncio.to_thread(host.rebirth, node)
        await asyncio.to_thread(host.capture.wait_for, count("NBIRTH", node, 2))
        await asyncio.to_thread(host.capture.wait_for, count("DDATA", node, 10))
    seen = [s for s in of_node(host.seen(), node) if s.kind != "NDEATH"]
    first, second = [i for i, s in enumerate(seen) if s.kind == "NBIRTH"]
    assert bd_seq(seen[first]) == bd_seq(seen[second])  # the same session, born again
    # seq starts again at the NBIRTH, the DBIRTH follows, data goes on from there.
    reborn = seen[second:]
    assert [s.seq for s in reborn] == list(range(len(reborn)))
    assert [s.kind for s in reborn[:2]] == ["NBIRTH", "DBIRTH"]
    # The DBIRTH carries the newest value known, not null.
    before = [n for n, _, _ in counter_values(seen[:second])]
    assert reborn[1].values()["n"] >= before[-1]


async def test_a_burst_of_rebirth_requests_costs_two_births(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """50 requests at once: the first is served, the rest by one rebirth a second after it."""
    async with counting_node(mosquitto.port, tmp_path, NumberedDevice()) as (node, host):
        await asyncio.sleep(1.0)  # the birth at the start is over a second old
        await asyncio.to_thread(host.rebirth, node, 50)
        await asyncio.to_thread(host.capture.wait_for, count("NBIRTH", node, 3))
        await asyncio.sleep(2.0)  # what else the burst would bring
        seen = [s for s in of_node(host.seen(), node) if s.kind != "NDEATH"]
    births = [s for s in seen if s.kind == "NBIRTH"]
    assert len(births) == 3, [s.timestamp for s in births]  # the start's, and two
    assert 990 <= births[2].timestamp - births[1].timestamp < 2500
    reborn = seen[seen.index(births[2]) :]
    assert [s.seq for s in reborn] == list(range(len(reborn)))  # data goes on after it


async def test_no_data_between_a_rebirth_request_and_the_rebirth(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A request right after a birth is served a second later; meanwhile the node sends no data
    (tck-id-operational-behavior-data-commands-rebirth-action-1: stop data at once)."""
    async with counting_node(mosquitto.port, tmp_path, NumberedDevice()) as (node, host):
        await asyncio.to_thread(host.rebirth, node)
        await asyncio.to_thread(host.capture.wait_for, count("NBIRTH", node, 2))
        await asyncio.to_thread(host.rebirth, node)  # within a second of that birth
        await asyncio.to_thread(host.capture.wait_for, count("NBIRTH", node, 3))
        await asyncio.to_thread(host.capture.wait_for, count("DDATA", node, 20))
        seen = of_node(host.seen(), node)
    ncmd = [i for i, s in enumerate(seen) if s.kind == "NCMD"][-1]
    births = [i for i, s in enumerate(seen) if s.kind == "NBIRTH"]
    held = [s.kind for s in seen[ncmd : births[2]] if s.kind in ("NDATA", "DDATA")]
    # The counter is polled every 0.1 s: without the hold, about ten DDATA would come here; one
    # may have been on its way when the request came.
    assert len(held) <= 1, held
    assert 990 <= seen[births[2]].timestamp - seen[births[1]].timestamp < 2500
    assert [s.kind for s in seen[births[2] :][:2]] == ["NBIRTH", "DBIRTH"]
    reborn = [s for s in seen[births[2] :] if s.kind != "NCMD"]
    assert [s.seq for s in reborn] == list(range(len(reborn)))  # then data again, in order


def with_primary_host(tmp_path: Path, broker_port: int, device_port: int) -> tuple[Path, str, str]:
    """A configuration whose node waits for a primary host of its own: (file, node, host id)."""
    host_id = f"SCADA-{free_port()}"
    path, node = write_config(
        tmp_path,
        "devices:\n"
        + numbered_yaml("counter", device_port, 0.1)
        + sink_yaml(broker_port, f"    primary_host_id: {host_id}\n"),
    )
    return path, node, host_id


async def test_a_primary_host_decides_when_the_node_is_born(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Offline: no birth, data waits in the buffer (the page says why). Online: NBIRTH, the
    waiting records as history, then live. Offline again: the node's NDEATH with the session's
    bdSeq, a new connection that waits, and the next birth with the next bdSeq."""
    counter = NumberedDevice()
    port = free_port()
    server = await serve_tcp([counter.simulated()], "127.0.0.1", port)
    path, node, host_id = with_primary_host(tmp_path, mosquitto.port, port)
    host = HostApp(mosquitto.port, GROUP, f"host-{node}")
    t0 = int(time.time() * 1000)
    await asyncio.to_thread(publish_state, mosquitto.port, host_id, False, t0)
    try:
        async with running(path) as agent:
            await asyncio.to_thread(counter_reads, counter, 10)
            assert host.count("NBIRTH", node) == 0
            (uns,) = (await page_state(agent))["sinks"]
            assert uns["error"] and f"primary host {host_id}" in uns["error"]

            online_at = int(time.time() * 1000)
            await asyncio.to_thread(publish_state, mosquitto.port, host_id, True, online_at)
            await asyncio.to_thread(host.capture.wait_for, count("NBIRTH", node, 1))
            await asyncio.to_thread(host.capture.wait_for, count("DDATA", node, 3))
            first_birth = next(s for s in host.seen() if s.kind == "NBIRTH" and s.node == node)

            await asyncio.to_thread(publish_state, mosquitto.port, host_id, False, online_at + 1)
            await asyncio.to_thread(host.capture.wait_for, count("NDEATH", node, 1))
            await asyncio.to_thread(counter_reads, counter, 10)
            assert host.count("NBIRTH", node) == 1  # connected again, and waiting

            await asyncio.to_thread(publish_state, mosquitto.port, host_id, True, online_at + 2)
            await asyncio.to_thread(host.capture.wait_for, count("NBIRTH", node, 2))
            await asyncio.to_thread(host.capture.wait_for, count("DDATA", node, 8))
        seen = of_node(host.seen(), node)
    finally:
        host.close()
        await server.shutdown()
        await asyncio.to_thread(publish_state, mosquitto.port, host_id, False, online_at + 3)

    births = [i for i, s in enumerate(seen) if s.kind == "NBIRTH"]
    deaths = [s for s in seen if s.kind == "NDEATH"]
    assert deaths[0].seq is None and bd_seq(deaths[0]) == bd_seq(first_birth)
    assert bd_seq(seen[births[1]]) == bd_seq(first_birth) + 1
    for start, end in ((births[0], births[1]), (births[1], len(seen))):
        session = seen[start:end]
        numbers = counter_values(session)
        birth_ms = session[0].timestamp
        history = [(n, ts) for n, ts, historical in numbers if historical]
        live = [(n, ts) for n, ts, historical in numbers if not historical]
        # What was read while the node had no session comes as history, with its read times,
        # in order, before the birth; then live values.
        assert len(history) >= 5, numbers
        assert all(ts < birth_ms for _, ts in history)
        assert [n for n, _ in history] == sorted(n for n, _ in history)
        assert live and live[-1][0] > history[-1][0]


async def test_a_node_stopped_while_it_waits_for_its_host_says_its_death(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Never born (the primary host is offline), then stopped: the node publishes its NDEATH
    before it disconnects, not leaving it to the will (tck-id-payloads-ndeath-will-message-
    publisher-disconnect-mqtt311). The will was made at the connect: its time tells them apart."""
    counter = NumberedDevice()
    port = free_port()
    server = await serve_tcp([counter.simulated()], "127.0.0.1", port)
    path, node, host_id = with_primary_host(tmp_path, mosquitto.port, port)
    host = HostApp(mosquitto.port, GROUP, f"host-{node}")
    await asyncio.to_thread(publish_state, mosquitto.port, host_id, False, int(time.time() * 1000))
    try:
        async with running(path):
            await asyncio.to_thread(counter_reads, counter, 10)
            stopped_ms = int(time.time() * 1000)
        await asyncio.to_thread(host.capture.wait_for, count("NDEATH", node, 1))
        seen = of_node(host.seen(), node)
    finally:
        host.close()
        await server.shutdown()
    assert [s.kind for s in seen] == ["NDEATH"]  # no birth: the host never came
    assert seen[0].timestamp >= stopped_ms and bd_seq(seen[0]) == 0


async def test_device_commands_are_heard_and_refused(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The node subscribes to DCMD for its devices (tck-id-message-flow-device-dcmd-subscribe);
    a write there is refused, as the agent writes to no PLC, and said in the log."""
    caplog.set_level(logging.WARNING, "edge_agent.sinks.sparkplug.node")
    counter = NumberedDevice()
    async with counting_node(mosquitto.port, tmp_path, counter) as (node, host):
        await asyncio.to_thread(host.write, node, "counter", "n", 7)
        deadline = time.monotonic() + 5
        while not any("DCMD writes" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the DCMD was not heard"
            await asyncio.sleep(0.05)
    [line] = [r.getMessage() for r in caplog.records if "DCMD" in r.getMessage()]
    assert line == "Sparkplug DCMD writes 1 metric(s) ('counter/n'): ignored, the agent only reads"


def counter_reads(device: NumberedDevice, reads: int, timeout_s: float = 10) -> None:
    start, deadline = device.served, time.monotonic() + timeout_s
    while device.served < start + reads:
        assert time.monotonic() < deadline, "the agent does not poll"
        time.sleep(0.02)


async def test_a_broker_out_of_reach_is_replayed_as_history_then_live(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The network to the broker fails for two seconds while the agent keeps polling into its
    buffer. The broker publishes the will (the NDEATH of the session's bdSeq); when the broker is
    reachable again a new session (bdSeq + 1) delivers those reads as history, with the times
    they were read, and live data follows."""
    link = SwitchedLink(mosquitto.port)
    await link.start()
    counter = NumberedDevice()
    port = free_port()
    server = await serve_tcp([counter.simulated()], "127.0.0.1", port)
    path, node = write_config(
        tmp_path, "devices:\n" + numbered_yaml("counter", port, 0.05) + sink_yaml(link.port)
    )
    host = HostApp(mosquitto.port, GROUP, f"host-{node}")  # on the broker's side of the cut
    try:
        async with running(path) as agent:
            await asyncio.to_thread(host.capture.wait_for, count("DDATA", node, 10))
            (uns,) = agent.sinks
            await link.cut()
            down_from = counter.served
            await asyncio.to_thread(host.capture.wait_for, count("NDEATH", node, 1))
            await asyncio.to_thread(counter_reads, counter, 40)  # 2 s of polls into the buffer
            assert uns.pending > 20 and not uns.sink.connected
            down_to = counter.served
            await link.restore()
            await asyncio.to_thread(host.capture.wait_for, count("NBIRTH", node, 2), 40)
            await asyncio.to_thread(counter_reads, counter, 20)
            while uns.pending:
                await asyncio.sleep(0.05)
        await asyncio.to_thread(host.capture.wait_for, count("NDEATH", node, 2))
        seen = of_node(host.seen(), node)
    finally:
        host.close()
        await server.shutdown()
        await link.close()

    first, second = [i for i, s in enumerate(seen) if s.kind == "NBIRTH"]
    will = next(s for s in seen if s.kind == "NDEATH")
    assert bd_seq(will) == bd_seq(seen[first])  # the broker's, for the cut connection
    assert bd_seq(seen[second]) == bd_seq(seen[first]) + 1  # refused attempts took no number
    before = counter_values(seen[first:second])
    after = counter_values(seen[second:])
    assert all(not historical for _, _, historical in before)
    history = [(n, ts) for n, ts, historical in after if historical]
    data = counter_values(seen[second:], ("DDATA",))
    live = [(n, ts) for n, ts, historical in data if not historical]
    # The DBIRTH carries the newest value the node had sent (from before the cut, with its time);
    # what was read meanwhile comes as history, in order, with the times it was read (before the
    # new birth), then live values.
    assert after[0][0] == before[-1][0] and not after[0][2]
    numbers = [n for n, _ in history]
    assert numbers == sorted(numbers) and set(range(down_from + 2, down_to)) <= set(numbers)
    birth_ms = seen[second].timestamp
    assert all(ts < birth_ms for _, ts in history)
    # The newest of the history is the first live value (the node catches up: it is current).
    assert live and live[0][0] == numbers[-1] and live[-1][0] > numbers[-1]
    # Nothing read in the whole run is missing, but for a message in flight when the link broke
    # (QoS 0: written to the connection, then gone with it).
    seen_numbers = {n for n, _, _ in before + after}
    everything = set(range(min(seen_numbers), max(seen_numbers) + 1))
    assert len(everything - seen_numbers) <= 2, sorted(everything - seen_numbers)


async def test_a_restarted_agent_is_born_with_what_it_knew(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A machine's state and an alarm are published when they change, not again after a restart:
    the node's newest values, kept beside the buffer, go into the next NBIRTH with their times."""
    port = free_port()
    server = await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port)
    path, node = write_config(
        tmp_path, "devices:\n" + device_yaml("plc", port) + MACHINE + sink_yaml(mosquitto.port)
    )
    host = HostApp(mosquitto.port, GROUP, f"host-{node}")
    try:
        async with running(path):
            await asyncio.to_thread(host.capture.wait_for, count("NDATA", node, 2))
        async with running(path):
            await asyncio.to_thread(host.capture.wait_for, count("NBIRTH", node, 2))
        seen = of_node(host.seen(), node)
    finally:
        host.close()
        await server.shutdown()
    first, second = [s for s in seen if s.kind == "NBIRTH"]
    changed = {
        m.name: (m.value, m.timestamp)
        for s in seen
        if s.kind in ("NBIRTH", "NDATA") and s.timestamp < second.timestamp
        for m in s.metrics
        if m.value is not None
    }
    reborn = {m.name: (m.value, m.timestamp) for m in second.metrics}
    for name in ("machines/m1/state", "alarms/hot/active", "alarms/hot/state"):
        assert reborn[name] == changed[name], name
    assert reborn["machines/m1/state"][1] < first.timestamp + 5000
    assert bd_seq(second) == bd_seq(first) + 1
