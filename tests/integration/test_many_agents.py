"""Five agents, one per cell, sharing one mosquitto and one InfluxDB (1.x), as a plant grows.

Each agent has its own id and one simulated device. Nothing may collide: every agent's values
arrive under its own topics and its own `agent` tag, exactly and completely, and every agent's
retained status stands apart (a dashboard that joins later sees all five).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from drivers.sim.server import SimulatedDevice, serve_tcp
from tests.integration.test_pipeline import EXPECTED, running, write_config
from tests.support.fixed_device import device_yaml, fixed_image
from tests.support.mqtt_capture import MqttCapture
from tests.support.servers import InfluxDB1, Mosquitto, free_port

AGENTS = 5


def _ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


async def test_five_agents_share_a_broker_and_a_database(
    mosquitto: Mosquitto, influxdb1: InfluxDB1, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EA_TEST_INFLUX_PASSWORD", influxdb1.password)
    ports = [free_port() for _ in range(AGENTS)]
    servers = [
        await serve_tcp([SimulatedDevice(fixed_image())], "127.0.0.1", port) for port in ports
    ]
    configs = []
    for i, port in enumerate(ports):
        folder = tmp_path / f"cell{i}"
        folder.mkdir()
        configs.append(
            write_config(
                folder,
                "devices:\n"
                + device_yaml("plc", port)  # the same device name in every cell
                + "sinks:\n"
                f"  mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}\n"
                "  influxdb:\n    api: v1\n"
                f"    url: {influxdb1.url}\n    database: {influxdb1.database}\n"
                f"    username: {influxdb1.username}\n"
                "    password: ${EA_TEST_INFLUX_PASSWORD}\n    flush_interval_s: 0.2\n",
            )
        )
    ids = [agent_id for _, agent_id in configs]
    assert len(set(ids)) == AGENTS
    capture = MqttCapture(mosquitto.port, "edge/+/devices/plc")
    try:
        async with contextlib.AsyncExitStack() as stack:
            agents = [await stack.enter_async_context(running(path)) for path, _ in configs]
            await asyncio.sleep(3.0)
            # Every agent delivered what it read so far, to both sinks.
            deadline = time.monotonic() + 20
            targets = [a.outbox.last_seq for a in agents]
            while any(r.cursor < t for a, t in zip(agents, targets, strict=True) for r in a.sinks):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            polls = {
                agent_id: int(agent.metrics.polls.labels("plc")._value.get())
                for agent_id, agent in zip(ids, agents, strict=True)
            }
            sent = {
                agent_id: [
                    m for m in capture.snapshot() if m.topic == f"edge/{agent_id}/devices/plc"
                ]
                for agent_id in ids
            }
    finally:
        capture.close()
        for server in servers:
            await server.shutdown()

    for agent_id in ids:
        payloads = [json.loads(m.payload) for m in sent[agent_id]]
        assert len(payloads) >= 10, agent_id
        assert all(p["values"] == EXPECTED for p in payloads)
        seqs = [p["seq"] for p in payloads]
        assert seqs == sorted(set(seqs))  # each agent's own sequence, no other's mixed in
        rows = influxdb1.query(
            f'SELECT "value" FROM "values" WHERE "agent" = \'{agent_id}\' AND "tag" = \'u16_raw\'',
            db=influxdb1.database,
        )
        # One point per poll, under this agent's tag only, with the exact value.
        points = {ts: value for s in rows for ts, value in s["values"]}  # type: ignore[attr-defined]
        assert {_ms(p["ts"]) for p in payloads} <= set(points), agent_id
        assert set(points.values()) == {float(EXPECTED["u16_raw"])}  # type: ignore[arg-type]

    # After the stop, a dashboard that connects sees five retained statuses, one per agent.
    late = MqttCapture(mosquitto.port, "edge/+/status", client_id="late-dashboard")
    try:
        got = await asyncio.to_thread(
            late.wait_for, lambda ms: {m.topic for m in ms} >= {f"edge/{i}/status" for i in ids}, 10
        )
    finally:
        late.close()
    statuses = {m.topic: m for m in got if m.topic in {f"edge/{i}/status" for i in ids}}
    assert len(statuses) == AGENTS
    assert all(m.retain for m in statuses.values())
    payloads = [json.loads(m.payload) for m in statuses.values()]
    assert [p["status"] for p in payloads] == ["offline"] * AGENTS
    assert len({p["instance"] for p in payloads}) == AGENTS  # one installation each
    assert all(n > 10 for n in polls.values())
