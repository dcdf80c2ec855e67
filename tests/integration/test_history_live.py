"""The real agent, in-process, polling a simulated PLC over Modbus TCP: a fault that comes and goes
becomes a stop in the local history, an alarm and its acknowledgement become transitions, and all
of it is there for the next run to read."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.history import HistoryStore
from tests.integration.test_pipeline import running, write_config
from tests.support.fixed_device import device_yaml, fixed_image
from tests.support.servers import free_port

DAY_NS = 86400 * 1_000_000_000


async def test_a_stop_and_an_alarm_reach_the_history(tmp_path: Path) -> None:
    port = free_port()
    image = fixed_image()  # bit0 set (running), coil1 clear (no fault), f32_abcd = 3.5
    server = await serve_tcp([SimulatedDevice(image)], "127.0.0.1", port)
    history_path = tmp_path / "history.db"  # where write_config puts it
    path, _ = write_config(
        tmp_path,
        (
            f"devices:\n{device_yaml('plc', port, poll_interval_s=0.1)}"
            "machines:\n"
            "  m1:\n"
            "    ideal_cycle_time_s: 1\n"
            "    state: {running: plc.bit0, fault: plc.coil1, reason: plc.u16_raw}\n"
            "  m2:\n"
            "    ideal_cycle_time_s: 1\n"
            "    state: {running: 'plc.bit0 and not plc.coil1'}\n"  # idle: no reason
            "alarms:\n"
            "  - {id: hot, type: limit, tag: plc.f32_abcd, machine: m1, high: 3.0}\n"
            "sinks: {}\n"
        ),
    )
    from_ns = time.time_ns() - DAY_NS
    try:
        async with running(path) as agent:
            await _until(lambda: agent.engine.machines["m1"].current is not None)
            await asyncio.sleep(0.5)
            image.set("coil", 1, 1)  # a fault, with the PLC's reason code
            await _until(lambda: _state(agent, "m1") == "down")
            await asyncio.sleep(0.5)
            image.set("coil", 1, 0)
            await _until(lambda: _state(agent, "m1") == "running")
            reply = agent.ingest.command({"command": "ack", "id": "hot", "user": "anna"})
            assert reply["ok"], reply
            await asyncio.sleep(1.0)
            live = await agent.history.stops("m1", from_ns, time.time_ns() + DAY_NS)
            assert [s["machine"] for s in live] == ["m1"]  # committed within a second, readable
    finally:
        await server.shutdown()

    # After the stop: everything the run emitted was committed by the close.
    history = HistoryStore(history_path)
    await history.open()
    try:
        to_ns = time.time_ns() + DAY_NS
        stops = await history.stops(None, from_ns, to_ns)
        by_machine = {s["machine"]: s for s in stops}
        assert set(by_machine) == {"m1", "m2"}, stops
        m1, m2 = by_machine["m1"], by_machine["m2"]
        # A code with no reason configured for it: kept, and the stop waits for an operator.
        assert (m1["state"], m1["reason"], m1["reason_code"]) == ("down", None, "64302")
        assert m1["classified_by"] is None
        assert (m2["state"], m2["reason"], m2["classified_by"]) == ("idle", None, None)
        assert 0.3 < m1["duration_s"] < 5
        alarms = await history.alarms(from_ns, to_ns)
        events = [(a["id"], a["event"], a["state"], a["user"]) for a in alarms]
        assert ("hot", "change", "unack_active", None) in events
        assert ("hot", "ack", "ack_active", "anna") in events
        assert await history.oee("m1", "hour", from_ns, to_ns) == []  # no hour has closed
    finally:
        await history.close()


def _state(agent: object, machine: str) -> str | None:
    current = agent.engine.machines[machine].current  # type: ignore[attr-defined]
    return None if current is None else str(current.state)


async def _until(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
