"""Regression: refused operator commands swallowed what time had produced.

The temperature is over the alarm's limit from the first poll; the on-delay (2 s) runs out
between two polls (every 5 s). Meanwhile a stream of commands for an unknown alarm arrives over
a real broker, one every 20 ms: each moved time on before being refused, and the activation
that moving produced was thrown away, so the retained `<root>/alarms/hot` stayed `normal` while
the page showed `unack_active`. Now the activation is published whatever the command's fate.
(The stream now keeps under the rate limit of 10 commands a second, so each is carried out.)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

from drivers.sim.image import RegisterImage
from drivers.sim.server import SimulatedDevice, serve_tcp
from edge_agent.cli.running import run_agent
from edge_agent.config import load_config
from tests.support.mqtt_capture import MqttCapture
from tests.support.servers import Mosquitto, free_port


async def test_a_stream_of_refused_commands_loses_no_alarm_transition(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    image = RegisterImage(size=8)
    image.set_f32("input", 0, 95.0)
    port = free_port()
    server = await serve_tcp([SimulatedDevice(image)], "127.0.0.1", port)
    agent_id = f"it-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"agent: {{id: {agent_id}, buffer_path: '{tmp_path / 'outbox.db'}', http: {{enabled: false}}}}\n"
        "devices:\n  oven:\n    driver: modbus\n    host: 127.0.0.1\n"
        f"    port: {port}\n    poll_interval_s: 5\n    tags:\n"
        "      temp: {table: input, address: 0, type: float32}\n"
        "alarms:\n  - {id: hot, type: limit, tag: oven.temp, high: 80, on_delay_s: 2}\n"
        f"sinks:\n  mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}\n"
    )
    root = f"edge/{agent_id}"
    capture = MqttCapture(mosquitto.port, f"{root}/#")
    operator = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"op-{agent_id}")
    operator.connect("127.0.0.1", mosquitto.port)
    operator.loop_start()
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent(load_config(config), stop, banner=False))
    try:
        await asyncio.to_thread(
            capture.wait_for, lambda ms: any(m.topic == f"{root}/devices/oven" for m in ms), 15
        )
        sent = 0
        for _ in range(35):  # 4.2 s: the on-delay ends in there, before the next poll
            command = {"command": "ack", "id": "nosuch", "request_id": f"r{sent}"}
            operator.publish(f"{root}/commands/alarms/operator", json.dumps(command), qos=1)
            sent += 1
            await asyncio.sleep(0.12)
        got = await asyncio.to_thread(
            capture.wait_for,
            lambda ms: sum(m.topic == f"{root}/commands/alarms/reply" for m in ms) >= sent,
            15,
        )
        states = [json.loads(m.payload)["state"] for m in got if m.topic == f"{root}/alarms/hot"]
        replies = [json.loads(m.payload) for m in got if m.topic.endswith("/reply")]
        assert all(not r["ok"] and "unknown alarm 'nosuch'" in r["error"] for r in replies)
        assert states[-1] == "unack_active", states
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        operator.loop_stop()
        operator.disconnect()
        capture.close()
        await server.shutdown()
