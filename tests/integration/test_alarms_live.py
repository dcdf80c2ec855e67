"""Alarms in the live agent: rising vibration, an alarm on MQTT, acknowledged by a command."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

from drivers.sim.image import RegisterImage
from drivers.sim.server import SimulatedDevice, serve_tcp
from tests.support.mqtt_capture import MqttCapture, Received
from tests.support.servers import Mosquitto, VictoriaMetrics, free_port


class WearingBearing:
    """Vibration velocity that rises by 0.05 mm/s with every read: a bearing wearing out."""

    def __init__(self) -> None:
        self.image = RegisterImage(size=8)
        self.image.set("coil", 0, True)
        self.vibration = 1.0

    def refresh(self, _now_s: float) -> None:
        self.vibration += 0.05
        self.image.set_f32("input", 0, self.vibration)


def publish(port: int, topic: str, payload: str) -> None:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"operator-{uuid.uuid4().hex[:6]}"
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def payloads(messages: list[Received], topic: str) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in messages if m.topic == topic]


async def test_rising_vibration_alarms_and_is_acknowledged_over_mqtt(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    bearing = WearingBearing()
    port, http_port = free_port(), free_port()
    server = await serve_tcp(
        [SimulatedDevice(bearing.image, refresh=bearing.refresh)], "127.0.0.1", port
    )
    agent_id = f"it-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"agent: {{id: {agent_id}, buffer_path: '{tmp_path / 'outbox.db'}', "
        f"access_path: '{tmp_path / 'access.json'}', http: {{port: {http_port}}}}}\n"
        "devices:\n  press:\n    driver: modbus\n    host: 127.0.0.1\n"
        f"    port: {port}\n    poll_interval_s: 0.1\n    tags:\n"
        "      running: {table: coil, address: 0, type: bool}\n"
        "      vibration: {table: input, address: 0, type: float32}\n"
        "alarms:\n"
        "  - {id: bearing, type: vibration_zone, tag: press.vibration, machine_group: 2, foundation: rigid}\n"
        f"sinks:\n  mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}\n"
        f"  influxdb: {{url: '{victoria.url}', bucket: b, org: o}}\n"
    )
    root = f"edge/{agent_id}"
    capture = MqttCapture(mosquitto.port, f"{root}/#")
    try:
        from edge_agent.cli.running import run_agent
        from edge_agent.config import load_config

        stop = asyncio.Event()
        task = asyncio.create_task(run_agent(load_config(config), stop, banner=False))
        # 1.0 mm/s rising 0.05 per read: zone C (>= 2.8) after ~36 reads, D (>= 4.5) after ~70.
        got = await asyncio.to_thread(
            capture.wait_for,
            lambda ms: any(p.get("level") == "D" for p in payloads(ms, f"{root}/alarms/bearing")),
            20,
        )
        states = [(p["state"], p["level"]) for p in payloads(got, f"{root}/alarms/bearing")]
        assert states[:3] == [("normal", None), ("unack_active", "C"), ("unack_active", "D")]
        zones = [p["zone"] for p in payloads(got, f"{root}/conditions/bearing")]
        assert zones[:3] == ["A", "B", "C"] or zones[:2] == ["B", "C"]

        # The operator acknowledges through the operator's command topic; bad commands change
        # nothing. (This broker has no ACL: tests/integration/test_mqtt_commands.py has one.)
        operator_topic = f"{root}/commands/alarms/operator"
        publish(mosquitto.port, operator_topic, "{not json")
        publish(
            mosquitto.port,
            operator_topic,
            json.dumps({"command": "ack", "id": "nope", "request_id": "r0"}),
        )
        publish(
            mosquitto.port,
            operator_topic,
            json.dumps({"command": "ack", "id": "bearing", "request_id": "r1"}),
        )
        got = await asyncio.to_thread(
            capture.wait_for, lambda ms: len(payloads(ms, f"{root}/commands/alarms/reply")) >= 3, 10
        )
        replies = payloads(got, f"{root}/commands/alarms/reply")
        assert replies[0]["ok"] is False and "malformed command" in replies[0]["error"]
        assert (
            replies[1]["ok"] is False
            and "unknown alarm 'nope'" in replies[1]["error"]
            and replies[1]["request_id"] == "r0"
        )
        assert replies[2] == {**replies[2], "ok": True, "state": "ack_active", "request_id": "r1"}
        # The reply goes out at once; the alarm's record through the buffer, a moment later.
        got = await asyncio.to_thread(
            capture.wait_for,
            lambda ms: payloads(ms, f"{root}/alarms/bearing")[-1]["event"] == "ack",
            10,
        )
        acked = payloads(got, f"{root}/alarms/bearing")[-1]
        assert (acked["state"], acked["acked"], acked["event"]) == ("ack_active", True, "ack")

        # The same agent through its local API, as `edge-agent alarm` does it, with an engineer's
        # API token (a reset is refused below for what it is, not for the role).
        made = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "edge_agent",
                "token",
                "create",
                "--name",
                "maint",
                "--role",
                "engineer",
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stderr
        cli = [sys.executable, "-m", "edge_agent", "alarm", f"--token={made.stdout.strip()}"]
        url = f"--url=http://127.0.0.1:{http_port}"
        listed = await asyncio.to_thread(
            subprocess.run, [*cli, "list", url], capture_output=True, text=True
        )
        assert (
            listed.returncode == 0 and "bearing" in listed.stdout and "ack_active" in listed.stdout
        )
        # Or with the agent's configuration, which says where its page listens.
        found = await asyncio.to_thread(
            subprocess.run, [*cli, "list", f"--config={config}"], capture_output=True, text=True
        )
        assert found.returncode == 0 and found.stdout == listed.stdout, found.stderr
        shelved = await asyncio.to_thread(
            subprocess.run,
            [*cli, "shelve", "bearing", "--for", "600", "--reason", "bearing ordered", url],
            capture_output=True,
            text=True,
        )
        assert shelved.returncode == 0 and "state shelved" in shelved.stdout
        refused = await asyncio.to_thread(
            subprocess.run, [*cli, "reset", "bearing", url], capture_output=True, text=True
        )
        assert (
            refused.returncode == 1
            and "reset applies to" in refused.stderr
            and "Traceback" not in refused.stderr
        )
        stop.set()
        await asyncio.wait_for(task, 10)
        # The same five transitions as points: 0 normal, 1 unack_active (C), 1 (D), 2 ack_active, 4 shelved.
        codes = await asyncio.to_thread(
            victoria.wait_for,
            f'{{__name__="alarm_state_code",agent="{agent_id}",id="bearing"}}',
            points=5,
        )
        # priority is a tag (zone C alerts are low, zone D high): the alarm spans two series.
        assert {0.0, 1.0, 2.0, 4.0} <= {v for series in codes for v in series["values"]}
        zones = await asyncio.to_thread(
            victoria.wait_for, f'{{__name__="condition_zone_code",agent="{agent_id}"}}', points=3
        )
        assert {3.0, 4.0} <= {v for series in zones for v in series["values"]}  # zones C and D
    finally:
        capture.close()
        await server.shutdown()
    # A dashboard that connects later sees the current state (retained).
    late = MqttCapture(mosquitto.port, f"{root}/alarms/bearing", client_id="late-dashboard")
    try:
        [current] = await asyncio.to_thread(late.wait_for, lambda ms: len(ms) >= 1, 10)
        assert current.retain and json.loads(current.payload)["state"] == "shelved"
    finally:
        late.close()
