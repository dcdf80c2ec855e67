"""OPC UA in the live agent: a server restart makes its tags bad, then they come back unaided."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from drivers.sim.opcua_press import serve_opcua_press
from tests.integration.test_pipeline import running, write_config
from tests.support.mqtt_capture import MqttCapture
from tests.support.servers import Mosquitto, free_port

NSU = "nsu=urn:edge-agent:sim;"


async def test_server_restart_tags_go_bad_and_come_back(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    port = free_port()
    sim = await serve_opcua_press(port=port, update_s=0.1)
    path, agent_id = write_config(
        tmp_path,
        (
            "devices:\n  plc:\n    driver: opcua\n"
            f"    url: {sim.url}\n    security: none\n    poll_interval_s: 0.2\n    timeout_s: 1\n"
            "    backoff_max_s: 1\n    publishing_interval_ms: 100\n    tags:\n"
            f"      temp: {{node: '{NSU}s=Press.Temperature'}}\n"
            f"      total: {{node: '{NSU}s=Press.TotalCount', sampling_interval_ms: 50}}\n"
            f"      pressure: {{node: '{NSU}s=Press.Pressure', mode: poll}}\n"
            "machines:\n  m:\n    ideal_cycle_time_s: 1\n    state: {running: 'plc.temp > 50'}\n"
            f"sinks:\n  mqtt: {{host: 127.0.0.1, port: {mosquitto.port}, raw_values: per_tag}}\n"
        ),
    )
    root = f"edge/{agent_id}"
    capture = MqttCapture(mosquitto.port, f"{root}/#")

    def payloads(topic: str) -> list[dict[str, object]]:
        return [json.loads(m.payload) for m in capture.snapshot() if m.topic == topic]

    async def until(predicate, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        await asyncio.to_thread(capture.wait_for, lambda _ms: predicate(), timeout_s)

    try:
        async with running(path):
            await until(
                lambda: any(p["value"] == 71.25 for p in payloads(f"{root}/devices/plc/temp"))
            )
            seen_total = len(payloads(f"{root}/devices/plc/total"))
            await until(
                lambda: len(payloads(f"{root}/devices/plc/total")) > seen_total + 2
            )  # subscription
            await sim.stop()
            await until(
                lambda: any(p["state"] == "down" for p in payloads(f"{root}/devices/plc/link"))
            )
            await until(
                lambda: any(p["quality"] == "bad" for p in payloads(f"{root}/devices/plc/temp"))
            )
            assert payloads(f"{root}/machines/m/state")[-1]["state"] == "unknown"
            sim = await serve_opcua_press(port=port, update_s=0.1)  # the server comes back
            await until(lambda: payloads(f"{root}/devices/plc/link")[-1]["state"] == "up")
            await until(
                lambda: (
                    payloads(f"{root}/devices/plc/temp")[-1]
                    == {
                        **payloads(f"{root}/devices/plc/temp")[-1],
                        "value": 71.25,
                        "quality": "good",
                    }
                )
            )
            # Subscriptions were made again: new counts arrive without any action.
            after = len(payloads(f"{root}/devices/plc/total"))
            await until(lambda: len(payloads(f"{root}/devices/plc/total")) > after + 2)
            assert payloads(f"{root}/machines/m/state")[-1]["state"] == "running"
    finally:
        capture.close()
        await sim.stop()
